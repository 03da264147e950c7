"""The REST API door: authentication, problem details, input bounds, idempotency, OpenAPI."""

from __future__ import annotations

import pytest

CASE = {
    "channel": "wechat",
    "description": "东街口有个井盖没了，晚上很危险",
    "location": {"lat": 26.0865, "lng": 119.3025, "address": "东街口"},
    "reporter": {"name": "张伟", "phone": "13812345678"},
}


def assert_problem(response, status):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert (
        body["status"] == status
        and body["title"]
        and body["detail"]
        and body["type"].startswith("urn:govflow:problem:")
    )
    return body


def test_openapi_and_docs_are_served(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/v1/cases",
        "/api/v1/cases/{case_id}",
        "/api/v1/cases/{case_id}/events",
        "/api/v1/tasks",
        "/api/v1/tasks/{task_id}/complete",
        "/api/v1/cases/{case_id}/withdraw",
    ):
        assert path in paths


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", "Basic abc"])
def test_unknown_callers_are_refused(api, header):
    response = api.client.get("/api/v1/tasks", headers={"Authorization": header} if header else {})
    assert_problem(response, 401)


def test_create_is_idempotent_with_the_header(api):
    first = api.post("hotline12345", "/api/v1/cases", json=CASE, headers={"Idempotency-Key": "12345-call-77"})
    again = api.post("hotline12345", "/api/v1/cases", json=CASE, headers={"Idempotency-Key": "12345-call-77"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"] and again.json()["replayed"] is True
    changed = dict(CASE, description="另一件事")
    assert_problem(
        api.post("hotline12345", "/api/v1/cases", json=changed, headers={"Idempotency-Key": "12345-call-77"}), 422
    )


def test_bad_json_and_bad_fields_are_precise(api):
    response = api.client.post(
        "/api/v1/cases",
        content=b"{not json",
        headers={**api.headers("citizen.zhang"), "Content-Type": "application/json"},
    )
    assert_problem(response, 422)
    body = assert_problem(api.post("citizen.zhang", "/api/v1/cases", json=dict(CASE, channel="fax")), 422)
    assert any(e["loc"][-1] == "channel" for e in body["errors"])
    body = assert_problem(api.post("citizen.zhang", "/api/v1/cases", json=dict(CASE, extra="x")), 422)
    assert any(e["loc"][-1] == "extra" for e in body["errors"])
    body = assert_problem(api.post("citizen.zhang", "/api/v1/cases", json=dict(CASE, category="no.such")), 422)
    assert body["errors"][0]["loc"] == ["category"]


def test_oversized_bodies_are_refused_before_parsing(api):
    huge = dict(CASE, description="坑" * 600_000)
    assert_problem(api.post("citizen.zhang", "/api/v1/cases", json=huge), 413)


def test_task_form_errors_and_forged_ids(api):
    case = api.post("citizen.zhang", "/api/v1/cases", json=CASE).json()["id"]
    assert_problem(api.get("cc.supervisor", "/api/v1/cases/not-a-uuid"), 404)
    assert_problem(api.complete("dongjie.dispatcher", "00000000-0000-0000-0000-000000000000"), 404)
    sign = api.inbox("dongjie.dispatcher", case)[0]["id"]
    assert api.complete("dongjie.dispatcher", sign).status_code == 200
    handle = api.inbox("dongjie.dispatcher", case)[0]["id"]
    body = assert_problem(api.complete("dongjie.dispatcher", handle, result=""), 422)
    assert body["errors"][0]["loc"] == ["result"]
    stale = api.post(
        "dongjie.dispatcher", f"/api/v1/tasks/{handle}/complete", json={"data": {"result": "ok"}, "expected_version": 1}
    )
    assert_problem(stale, 409)


def test_case_view_masks_personal_data_for_integrators(api):
    case = api.post("citizen.zhang", "/api/v1/cases", json=CASE).json()["id"]
    seen = api.get("hotline12345", f"/api/v1/cases/{case}").json()
    assert seen["reporter"] == {"name": "张*", "phone": "138****5678", "masked": True}
    assert seen["status"] == "dispatched" and seen["open_tasks"][0]["name"] == "sign_for"
    assert api.get("dongjie.dispatcher", f"/api/v1/cases/{case}").json()["reporter"]["masked"] is False
