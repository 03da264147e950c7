"""The packs door: deploy a zip, list, inspect, download a diagram, activate, roll back — with
Casbin deciding who may, and precise problem details when a pack is refused."""

from __future__ import annotations

import io
import zipfile

import yaml

from govflow.engine.packs.loader import files_to_zip
from govflow.engine.workflow.bpmn import ASSIGNEES

V11 = {
    "pack.yaml": yaml.safe_dump(
        {
            "name": "reference",
            "version": "1.1.0",
            "extends": "reference@1.0.0",
            "settings": {"deadlines": {"simple": {"sign_for": {"amount": 15, "unit": "minutes"}}}},
        }
    ).encode()
}


def upload(api, who, content: bytes, **params):
    return api.client.post(
        "/api/v1/packs", content=content, params=params, headers=api.headers(who, **{"Content-Type": "application/zip"})
    )


def test_deploy_list_show_download_activate_and_roll_back(api, reference_files):
    response = upload(api, "district.supervisor", files_to_zip(V11), activate="false")
    assert response.status_code == 201, response.text
    assert response.json()["active"] is False and response.json()["created"] is True
    assert upload(api, "district.supervisor", files_to_zip(V11), activate="false").status_code == 200  # idempotent
    listed = api.get("district.supervisor", "/api/v1/packs").json()
    assert [(v["version"], v["active"]) for v in listed] == [("1.0.0", True), ("1.1.0", False)]
    shown = api.get("district.supervisor", "/api/v1/packs/reference/1.1.0").json()
    assert shown["extends"]["version"] == "1.0.0"
    assert shown["settings"]["deadlines"]["simple"]["sign_for"] == {"amount": 15, "unit": "minutes"}
    assert {"path": "processes/frontline_disposal.bpmn", "origin": "base"}.items() <= next(
        f for f in shown["files"] if f["path"] == "processes/frontline_disposal.bpmn"
    ).items()
    diagram = api.get("district.supervisor", "/api/v1/packs/reference/1.1.0/files/processes/frontline_disposal.bpmn")
    assert diagram.status_code == 200 and diagram.headers["content-type"].startswith("application/xml")
    assert diagram.content == reference_files["processes/frontline_disposal.bpmn"]
    archive = api.get("district.supervisor", "/api/v1/packs/reference/1.1.0/archive")
    assert zipfile.ZipFile(io.BytesIO(archive.content)).read("processes/frontline_disposal.bpmn") == diagram.content
    assert api.get("district.supervisor", "/api/v1/packs/reference/1.1.0/files/nope.bpmn").status_code == 404
    assert api.post("district.supervisor", "/api/v1/packs/reference/1.1.0/activate").json()["active"] is True
    back = api.post("district.supervisor", "/api/v1/packs/rollback", json={"district": "gulou"})
    assert (back.status_code, back.json()["version"]) == (200, "1.0.0")


def test_only_those_the_policy_allows_may_deploy_or_read(api):
    assert upload(api, "citizen.zhang", files_to_zip(V11)).status_code == 403
    assert upload(api, "dongjie.dispatcher", files_to_zip(V11)).status_code == 403
    assert upload(api, None, files_to_zip(V11)).status_code == 401
    assert api.get("citizen.zhang", "/api/v1/packs").json() == []
    assert api.get("dongjie.dispatcher", "/api/v1/packs/reference/1.0.0").status_code == 404  # not theirs to see
    assert api.post("dongjie.dispatcher", "/api/v1/packs/rollback", json={"district": "gulou"}).status_code == 403


def test_an_invalid_pack_is_refused_with_file_line_and_element(api):
    diagram = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        b'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="x">\n'
        b'  <bpmn:process id="mayors_review" isExecutable="true">\n'
        b'    <bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>\n'
        b'    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="mayor_signs" />\n'
        b'    <bpmn:userTask id="mayor_signs"><bpmn:extensionElements><spiffworkflow:properties>\n'
        b'      <spiffworkflow:property name="stage" value="dispatched" /><spiffworkflow:property name="assignee" value="mayor" />\n'
        b'      <spiffworkflow:property name="action" value="sign_for" /></spiffworkflow:properties></bpmn:extensionElements>\n'
        b"      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>\n"
        b'    <bpmn:sequenceFlow id="f2" sourceRef="mayor_signs" targetRef="e" />\n'
        b'    <bpmn:endEvent id="e"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>\n'
        b"  </bpmn:process>\n</bpmn:definitions>\n"
    )
    response = upload(api, "district.supervisor", files_to_zip({**V11, "processes/mayor.bpmn": diagram}))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["issues"] == [
        {
            "file": "processes/mayor.bpmn",
            "line": 6,
            "element": "mayor_signs",
            "message": f"unknown task assignee 'mayor'; expected one of {sorted(ASSIGNEES)}",
        }
    ]
    assert [v["version"] for v in api.get("district.supervisor", "/api/v1/packs").json()] == ["1.0.0"]


def test_hostile_archives_are_refused(api):
    escape = files_to_zip({**V11, "../../etc/cron.d/x": b"* * * * * root sh"})
    response = upload(api, "district.supervisor", escape)
    assert response.status_code == 422
    assert response.json()["issues"] == [{"file": "../../etc/cron.d/x", "message": "path escapes the pack folder"}]
    assert upload(api, "district.supervisor", b"not a zip").json()["issues"][0]["message"] == "not a zip archive"
    wrong_type = api.client.post(
        "/api/v1/packs",
        content=b"{}",
        headers=api.headers("district.supervisor", **{"Content-Type": "application/json"}),
    )
    assert wrong_type.status_code == 422
