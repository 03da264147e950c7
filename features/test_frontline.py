"""Step definitions for frontline.feature, against the real API and database."""

from __future__ import annotations

import shutil

import pytest
from pytest_bdd import given, parsers, scenarios, then, when
from typer.testing import CliRunner

from govflow.cli import app as cli
from govflow.settings import REFERENCE_PACK

scenarios("frontline.feature")

# Every scenario runs once per database back-end (SQLite, and PostgreSQL when configured).
pytestmark = pytest.mark.usefixtures("database")


def _case(api, ctx):
    response = api.get("cc.supervisor", f"/api/v1/cases/{ctx['case']}")
    assert response.status_code == 200, response.text
    return response.json()


def _task(api, ctx, who, name):
    tasks = [t for t in api.inbox(who, ctx["case"]) if t["name"] == name]
    assert tasks, f"{who} has no {name} task for the case"
    return tasks[0]["id"]


def _complete(api, ctx, who, name, **data):
    response = api.complete(who, _task(api, ctx, who, name), **data)
    assert response.status_code == 200, response.text
    return response


@given("the reference pack of Gulou district is active")
def _active(api):
    assert api.get(None, "/healthz").json()["districts"] == ["gulou"]


@given(parsers.parse('{who} has reported "{text}" at {lat:g}, {lng:g}'), target_fixture="ctx")
@when(parsers.parse('{who} reports "{text}" at {lat:g}, {lng:g}'), target_fixture="ctx")
def _report(api, who, text, lat, lng):
    response = api.report(who, description=text, location={"lat": lat, "lng": lng, "address": "测试地址"},
                          reporter={"name": "张伟", "phone": "13812345678"})
    assert response.status_code == 201, response.text
    return {"case": response.json()["id"]}


@when(parsers.parse('{who} reports "{text}" without a location'), target_fixture="ctx")
def _report_nowhere(api, who, text):
    response = api.report(who, description=text)
    assert response.status_code == 201, response.text
    return {"case": response.json()["id"]}


@given(parsers.parse('{who} has signed for it and handled it with "{result}"'))
def _signed_and_handled(api, ctx, who, result):
    _complete(api, ctx, who, "sign_for")
    _complete(api, ctx, who, "handle", result=result)


@when(parsers.parse('{who} completes "{name:w}"'))
def _complete_plain(api, ctx, who, name):
    _complete(api, ctx, who, name)


@when(parsers.parse('{who} completes "handle" with result "{result}"'))
def _complete_handle(api, ctx, who, result):
    _complete(api, ctx, who, "handle", result=result)


@when(parsers.parse('{who} completes "review" approving it'))
def _approve(api, ctx, who):
    _complete(api, ctx, who, "review", approved=True, opinion="现场核实已处理")


@when(parsers.parse('{who} completes "review" sending it back with "{opinion}"'))
def _send_back(api, ctx, who, opinion):
    _complete(api, ctx, who, "review", approved=False, opinion=opinion)


@when(parsers.parse('{who} completes "evaluate" with satisfaction {score:d}'))
def _evaluate(api, ctx, who, score):
    _complete(api, ctx, who, "evaluate", satisfaction=score, comment="处理及时")


@when(parsers.parse('{who} dispatches it to "{street}"'))
def _dispatch(api, ctx, who, street):
    _complete(api, ctx, who, "dispatch", street=street, matter="road.manhole_cover")


@when(parsers.parse('{who} withdraws the case because "{reason}"'))
def _withdraw(api, ctx, who, reason):
    ctx["response"] = api.post(who, f"/api/v1/cases/{ctx['case']}/withdraw", json={"reason": reason})


@when(parsers.parse('{who} tries to complete the "{name}" task'))
def _try_complete(api, ctx, who, name):
    task = _task(api, ctx, "cc.supervisor" if name == "dispatch" else _owner_dispatcher(api, ctx), name)
    ctx["response"] = api.complete(who, task)


def _owner_dispatcher(api, ctx):
    owner = _case(api, ctx)["owner_unit"]
    return owner.split(".", 1)[1] + ".dispatcher"


@then(parsers.parse('the case is "{status}" and owned by "{owner}" as "{category}"'))
def _status_owner_category(api, ctx, status, owner, category):
    case = _case(api, ctx)
    assert (case["status"], case["owner_unit"], case["category"]) == (status, owner, category)


