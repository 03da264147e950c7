"""The general-purpose doors the studio uses (and any other pack editor may): validating a pack
without deploying it, the caller's pack permissions, the diagram contract's vocabulary,
optimistic concurrency on deploys (``if_latest``), a case on its diagram, and the pages."""

from __future__ import annotations

import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient

from govflow.api import pages
from govflow.engine.packs.loader import files_to_zip

DIAGRAM = "processes/frontline_disposal.bpmn"


def pack(version: str = "1.1.0", **manifest) -> dict[str, bytes]:
    return {
        "pack.yaml": yaml.safe_dump(
            {"name": "reference", "version": version, "extends": "reference@1.0.0", **manifest}
        ).encode()
    }


def post_zip(api, who, url, files: dict[str, bytes], **params):
    return api.client.post(
        url,
        content=files_to_zip(files),
        params=params,
        headers=api.headers(who, **{"Content-Type": "application/zip"}),
    )


def test_validate_says_what_deploying_would_and_stores_nothing(api, reference_files):
    fine = pack(settings={"deadlines": {"simple": {"sign_for": {"amount": 30, "unit": "minutes"}}}})
    response = post_zip(api, "district.supervisor", "/api/v1/packs/validate", fine)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["valid"], body["issues"]) == (True, [])
    assert body["pack"]["settings"]["deadlines"]["simple"]["sign_for"] == {"amount": 30, "unit": "minutes"}
    assert body["pack"]["extends"]["version"] == "1.0.0"

    broken = reference_files[DIAGRAM].replace(b"owner_unit is not None", b"__import__('os')")
    response = post_zip(api, "district.supervisor", "/api/v1/packs/validate", {**fine, DIAGRAM: broken})
    body = response.json()
    assert response.status_code == 200 and body["valid"] is False
    [issue] = body["issues"]
    assert issue["file"] == DIAGRAM and issue["element"] == "flow_routed" and issue["line"]
    # the same words as `govflow pack validate`: file:line [element]: message
    assert issue["text"] == f"{DIAGRAM}:{issue['line']} [flow_routed]: {issue['message']}"
    assert "unsafe or invalid expression" in issue["message"]

    bad_deadline = pack(settings={"deadlines": {"simple": {"sign_for": {"amount": -1, "unit": "fortnights"}}}})
    body = post_zip(api, "district.supervisor", "/api/v1/packs/validate", bad_deadline).json()
    assert body["valid"] is False
    assert any("settings.deadlines.simple.sign_for" in i["message"] for i in body["issues"])

    listed = api.get("district.supervisor", "/api/v1/packs").json()
    assert [v["version"] for v in listed] == ["1.0.0"]  # nothing stored


def test_validate_is_guarded_like_deploying_before_anything_is_compiled(api):
    assert post_zip(api, "citizen.zhang", "/api/v1/packs/validate", pack()).status_code == 403
    assert post_zip(api, "dongjie.dispatcher", "/api/v1/packs/validate", pack()).status_code == 403
    assert post_zip(api, None, "/api/v1/packs/validate", pack()).status_code == 401
    # a pack naming no district: only someone who may deploy somewhere learns what is wrong
    nameless = {"pack.yaml": b"name: x\nversion: '1'\n"}
    assert post_zip(api, "citizen.zhang", "/api/v1/packs/validate", nameless).status_code == 403
    body = post_zip(api, "district.supervisor", "/api/v1/packs/validate", nameless).json()
    assert body["valid"] is False and any(i["file"] == "pack.yaml" for i in body["issues"])
    not_zip = api.client.post(
        "/api/v1/packs/validate",
        content=b"<bpmn/>",
        headers=api.headers("district.supervisor", **{"Content-Type": "application/zip"}),
    )
    assert not_zip.status_code == 422 and not_zip.json()["issues"][0]["message"] == "not a zip archive"
    wrong_type = api.client.post(
        "/api/v1/packs/validate",
        content=b"x",
        headers=api.headers("district.supervisor", **{"Content-Type": "text/xml"}),
    )
    assert wrong_type.status_code == 422


def test_permissions_are_casbin_decisions_per_district(api):
    assert api.get("district.supervisor", "/api/v1/packs/permissions").json() == [
        {"district": "gulou", "actions": ["read_packs", "deploy_pack", "activate_pack"]}
    ]
    assert api.get("cc.supervisor", "/api/v1/packs/permissions").json() == [{"district": "gulou", "actions": []}]
    assert api.get("citizen.zhang", "/api/v1/packs/permissions").json() == [{"district": "gulou", "actions": []}]
    assert api.get(None, "/api/v1/packs/permissions").status_code == 401


def test_vocabulary_is_the_engines_own(api):
    from govflow.engine.model.lifecycle import RECORD_KINDS
    from govflow.engine.workflow.bpmn import ASSIGNEES
    from govflow.engine.workflow.roles import ROLE_ELEMENTS

    body = api.get("citizen.zhang", "/api/v1/packs/vocabulary").json()
    assert body["assignees"] == sorted(ASSIGNEES)
    assert body["record_kinds"] == list(RECORD_KINDS)
    assert {r["role"]: tuple(r["on"]) for r in body["roles"]} == ROLE_ELEMENTS
    assert body["tiers"] == ["simple", "complex", "difficult"]
    assert {"value": "dispatched", "zh": "分发"} in body["stages"]
    assert "import statements are not allowed in diagram scripts" in body["sandbox"]["refused"]
    assert body["sandbox"]["max_source"] == 4000 and "len" in body["sandbox"]["builtins"]
    assert api.get(None, "/api/v1/packs/vocabulary").status_code == 401


