"""Incidents, not lies (issue 14.2), through the real API.

* Migrating cases through ``POST /api/v1/packs/{name}/migrations`` is a command like any other:
  the case's deadlines and ``next_due`` are recomputed from its workflow under the target version,
  ``case.migrated`` is on its record, and a case stuck in an incident runs again on the fixed
  version at the next tick (the incident is resolved).
* A case's status is ``evaluated`` only when its workflow is complete: a path that waits after the
  last user task leaves it open, and a loop after the last user task is a 409 that writes nothing.
"""

from __future__ import annotations

import datetime as dt

import pytest
import yaml
from sqlalchemy import func, select

from govflow.engine.cases import incidents
from govflow.engine.cases.timers import fire_due
from govflow.engine.store.db import CaseRow
from tests.api.test_deadlines_everywhere import CASE, START, done, task
from tests.engine.test_pack_migration import DIAGRAM, case_row, deploy, deploy_diagram, replace_once

SUPERVISE_DUE = '<bpmn:timeDate>due("supervise", tier)</bpmn:timeDate>'
TO_CLOSED = '<bpmn:sequenceFlow id="flow_to_closed" sourceRef="evaluation_gw" targetRef="case_closed" />'
CLOSED_IN = "<bpmn:incoming>flow_to_closed</bpmn:incoming>"


def events_of(api, case):
    response = api.get("district.supervisor", f"/api/v1/cases/{case}/events")
    assert response.status_code == 200, response.text
    return response.json()


def test_migrating_through_the_api_recomputes_deadlines_and_next_due_and_is_on_the_record(
    govflow, api, clock, reference_files
):
    diagram = reference_files[DIAGRAM].decode()
    # 1.0.1: the supervise step's deadline cannot be computed, so the sign-for timer's run fails
    deploy_diagram(govflow, "1.0.1", replace_once(diagram, SUPERVISE_DUE, SUPERVISE_DUE.replace("tier)", "tiers())")))
    govflow.packs.activate("reference", "1.0.1")
    case = api.report("citizen.zhang", **CASE).json()["id"]
    sign_for = task(api, "dongjie.dispatcher", case, "sign_for")
    assert sign_for["due_at"] == "2026-09-28T01:10:00.000000Z"
    clock.set(START + dt.timedelta(minutes=11))
    assert fire_due(govflow.cases).failed == 1
    [incident] = incidents.list_incidents(govflow.db)
    stuck = case_row(govflow, case)
    assert stuck.next_due == incident.retry_at > START + dt.timedelta(minutes=11)  # the back-off

    # 1.0.2: the reference diagram again, and three working hours to supervise in every tier
    settings = {
        "deadlines": {
            t: {"supervise": {"amount": 3, "unit": "working_hours"}} for t in ("simple", "complex", "difficult")
        }
    }
    manifest = {"name": "reference", "version": "1.0.2", "extends": "reference@1.0.0", "settings": settings}
    deploy(govflow, {"pack.yaml": yaml.safe_dump(manifest).encode()})
    body = {"source": "1.0.1", "target": "1.0.2", "cases": [case]}
    assert api.post("dongjie.dispatcher", "/api/v1/packs/reference/migrations", json=body).status_code == 403
    moved = api.post("district.supervisor", "/api/v1/packs/reference/migrations", json=body)
    assert moved.status_code == 200, moved.text
    assert (moved.json()["migrated"], moved.json()["refused"], moved.json()["dry_run"]) == ([case], {}, False)

    row = case_row(govflow, case)
    assert (row.pack_version, row.version) == ("1.0.2", stuck.version + 1)
    assert row.next_due == START + dt.timedelta(minutes=10)  # the sign-for deadline again, not the back-off
    last = events_of(api, case)[-1]
    assert (last["kind"], last["actor"], last["data"]) == (
        "case.migrated",
        "district.supervisor",
        {"from": "1.0.1", "to": "1.0.2", "pack": "reference"},
    )
    assert task(api, "dongjie.dispatcher", case, "sign_for")["due_at"] == sign_for["due_at"]

    # the next tick runs the overdue sign-for under 1.0.2: supervise opens with 1.0.2's deadline
    assert fire_due(govflow.cases).failed == 0
    supervise = task(api, "cc.supervisor", case, "supervise")
    # 09:11 in Gulou + 3 working hours (08:30-12:00, 14:30-17:30) = 14:41, 06:41 UTC
    assert supervise["due_at"] == "2026-09-28T06:41:00.000000Z"
    assert incidents.list_incidents(govflow.db) == []
    kinds = [e["kind"] for e in events_of(api, case)]
    assert kinds.index("case.migrated") < kinds.index("incident.resolved")
    with govflow.db.connect() as conn:
        next_due = conn.execute(select(CaseRow.next_due).where(CaseRow.id == row.id)).scalar_one()
    assert next_due == dt.datetime(2026, 9, 28, 6, 41, tzinfo=dt.UTC)


def lifecycle_to_evaluate(api, case):
    for name, data in (("sign_for", {}), ("handle", {"result": "已补装"}), ("review", {"approved": True})):
        done(api.complete("dongjie.dispatcher", task(api, "dongjie.dispatcher", case, name)["id"], **data))
    return task(api, "citizen.zhang", case, "evaluate")


