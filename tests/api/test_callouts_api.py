"""The call-out doors: precise refusals for bad input, forged ids and wrong moments."""

from __future__ import annotations

import pytest

CASE = {
    "channel": "app",
    "description": "东街口有个井盖没了，晚上很危险",
    "location": {"lat": 26.0865, "lng": 119.3025},
}


def problem(response, status):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()


@pytest.fixture
def signed_case(api):
    case = api.post("citizen.zhang", "/api/v1/cases", json=CASE).json()["id"]
    assert api.complete("dongjie.dispatcher", api.inbox("dongjie.dispatcher", case)[0]["id"]).status_code == 200
    return case


def call(api, who, case, **body):
    body.setdefault("reason", "联合处置")
    return api.post(who, f"/api/v1/cases/{case}/call-outs", json=body)


def test_call_out_input_is_checked(api, signed_case):
    assert (
        problem(call(api, "dongjie.dispatcher", signed_case, departments=[]), 422)["errors"][0]["loc"][-1]
        == "departments"
    )
    assert problem(call(api, "dongjie.dispatcher", signed_case, departments=[f"gulou.d{i}" for i in range(11)]), 422)
    body = problem(call(api, "dongjie.dispatcher", signed_case, departments=["gulou.nowhere"]), 422)
    assert "unknown department 'gulou.nowhere'" in body["errors"][0]["msg"]
    assert problem(
        call(api, "dongjie.dispatcher", signed_case, departments=["gulou.dongjie"]), 422
    )  # a street, not a department
    assert problem(
        call(api, "dongjie.dispatcher", signed_case, departments=["gulou.cgj"], meeting_at="2026-09-28T15:00:00"), 422
    )  # no zone
    assert problem(call(api, "dongjie.dispatcher", signed_case, departments=["gulou.cgj"], main="gulou.zjj"), 422)
    assert problem(
        call(api, "dongjie.dispatcher", "00000000-0000-0000-0000-000000000000", departments=["gulou.cgj"]), 404
    )
    assert problem(call(api, "citizen.zhang", signed_case, departments=["gulou.cgj"]), 403)
    # nothing of the refused attempts is on the record
    kinds = [e["kind"] for e in api.get("cc.supervisor", f"/api/v1/cases/{signed_case}/events").json()]
    assert "callout.made" not in kinds


def test_a_call_out_needs_a_case_being_handled(api):
    case = api.post("citizen.zhang", "/api/v1/cases", json=CASE).json()["id"]  # not signed for yet
    body = problem(call(api, "dongjie.dispatcher", case, departments=["gulou.cgj"]), 409)
    assert "only while the street is handling" in body["detail"]


def test_delegation_input_is_checked(api):
    good = {
        "street": "gulou.dongjie",
        "department": "gulou.hbj",
        "matter_pattern": "road.*",
        "expires_at": "2099-01-01T00:00:00+08:00",
        "reason": "试点",
    }
    for field, value, status in (
        ("street", "gulou.cgj", 422),
        ("department", "gulou.dongjie", 422),
        ("matter_pattern", "road*", 422),
        ("expires_at", "2000-01-01T00:00:00+08:00", 422),
    ):
        body = problem(api.post("district.supervisor", "/api/v1/delegations", json={**good, field: value}), status)
        assert body["errors"][0]["loc"][-1] == field
    assert problem(api.post("dongjie.dispatcher", "/api/v1/delegations", json=good), 403)
    assert api.post("district.supervisor", "/api/v1/delegations", json=good).status_code == 201


def test_responsibility_query_checks_its_input(api):
    assert problem(api.get("dongjie.dispatcher", "/api/v1/responsibility?matter=no.such"), 422)
    assert problem(api.get("dongjie.dispatcher", "/api/v1/responsibility?matter=road.pothole&street=gulou.cgj"), 422)
    answer = api.get("dongjie.dispatcher", "/api/v1/responsibility?matter=road.pothole").json()
    assert answer["matched_entry"] in ("road.pothole", "road.*") and answer["main"].startswith("gulou.")
