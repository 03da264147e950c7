"""Incidents, not 500s or lies (issue 14), through the real API.

A failure inside diagram code during a user's command is a 409 problem naming the element, and
nothing is written; during a timer run it is an open incident that operators list and retry, after
fixing the cause by migrating the case to a fixed pack version (also through the API).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, update

from govflow.engine.cases.timers import fire_due
from govflow.engine.store.db import CaseEvent, CaseRow
from tests.engine.test_pack_migration import DIAGRAM, deploy_diagram, replace_once

DONGJIE = dict(lat=26.0865, lng=119.3025)
ROUTE = "<bpmn:conditionExpression>owner_unit is not None</bpmn:conditionExpression>"


def counts(db):
    with db.connect() as conn:
        return (
            conn.execute(select(func.count()).select_from(CaseRow)).scalar_one(),
            conn.execute(select(func.count()).select_from(CaseEvent)).scalar_one(),
        )


def test_a_failing_script_in_a_users_command_is_a_409_naming_the_element(govflow, api, reference_files):
    broken = replace_once(
        reference_files[DIAGRAM].decode(),
        ROUTE,
        "<bpmn:conditionExpression>no_such_function(owner_unit)</bpmn:conditionExpression>",
    )
    deploy_diagram(govflow, "1.0.1", broken)
    govflow.packs.activate("reference", "1.0.1")
    before = counts(govflow.db)
    response = api.report("citizen.zhang", description="井盖没了", location=DONGJIE)
    assert response.status_code == 409, response.text
    body = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert body["type"].endswith("diagram-failed")
    assert "no_such_function" in body["detail"] and body["context"]["element"]
    assert counts(govflow.db) == before  # nothing written


def test_incidents_are_listed_retried_and_counted_and_migration_is_an_api_action(
    govflow, api, principals, clock, reference_files
):
    case = api.report("citizen.zhang", description="井盖没了", location=DONGJIE).json()["id"]
    with govflow.db.begin() as conn:  # a state that no longer restores
        conn.execute(update(CaseRow).where(CaseRow.id == __import__("uuid").UUID(case)).values(state=b"broken"))
    clock.advance(dt.timedelta(minutes=11))
    assert fire_due(govflow.cases).failed == 1
    listed = api.get("district.supervisor", "/api/v1/incidents")
    assert listed.status_code == 200, listed.text
    [incident] = listed.json()
    assert (incident["case_id"], incident["status"], incident["attempts"]) == (case, "open", 1)
    assert api.get("gudong.dispatcher", "/api/v1/incidents").status_code == 403
    assert api.post("gudong.dispatcher", f"/api/v1/incidents/{incident['id']}/retry").status_code == 403
    again = api.post("district.supervisor", f"/api/v1/incidents/{incident['id']}/retry")
    assert again.status_code == 409 and again.json()["context"]["incident"] == incident["id"]
    metrics = api.get(None, "/metrics").text
    assert 'govflow_open_incidents{district="gulou"} 1.0' in metrics
    assert api.post("district.supervisor", "/api/v1/incidents/999999/retry").status_code == 404
    deploy_diagram(govflow, "1.0.1", reference_files[DIAGRAM].decode())
    body = {"source": "1.0.0", "target": "1.0.1", "dry_run": True}
    assert api.post("gudong.dispatcher", "/api/v1/packs/reference/migrations", json=body).status_code == 403
    moved = api.post("district.supervisor", "/api/v1/packs/reference/migrations", json=body)
    assert moved.status_code == 200, moved.text
    assert moved.json()["refused"][case] and moved.json()["dry_run"] is True  # its state does not restore