def test_a_path_that_waits_after_the_last_task_is_not_evaluated_until_it_completes(
    govflow, api, clock, reference_files
):
    cooling = (
        '<bpmn:sequenceFlow id="flow_to_closed" sourceRef="evaluation_gw" targetRef="cooling" />'
        '<bpmn:intermediateCatchEvent id="cooling"><bpmn:incoming>flow_to_closed</bpmn:incoming>'
        "<bpmn:outgoing>flow_cooled</bpmn:outgoing>"
        '<bpmn:timerEventDefinition id="cooling_timer"><bpmn:timeDate>due("evaluate", tier)</bpmn:timeDate>'
        "</bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>"
        '<bpmn:sequenceFlow id="flow_cooled" sourceRef="cooling" targetRef="case_closed" />'
    )
    diagram = replace_once(reference_files[DIAGRAM].decode(), CLOSED_IN, "<bpmn:incoming>flow_cooled</bpmn:incoming>")
    deploy_diagram(govflow, "1.0.1", replace_once(diagram, TO_CLOSED, cooling))
    govflow.packs.activate("reference", "1.0.1")
    case = api.report("citizen.zhang", **CASE).json()["id"]
    evaluate = lifecycle_to_evaluate(api, case)
    done(api.complete("citizen.zhang", evaluate["id"], satisfaction=5))
    waiting = api.get("citizen.zhang", f"/api/v1/cases/{case}").json()
    assert waiting["open_tasks"] == [] and waiting["closed_at"] is None
    assert waiting["status"] != "evaluated", "no open task, but the workflow waits on a timer: not complete"
    assert case_row(govflow, case).next_due is not None
    clock.advance(dt.timedelta(days=30))
    assert fire_due(govflow.cases).failed == 0
    closed = api.get("citizen.zhang", f"/api/v1/cases/{case}").json()
    assert (closed["status"], closed["open_tasks"]) == ("evaluated", [])
    assert closed["closed_at"] is not None


def test_a_loop_after_the_last_task_is_a_409_and_the_case_is_not_evaluated(govflow, api, reference_files):
    spin = (
        '<bpmn:sequenceFlow id="flow_to_closed" sourceRef="evaluation_gw" targetRef="spin" />'
        '<bpmn:scriptTask id="spin"><bpmn:incoming>flow_to_closed</bpmn:incoming>'
        "<bpmn:incoming>flow_again</bpmn:incoming><bpmn:outgoing>flow_spun</bpmn:outgoing>"
        "<bpmn:script>spins = 1</bpmn:script></bpmn:scriptTask>"
        '<bpmn:sequenceFlow id="flow_spun" sourceRef="spin" targetRef="spin_gw" />'
        '<bpmn:exclusiveGateway id="spin_gw" default="flow_stop"><bpmn:incoming>flow_spun</bpmn:incoming>'
        "<bpmn:outgoing>flow_again</bpmn:outgoing><bpmn:outgoing>flow_stop</bpmn:outgoing></bpmn:exclusiveGateway>"
        '<bpmn:sequenceFlow id="flow_again" sourceRef="spin_gw" targetRef="spin">'
        "<bpmn:conditionExpression>spins &gt; 0</bpmn:conditionExpression></bpmn:sequenceFlow>"
        '<bpmn:sequenceFlow id="flow_stop" sourceRef="spin_gw" targetRef="case_closed" />'
    )
    diagram = replace_once(reference_files[DIAGRAM].decode(), CLOSED_IN, "<bpmn:incoming>flow_stop</bpmn:incoming>")
    deploy_diagram(govflow, "1.0.1", replace_once(diagram, TO_CLOSED, spin))
    govflow.packs.activate("reference", "1.0.1")
    case = api.report("citizen.zhang", **CASE).json()["id"]
    evaluate = lifecycle_to_evaluate(api, case)
    before = case_row(govflow, case)
    refused = api.complete("citizen.zhang", evaluate["id"], satisfaction=5)
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["context"]["element"] in {"spin", "spin_gw", "flow_again"}
    after = case_row(govflow, case)
    assert (after.version, after.status, after.closed_at) == (before.version, before.status, None)
    assert after.status != "evaluated"
    assert task(api, "citizen.zhang", case, "evaluate")["id"] == evaluate["id"]  # still open, nothing written


ROUTE = "<bpmn:conditionExpression>owner_unit is not None</bpmn:conditionExpression>"


@pytest.mark.parametrize(
    "condition",
    [
        "no_such_function(owner_unit)",  # a name the sandbox does not provide
        "('{0.__class__}' + owner_unit).format(1) != ''",  # a refused str.format
        "1 / (len(owner_unit) - len(owner_unit)) &gt; 0",  # ZeroDivisionError
        "{}[owner_unit] is None",  # KeyError
        "int(owner_unit) &gt; 0",  # ValueError
        "10 ** (len(owner_unit) ** 4) &gt; 0",  # a huge power from the case's data: a limit
        "len(owner_unit * 10 ** 8) &gt; 0",  # a huge repetition from the case's data: a limit
    ],
)
def test_every_runtime_failure_in_a_users_command_is_a_409_naming_the_element(govflow, api, reference_files, condition):
    """Runtime failures in diagram code, as a class: a 409 problem naming the element, nothing written."""
    hostile = f"<bpmn:conditionExpression>{condition}</bpmn:conditionExpression>"
    deploy_diagram(govflow, "1.0.1", replace_once(reference_files[DIAGRAM].decode(), ROUTE, hostile))
    govflow.packs.activate("reference", "1.0.1")
    with govflow.db.connect() as conn:
        before = conn.execute(select(func.count()).select_from(CaseRow)).scalar_one()
    response = api.report("citizen.zhang", **CASE)
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == "urn:govflow:problem:diagram-failed", body
    assert body["context"]["element"] == "route_gw", body  # the gateway whose condition failed
    with govflow.db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(CaseRow)).scalar_one() == before
