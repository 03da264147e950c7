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
    def refused(status, case=signed_case, who="dongjie.dispatcher", **body):
        return problem(call(api, who, case, **body), status)

    assert refused(422, departments=[])["errors"][0]["loc"] == ["body", "departments"]
    too_many = refused(422, departments=[f"gulou.d{i}" for i in range(11)])
    assert too_many["errors"] == [
        {"loc": ["body", "departments"], "msg": "List should have at most 10 items after validation, not 11"}
    ]
    assert refused(422, departments=["gulou.nowhere"])["errors"] == [
        {"loc": ["departments"], "msg": "unknown department 'gulou.nowhere'"}
    ]
    a_street = refused(422, departments=["gulou.dongjie"])  # a street, not a department
    assert a_street["detail"] == "'gulou.dongjie' is not a department of gulou"
    no_zone = refused(422, departments=["gulou.cgj"], meeting_at="2026-09-28T15:00:00")
    assert no_zone["errors"] == [{"loc": ["body", "meeting_at"], "msg": "Input should have timezone info"}]
    main_not_called = refused(422, departments=["gulou.cgj"], main="gulou.zjj")
    assert main_not_called["errors"] == [{"loc": ["main"], "msg": "not among departments"}]
    missing = refused(404, case="00000000-0000-0000-0000-000000000000", departments=["gulou.cgj"])
    assert (missing["detail"], missing["context"]) == (
        "no such case",
        {"case": "00000000-0000-0000-0000-000000000000"},
    )
    citizen = refused(403, who="citizen.zhang", departments=["gulou.cgj"])
    assert citizen["detail"] == "citizen.zhang (citizen) may not call_out in gulou/gulou.dongjie"
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
    unknown = problem(api.get("dongjie.dispatcher", "/api/v1/responsibility?matter=no.such"), 422)
    assert (unknown["detail"], unknown["errors"]) == (
        "'no.such' is not a matter of gulou",
        [{"loc": ["matter"], "msg": "unknown matter"}],
    )
    not_a_street = problem(
        api.get("dongjie.dispatcher", "/api/v1/responsibility?matter=road.pothole&street=gulou.cgj"), 422
    )
    assert (not_a_street["detail"], not_a_street["errors"]) == (
        "'gulou.cgj' is not a street of gulou",
        [{"loc": ["street"], "msg": "unknown street"}],
    )


def test_responsibility_names_the_exact_entry_when_there_is_one(api):
    response = api.get("dongjie.dispatcher", "/api/v1/responsibility?matter=road.pothole&street=gulou.dongjie")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "district": "gulou",
        "matter": "road.pothole",
        "street": "gulou.dongjie",
        "main": "gulou.cgj",
        "cooperating": ["gulou.zjj", "gulou.jj"],
        "matched_entry": "road.pothole",
        "why": "exact entry for road.pothole, line 15",
        "time_limit": {"amount": 8, "unit": "working_hours"},
    }


def test_responsibility_falls_back_to_the_group_entry_and_says_so(api):
    response = api.get("dongjie.dispatcher", "/api/v1/responsibility?matter=road.sidewalk_damage")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["matched_entry"], answer["main"], answer["cooperating"]) == ("road.*", "gulou.cgj", ["gulou.zjj"])
    assert answer["why"] == "group entry road.* (no exact entry for road.sidewalk_damage), line 11"
    assert answer["time_limit"] == {"amount": 1, "unit": "working_days"}
