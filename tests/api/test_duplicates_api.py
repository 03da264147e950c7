"""Duplicate reports through the real API (both databases): a burst of reports of one broken manhole
cover makes one piece of work; the command centre unlinks and links by hand; the case and the
command centre's task show what smart dispatch weighed."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from govflow.engine.cases.duplicates import Candidate, Rules, distance_m, find_main, same_reporter, says_another
from govflow.engine.model.errors import PackError
from govflow.engine.packs.loader import load_pack

SPOT = (26.0865, 119.3025)  # 东街口, gulou.dongjie
NEAR = (26.0868, 119.3027)  # ~40 m away
FAR = (26.0905, 119.3025)  # ~450 m away, the same street


def report(api, who, text, at, **extra):
    response = api.report(who, description=text, location={"lat": at[0], "lng": at[1]}, **extra)
    assert response.status_code == 201, response.text
    return response.json()


def case(api, who, case_id):
    response = api.get(who, f"/api/v1/cases/{case_id}")
    assert response.status_code == 200, response.text
    return response.json()


def problem(response, status):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()


def test_a_burst_of_reports_of_one_spot_makes_one_case_for_the_street(api):
    main = report(api, "citizen.zhang", "东街口有个井盖没了，晚上很危险", SPOT)
    second = report(api, "citizen.li", "东街口的井盖不见了，好危险", NEAR)
    third = report(api, "citizen.lin", "路口那个井盖丢了，我差点掉进去", SPOT)
    assert main["status"] != "linked" and second["status"] == third["status"] == "linked"
    seen = case(api, "cc.supervisor", second["id"])
    assert seen["linked_to"] == main["id"] and seen["open_tasks"] == [] and seen["next_deadline"] is None
    assert seen["routing"]["matter"] == "road.manhole_cover"
    assert seen["routing"]["candidates"][0]["matter"] == "road.manhole_cover"
    assert sorted(case(api, "cc.supervisor", main["id"])["duplicates"]) == sorted([second["id"], third["id"]])
    # the reporter of a duplicate follows the main case from their own (its stage; the main case itself is not theirs)
    mine = case(api, "citizen.li", second["id"])
    assert mine["linked_to"] == main["id"] and mine["linked_to_status"] == main["status"]
    assert api.get("citizen.li", f"/api/v1/cases/{main['id']}").status_code == 404
    sign = next(t for t in api.inbox("dongjie.dispatcher", main["id"]) if t["name"] == "sign_for")
    assert api.complete("dongjie.dispatcher", sign["id"]).status_code == 200
    assert case(api, "citizen.li", second["id"])["linked_to_status"] == case(api, "cc.supervisor", main["id"])["status"]
    assert case(api, "citizen.li", second["id"])["linked_to_status"] != main["status"]
    linked = [e for e in api.get("cc.supervisor", f"/api/v1/cases/{second['id']}/events").json()]
    event = next(e for e in linked if e["kind"] == "case.linked")
    assert event["data"]["main"] == main["id"] and 0 < event["data"]["distance_m"] < 100
    # the street works once: one task among the three reports
    tasks = [t for t in api.inbox("dongjie.dispatcher") if t["case_id"] in {main["id"], second["id"], third["id"]}]
    assert [(t["case_id"], t["name"]) for t in tasks] == [(main["id"], "handle")]


def test_other_places_other_matters_and_closed_windows_are_not_linked(api, clock):
    main = report(api, "citizen.zhang", "东街口有个井盖没了，晚上很危险", SPOT)
    far = report(api, "citizen.li", "东街口的井盖不见了，好危险", FAR)
    other = report(api, "citizen.li", "东街口路灯不亮了，晚上很黑", SPOT)
    assert far["status"] != "linked" and other["status"] != "linked"
    clock.advance(dt.timedelta(hours=73))
    late = report(api, "citizen.lin", "东街口的井盖不见了，好危险", NEAR)
    assert late["status"] != "linked"
    # the same reporter again (same account, same phone): a case of its own, not a duplicate of theirs
    again = report(api, "citizen.lin", "东街口的井盖不见了，好危险", SPOT)
    assert again["status"] != "linked"
    # through the hotline, another caller (another phone) at the same spot is a duplicate
    hotline = report(api, "hotline12345", "东街口井盖丢了", NEAR, reporter={"phone": "13900000001"})
    other_caller = report(api, "hotline12345", "东街口那个井盖没了", NEAR, reporter={"phone": "13900000002"})
    assert hotline["status"] == "linked" and other_caller["status"] == "linked"
    assert case(api, "cc.supervisor", other_caller["id"])["linked_to"] == late["id"]
    assert case(api, "cc.supervisor", main["id"])["duplicates"] == []


def test_the_command_centre_unlinks_and_links_by_hand(api):
    main = report(api, "citizen.zhang", "东街口有个井盖没了，晚上很危险", SPOT)
    copy = report(api, "citizen.li", "东街口的井盖不见了，好危险", NEAR)
    assert copy["status"] == "linked"
    # only the command centre decides (Casbin's dispatch): a street may not
    problem(api.post("dongjie.dispatcher", f"/api/v1/cases/{copy['id']}/unlink"), 403)
    unlinked = api.post("cc.supervisor", f"/api/v1/cases/{copy['id']}/unlink")
    assert unlinked.status_code == 200, unlinked.text
    assert unlinked.json()["status"] != "linked"
    now = case(api, "cc.supervisor", copy["id"])
    assert now["linked_to"] is None and [t["name"] for t in now["open_tasks"]] == ["sign_for"]
    assert [t["case_id"] for t in api.inbox("dongjie.dispatcher", copy["id"])] == [copy["id"]]
    assert case(api, "cc.supervisor", main["id"])["duplicates"] == []
    assert "case.unlinked" in [e["kind"] for e in api.get("cc.supervisor", f"/api/v1/cases/{copy['id']}/events").json()]
    problem(api.post("cc.supervisor", f"/api/v1/cases/{copy['id']}/unlink"), 409)  # not linked any more

    # by hand: its open task is set aside until it is unlinked again
    linked = api.post("cc.supervisor", f"/api/v1/cases/{copy['id']}/link", json={"main": main["id"]})
    assert linked.status_code == 200, linked.text
    assert linked.json()["status"] == "linked"
    assert api.inbox("dongjie.dispatcher", copy["id"]) == []
    assert case(api, "cc.supervisor", copy["id"])["linked_to"] == main["id"]
    assert case(api, "cc.supervisor", main["id"])["duplicates"] == [copy["id"]]
    # precise refusals
    body = problem(api.post("cc.supervisor", f"/api/v1/cases/{main['id']}/link", json={"main": main["id"]}), 422)
    assert body["errors"][0]["loc"][-1] == "main"
    problem(api.post("cc.supervisor", f"/api/v1/cases/{main['id']}/link", json={"main": "not-a-case"}), 422)
    problem(
        api.post(
            "cc.supervisor", f"/api/v1/cases/{main['id']}/link", json={"main": "00000000-0000-0000-0000-000000000000"}
        ),
        422,
    )
    problem(api.post("cc.supervisor", f"/api/v1/cases/{main['id']}/link", json={"main": copy["id"]}), 422)
    problem(api.post("cc.supervisor", f"/api/v1/cases/{copy['id']}/link", json={"main": main["id"]}), 409)
    problem(api.post("cc.supervisor", f"/api/v1/cases/{main['id']}/link", json={}), 422)
    problem(api.post("cc.supervisor", "/api/v1/cases/nope/unlink"), 404)


def test_the_command_centre_sees_the_candidates_of_a_report_it_dispatches(api):
    unsure = report(api, "citizen.zhang", "东街口那边有点事情想说一下", SPOT)
    seen = case(api, "cc.supervisor", unsure["id"])
    assert seen["category"] is None and seen["routing"]["candidates"]
    assert all(set(c) >= {"matter", "p"} for c in seen["routing"]["candidates"])
    tasks = api.inbox("cc.supervisor", unsure["id"])
    assert [t["name"] for t in tasks] == ["dispatch"]
    assert tasks[0]["candidates"] == seen["routing"]["candidates"]


@pytest.mark.parametrize(
    ("settings", "window_hours", "radius", "enabled"),
    [
        ({}, 72, 100, True),
        ({"dispatch": {"duplicates": False}}, 72, 100, False),
        ({"dispatch": {"duplicates": {"window_hours": 6, "radius_m": 30}}}, 6, 30, True),
        ({"dispatch": {"duplicates": {"window_hours": "x", "radius_m": -1}}}, 72, 100, True),
    ],
)
def test_the_rules_come_from_the_pack_settings(settings, window_hours, radius, enabled):
    rules = Rules.of(settings)
    assert (rules.window, rules.radius_m, rules.enabled) == (dt.timedelta(hours=window_hours), radius, enabled)


def test_the_nearest_open_case_is_the_main_one():
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    near = Candidate("near", 26.0866, 119.3025, None, at)
    nearer = Candidate("nearer", 26.08652, 119.3025, None, at + dt.timedelta(hours=1))
    addressed = Candidate("addressed", None, None, "东街口 1号", at)
    assert find_main(*SPOT, None, [near, nearer], Rules()).main == "nearer"
    assert find_main(*FAR, None, [near, nearer], Rules()) is None
    assert find_main(None, None, "东街口1号", [near, addressed], Rules()).main == "addressed"
    assert find_main(*SPOT, None, [near], Rules(enabled=False)) is None
    assert 440 < distance_m(*SPOT, *FAR) < 460


def test_the_same_reporter_and_another_thing_are_never_linked():
    assert same_reporter("citizen.li", None, "citizen.li", "13800000000")
    assert same_reporter("hotline12345", "13900000001", "hotline12345", "13900000001")
    assert not same_reporter("hotline12345", "13900000001", "hotline12345", "13900000002")
    assert not same_reporter("citizen.li", None, "citizen.lin", None)
    assert says_another("东街另一处井盖松动了") and says_another("路口又一个井盖没了")
    assert not says_another("东街口的井盖不见了")


def test_a_report_smart_dispatch_is_unsure_of_is_linked_by_its_best_candidates(api):
    unsure_first = report(api, "citizen.zhang", "这里地上有个黑窟窿", SPOT)
    assert unsure_first["status"] != "linked"
    assert case(api, "cc.supervisor", unsure_first["id"])["category"] is None  # the command centre's to dispatch
    sure = report(api, "citizen.li", "东街口的井盖不见了，好危险", NEAR)
    assert sure["status"] == "linked"  # the open case waiting for the command centre has it among its best
    assert case(api, "cc.supervisor", sure["id"])["linked_to"] == unsure_first["id"]
    unsure_again = report(api, "citizen.lin", "这里地上有个黑窟窿", NEAR)
    assert unsure_again["status"] == "linked"
    assert case(api, "cc.supervisor", unsure_again["id"])["category"] is None
    assert sorted(case(api, "cc.supervisor", unsure_first["id"])["duplicates"]) == sorted(
        [sure["id"], unsure_again["id"]]
    )
    # far away, it is no duplicate whatever the model thinks
    assert report(api, "citizen.lin", "这里地上有个黑窟窿", FAR)["status"] != "linked"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("often", "settings.dispatch.duplicates must be false or a mapping"),
        ({"radius_m": -5}, "settings.dispatch.duplicates.radius_m must be a positive number"),
        ({"window_hours": True}, "settings.dispatch.duplicates.window_hours must be a positive number"),
        ({"radius": 50}, "settings.dispatch.duplicates.radius: unknown (window_hours, radius_m)"),
    ],
)
def test_a_pack_with_a_malformed_duplicates_setting_is_refused_naming_it(reference_files, value, message):
    manifest = yaml.safe_load(reference_files["pack.yaml"].decode("utf-8"))
    manifest["settings"].setdefault("dispatch", {})["duplicates"] = value
    files = {**reference_files, "pack.yaml": yaml.safe_dump(manifest, allow_unicode=True).encode("utf-8")}
    with pytest.raises(PackError) as refused:
        load_pack(files)
    assert [i.message for i in refused.value.issues] == [message]
    manifest["settings"]["dispatch"]["duplicates"] = {"window_hours": 6, "radius_m": 30}
    fine = load_pack({**reference_files, "pack.yaml": yaml.safe_dump(manifest, allow_unicode=True).encode("utf-8")})
    assert Rules.of(fine.manifest.settings) == Rules(dt.timedelta(hours=6), 30.0)


def task_named(api, who, case_id, name):
    return next(t for t in api.inbox(who, case_id) if t["name"] == name)


def test_duplicates_close_with_a_settled_main_case_and_go_on_when_it_is_withdrawn(api):
    main = report(api, "citizen.zhang", "东街口有个井盖没了，晚上很危险", SPOT)
    copy = report(api, "citizen.li", "东街口的井盖不见了，好危险", NEAR)
    assert copy["status"] == "linked"
    for who, name, data in [
        ("dongjie.dispatcher", "sign_for", {}),
        ("dongjie.dispatcher", "handle", {"result": "已补装井盖"}),
        ("dongjie.dispatcher", "review", {"approved": True}),
        ("citizen.zhang", "evaluate", {"satisfaction": 5}),
    ]:
        done = api.complete(who, task_named(api, who, main["id"], name)["id"], **data)
        assert done.status_code == 200, done.text
    settled = case(api, "cc.supervisor", main["id"])
    assert settled["closed_at"] is not None
    followed = case(api, "citizen.li", copy["id"])
    assert followed["closed_at"] is not None and followed["linked_to_status"] == settled["status"]
    closing = [
        e for e in api.get("cc.supervisor", f"/api/v1/cases/{copy['id']}/events").json() if e["kind"] == "case.closed"
    ]
    assert [(e["actor"], e["data"]["with"]) for e in closing] == [("system.duplicates", main["id"])]
    problem(api.post("cc.supervisor", f"/api/v1/cases/{copy['id']}/unlink"), 409)  # closed: nothing to unlink

    # a withdrawn main case is its reporter's choice: its duplicates go on as cases of their own
    other = report(api, "citizen.zhang", "东街口有个井盖没了，晚上很危险", FAR)
    follower = report(api, "citizen.lin", "东街口的井盖不见了，好危险", FAR)
    assert follower["status"] == "linked"
    withdrawn = api.post("citizen.zhang", f"/api/v1/cases/{other['id']}/withdraw", json={"reason": "已经有人修好了"})
    assert withdrawn.status_code == 200, withdrawn.text
    on_its_own = case(api, "cc.supervisor", follower["id"])
    assert on_its_own["status"] != "linked" and on_its_own["closed_at"] is None and on_its_own["linked_to"] is None
    assert [t["name"] for t in on_its_own["open_tasks"]] == ["sign_for"]
    unlinked = next(
        e
        for e in api.get("cc.supervisor", f"/api/v1/cases/{follower['id']}/events").json()
        if e["kind"] == "case.unlinked"
    )
    assert unlinked["data"] == {"main": other["id"], "why": "the main case was withdrawn"}
