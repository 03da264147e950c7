"""Prometheus metrics: request latency by route template, committed events and commands, DB gauges."""

from __future__ import annotations

import re


def value(text: str, name: str, labels: str = "") -> float:
    pattern = re.escape(name) + (r"\{" + labels + r"\}" if labels else "") + r" ([0-9.e+-]+)"
    match = re.search(pattern, text)
    assert match, f"{name} {labels} not in metrics"
    return float(match.group(1))


def test_metrics_count_commands_events_latency_and_open_cases(client, tokens):
    before = client.get("/metrics").text
    body = {"channel": "app", "description": "东街口有个井盖没了", "location": {"lat": 26.0865, "lng": 119.3025}}
    created = client.post("/api/v1/cases", json=body, headers={"Authorization": f"Bearer {tokens['citizen.zhang']}"})
    assert created.status_code == 201, created.text
    case_id = created.json()["id"]
    assert (
        client.get(
            f"/api/v1/cases/{case_id}", headers={"Authorization": f"Bearer {tokens['dongjie.dispatcher']}"}
        ).status_code
        == 200
    )
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert value(text, "govflow_events_total", 'kind="case.reported"') == 1
    assert value(text, "govflow_commands_total", 'kind="case.reported"') == 1
    assert value(text, "govflow_open_cases", 'stage="dispatched"') == 1
    assert value(text, "govflow_overdue_tasks") == 0
    # latency is recorded under the route template, never the concrete path (it holds ids)
    assert 'route="/api/v1/cases/{case_id}"' in text and case_id not in text
    assert (
        value(text, "govflow_http_request_duration_seconds_count", r'method="POST",route="/api/v1/cases",status="201"')
        == 1
    )
    assert "govflow_events_total" not in before or 'kind="case.reported"' not in before


def test_a_task_whose_deadline_fired_stays_overdue_and_timers_are_counted(client, tokens, govflow, clock):
    """The handle task's overdue timer fires (non-interrupting): the task stays open, still overdue."""
    import datetime as dt

    from govflow.engine.cases.timers import fire_due

    def as_(who):
        return {"Authorization": f"Bearer {tokens[who]}"}

    body = {"channel": "app", "description": "东街口有个井盖没了", "location": {"lat": 26.0865, "lng": 119.3025}}
    created = client.post("/api/v1/cases", json=body, headers=as_("citizen.zhang"))
    assert created.status_code == 201, created.text
    [task] = [
        t for t in client.get("/api/v1/tasks", headers=as_("dongjie.dispatcher")).json() if t["name"] == "sign_for"
    ]
    signed = client.post(f"/api/v1/tasks/{task['id']}/complete", json={"data": {}}, headers=as_("dongjie.dispatcher"))
    assert signed.status_code == 200, signed.text
    before = client.get("/metrics").text
    assert value(before, "govflow_overdue_tasks") == 0
    clock.advance(dt.timedelta(days=3))  # past the handle task's deadline (one working day)
    fire_due(govflow.cases)
    [handle] = [
        t for t in client.get("/api/v1/tasks", headers=as_("dongjie.dispatcher")).json() if t["name"] == "handle"
    ]
    assert handle["due_at"] is None  # the row shows no pending deadline once its timer fired …
    text = client.get("/metrics").text
    assert value(text, "govflow_overdue_tasks") == 1  # … yet the task is overdue
    assert value(text, "govflow_timers_fired_total") >= 1