@then(parsers.parse('the case is "{status}" and owned by "{owner}"'))
def _status_owner(api, ctx, status, owner):
    case = _case(api, ctx)
    assert (case["status"], case["owner_unit"]) == (status, owner)


@then(parsers.parse('the case is "{status:w}" and closed'))
def _closed(api, ctx, status):
    case = _case(api, ctx)
    assert case["status"] == status
    assert case["closed_at"] is not None
    assert case["open_tasks"] == []


@then(parsers.parse('the case is "{status:w}"'))
def _status(api, ctx, status):
    assert _case(api, ctx)["status"] == status


@then(parsers.parse('{who} has a "{name}" task for the case'))
def _has_task(api, ctx, who, name):
    assert [t["name"] for t in api.inbox(who, ctx["case"])] == [name]


@then("nobody has an open task for the case")
def _no_tasks(api, ctx):
    assert _case(api, ctx)["open_tasks"] == []


@then(parsers.parse("the timeline shows {kinds} in order"))
def _timeline(api, ctx, kinds):
    events = api.get("citizen.zhang", f"/api/v1/cases/{ctx['case']}/events").json()
    seen = [e["kind"] for e in events]
    positions = [seen.index(kind) for kind in kinds.split(", ")]
    assert positions == sorted(positions), seen
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))


@then("every event names its actor and the power it acted under")
def _powers(api, ctx):
    events = api.get("cc.supervisor", f"/api/v1/cases/{ctx['case']}/events").json()
    assert all(e["actor"] and e["power"] for e in events)
    completed = [e for e in events if e["kind"] == "task.completed"]
    assert {e["actor"] for e in completed} == {"dongjie.dispatcher", "citizen.zhang"}
    assert any(e["power"].startswith("street_dispatcher@") for e in completed)


@then(parsers.parse("the request is refused with {code:d}"))
def _refused(ctx, code):
    response = ctx["response"]
    assert response.status_code == code, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == code


@then(parsers.parse("{who} cannot read the case"))
def _cannot_read(api, ctx, who):
    assert api.get(who, f"/api/v1/cases/{ctx['case']}").status_code == 403


@given(parsers.parse('a copy of the reference pack whose diagram has a script task running "{script}"'), target_fixture="ctx")
def _hostile_pack(tmp_path, script):
    pack = tmp_path / "pack"
    pack.mkdir()
    for entry in ("pack.yaml", "catalog.yaml", "boundaries.geojson", "processes", "policies"):
        source = REFERENCE_PACK / entry
        if source.is_dir():
            shutil.copytree(source, pack / entry)
        else:
            shutil.copy(source, pack / entry)
    diagram = pack / "processes" / "frontline_disposal.bpmn"
    xml = diagram.read_text(encoding="utf-8")
    xml = xml.replace(
        '<bpmn:sequenceFlow id="flow_to_intake" sourceRef="case_reported" targetRef="intake" />',
        '<bpmn:sequenceFlow id="flow_to_intake" sourceRef="case_reported" targetRef="hostile_script" />\n'
        f'    <bpmn:scriptTask id="hostile_script"><bpmn:incoming>flow_to_intake</bpmn:incoming>'
        f'<bpmn:outgoing>flow_after_script</bpmn:outgoing><bpmn:script>{script}</bpmn:script></bpmn:scriptTask>\n'
        '    <bpmn:sequenceFlow id="flow_after_script" sourceRef="hostile_script" targetRef="intake" />',
    ).replace('<bpmn:incoming>flow_to_intake</bpmn:incoming>\n      <bpmn:incoming>flow_sent_back</bpmn:incoming>',
              '<bpmn:incoming>flow_after_script</bpmn:incoming>\n      <bpmn:incoming>flow_sent_back</bpmn:incoming>')
    diagram.write_text(xml, encoding="utf-8")
    return {"pack": pack}


@when(parsers.parse('the pack is validated with "govflow pack validate"'))
def _validate(ctx):
    ctx["result"] = CliRunner().invoke(cli, ["pack", "validate", str(ctx["pack"])])


@then(parsers.parse('validation fails naming "{file}" and the element "{element}"'))
def _fails(ctx, file, element):
    result = ctx["result"]
    assert result.exit_code == 1, result.output
    assert f"{file}:" in result.output and f"[{element}]" in result.output


@then(parsers.parse('the message says "{text}"'))
def _message(ctx, text):
    assert text in ctx["result"].output