def test_if_latest_refuses_a_deploy_when_someone_deployed_first(api):
    url = "/api/v1/packs"
    first = post_zip(api, "district.supervisor", url, pack("1.1.0"), activate="false", if_latest="1.0.0")
    assert first.status_code == 201, first.text
    # a second editor who also started from 1.0.0 is told, and nothing of theirs is stored
    late = post_zip(api, "district.supervisor", url, pack("1.2.0"), activate="false", if_latest="1.0.0")
    assert late.status_code == 409
    assert late.json()["context"]["latest"] == "1.1.0" and "1.1.0" in late.json()["detail"]
    # the same version number chosen twice: versions are immutable
    taken = post_zip(api, "district.supervisor", url, pack("1.1.0", description="other"), activate="false")
    assert taken.status_code == 409 and "already deployed" in taken.json()["detail"]
    # the very same content again is still an idempotent no-op
    again = post_zip(api, "district.supervisor", url, pack("1.1.0"), activate="false", if_latest="1.0.0")
    assert again.status_code == 200
    assert [v["version"] for v in api.get("district.supervisor", "/api/v1/packs").json()] == ["1.0.0", "1.1.0"]
    assert (
        post_zip(api, "district.supervisor", url, pack("1.2.0"), activate="false", if_latest="1.1.0").status_code == 201
    )


def test_describe_lists_each_files_hash(api, reference_files):
    import hashlib

    shown = api.get("district.supervisor", "/api/v1/packs/reference/1.0.0").json()
    entry = next(f for f in shown["files"] if f["path"] == DIAGRAM)
    assert entry["sha256"] == hashlib.sha256(reference_files[DIAGRAM]).hexdigest()


def test_a_case_on_its_diagram(api):
    created = api.report(
        "citizen.zhang",
        description="东街口有个井盖没了，晚上很危险",
        location={"lat": 26.0865, "lng": 119.3025, "address": "东街口"},
    )
    case_id = created.json()["id"]
    response = api.get("dongjie.dispatcher", f"/api/v1/cases/{case_id}/diagram")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["pack"] == {"name": "reference", "version": "1.0.0"} and body["process"] == "frontline_disposal"
    assert [d["path"] for d in body["diagrams"]] == [DIAGRAM]
    assert 'id="frontline_disposal"' in body["diagrams"][0]["xml"]
    elements = body["elements"]
    assert elements["open"] == ["sign_for"]
    assert {"case_reported", "intake_start", "route_gw"} <= set(elements["completed"])
    assert {"intake", "sign_overdue", "withdrawal"} <= set(elements["waiting"])
    # signing for moves the case on: sign_for completed, handle open
    [task] = api.inbox("dongjie.dispatcher", case_id)
    assert api.complete("dongjie.dispatcher", task["id"]).status_code == 200
    elements = api.get("dongjie.dispatcher", f"/api/v1/cases/{case_id}/diagram").json()["elements"]
    assert "sign_for" in elements["completed"] and elements["open"] == ["handle"]
    assert "sign_overdue" in elements["cancelled"]
    # whoever may read the case may see it; others are told it does not exist
    assert api.get("citizen.zhang", f"/api/v1/cases/{case_id}/diagram").status_code == 200
    assert api.get("nanjie.dispatcher", f"/api/v1/cases/{case_id}/diagram").status_code == 404
    assert api.get("citizen.li", f"/api/v1/cases/{case_id}/diagram").status_code == 404


def test_pages_are_served_from_their_built_folder_offline(tmp_path):
    built = tmp_path / "dist"
    (built / "studio" / "chunks").mkdir(parents=True)
    (built / "studio" / "index.html").write_text("<!doctype html><title>studio</title>", encoding="utf-8")
    (built / "studio" / "chunks" / "a-1.js").write_text("export {}", encoding="utf-8")
    api = FastAPI()
    assert "studio" in pages.install(api, dist=built)
    with TestClient(api) as client:
        moved = client.get("/studio", follow_redirects=False)
        assert (moved.status_code, moved.headers["location"]) == (308, "/studio/")
        page = client.get("/studio/")
        assert page.status_code == 200 and "<title>studio</title>" in page.text
        assert page.headers["content-security-policy"] == pages.CSP and "connect-src 'self'" in pages.CSP
        assert page.headers["cache-control"] == "no-cache"
        chunk = client.get("/studio/chunks/a-1.js")
        assert chunk.status_code == 200 and "immutable" in chunk.headers["cache-control"]
        assert client.get("/studio/../../etc/passwd").status_code == 404
    # a page that was not built (no Node.js at set-up) says how to build it
    (built / "studio" / "index.html").unlink()
    with TestClient(api) as client:
        missing = client.get("/studio/")
        assert missing.status_code == 503 and "scripts/setup" in missing.text


def test_a_yaml_file_of_a_version_as_json(api, reference_files):
    from govflow.engine.model.yaml_text import load_yaml

    catalog = api.get("district.supervisor", "/api/v1/packs/reference/1.0.0/data/catalog.yaml")
    assert catalog.status_code == 200
    assert catalog.json() == load_yaml(reference_files["catalog.yaml"].decode("utf-8"))
    assert api.get("district.supervisor", f"/api/v1/packs/reference/1.0.0/data/{DIAGRAM}").status_code == 404
    assert api.get("district.supervisor", "/api/v1/packs/reference/1.0.0/data/nope.yaml").status_code == 404
    assert api.get("dongjie.dispatcher", "/api/v1/packs/reference/1.0.0/data/catalog.yaml").status_code in (403, 404)
