"""Consistent data: every open task has the deadline its pack says, the consultation sets the
disposal deadline, past dates are refused, and every instant is RFC 3339 in UTC with ``Z``.

Through the real API on the reference pack, with the manual clock of conftest (Monday
28 September 2026, 09:00 in Gulou).
"""

from __future__ import annotations

import datetime as dt
import re

START = dt.datetime(2026, 9, 28, 1, 0, tzinfo=dt.UTC)  # conftest.START: Monday 09:00 in Gulou

CASE = {
    "channel": "app",
    "district": "gulou",
    "description": "东街口有个井盖没了，晚上很危险",
    "location": {"lat": 26.0865, "lng": 119.3025},
}
#: RFC 3339 in UTC with Z, as govflow writes every instant
UTC_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")


def task(api, who, case, name):
    [found] = [t for t in api.inbox(who, case) if t["name"] == name]
    return found


def done(response):
    assert response.status_code == 200, response.text
    return response.json()


def instants(value, path=""):
    """Every (path, string) in a JSON value whose key names an instant."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str) and (key.endswith(("_at", "_due", "_since", "deadline")) or key in ("at", "due")):
                yield f"{path}.{key}", item
            else:
                yield from instants(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from instants(item, f"{path}[{index}]")


def test_every_open_task_has_its_deadline_and_the_consultation_sets_the_disposal_deadline(api, clock):
    case = api.report("citizen.zhang", **CASE).json()["id"]
    sign_for = task(api, "dongjie.dispatcher", case, "sign_for")
    assert sign_for["due_at"] == "2026-09-28T01:10:00.000000Z"  # 10 minutes
    done(api.complete("dongjie.dispatcher", sign_for["id"]))
    called = api.post(
        "dongjie.dispatcher",
        f"/api/v1/cases/{case}/call-outs",
        json={"departments": ["gulou.cgj"], "reason": "井盖缺失需联合处置", "meeting_at": "2026-09-28T15:00:00+08:00"},
    )
    assert called.status_code == 201, called.text
    report_in = task(api, "cgj.handler", case, "report_in")
    assert report_in["due_at"] is not None
    done(api.complete("cgj.handler", report_in["id"], decision="accept", attendee="林志勇"))
    consult = task(api, "dongjie.dispatcher", case, "consult")
    assert consult["due_at"] is not None, "the consultation has its deadline (settings.deadlines.*.consult)"
    agreed = "2026-09-29T10:00:00+08:00"
    done(
        api.complete(
            "dongjie.dispatcher",
            consult["id"],
            opinion="城管补装井盖",
            assignments=[{"unit": "gulou.cgj", "duty": "补装井盖", "due": agreed}],
        )
    )
    dispose = task(api, "cgj.handler", case, "dispose")
    assert dispose["due_at"] == "2026-09-29T02:00:00.000000Z", "the date the consultation agreed, in UTC"
    done(api.complete("cgj.handler", dispose["id"], result="已补装"))
    review = task(api, "dongjie.dispatcher", case, "review")
    assert review["due_at"] is not None
    done(api.complete("dongjie.dispatcher", review["id"], approved=True))
    evaluate = task(api, "citizen.zhang", case, "evaluate")
    assert evaluate["due_at"] is not None
    events = api.get("citizen.zhang", f"/api/v1/cases/{case}/events").json()
    opened = [e["data"] for e in events if e["kind"] == "task.opened"]
    assert [o["task"] for o in opened if o["due_at"] is None] == []
    for where, value in instants(events):
        assert UTC_Z.match(value), f"{where} = {value!r} is not RFC 3339 UTC with Z"
    made = next(e["data"] for e in events if e["kind"] == "callout.made")
    assert made["meeting_at"] == "2026-09-28T07:00:00.000000Z"


def test_an_unroutable_case_gives_the_command_centre_a_dispatch_deadline(api):
    case = api.report("citizen.zhang", channel="app", district="gulou", description="有个地方不太对").json()["id"]
    dispatch = task(api, "cc.supervisor", case, "dispatch")
    assert dispatch["due_at"] == "2026-09-28T01:30:00.000000Z"  # 30 minutes (settings.deadlines.*.dispatch)
    body = api.get("cc.supervisor", f"/api/v1/cases/{case}").json()
    for where, value in instants(body):
        assert UTC_Z.match(value), f"{where} = {value!r}"
    assert body["next_deadline"] == dispatch["due_at"]


def test_past_meeting_times_and_due_dates_are_refused(api, clock):
    case = api.report("citizen.zhang", **CASE).json()["id"]
    done(api.complete("dongjie.dispatcher", task(api, "dongjie.dispatcher", case, "sign_for")["id"]))
    past = (START - dt.timedelta(minutes=1)).isoformat()
    refused = api.post(
        "dongjie.dispatcher",
        f"/api/v1/cases/{case}/call-outs",
        json={"departments": ["gulou.cgj"], "reason": "联合处置", "meeting_at": past},
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["loc"] == ["meeting_at"]
    called = api.post(
        "dongjie.dispatcher",
        f"/api/v1/cases/{case}/call-outs",
        json={"departments": ["gulou.cgj"], "reason": "联合处置"},
    )
    assert called.status_code == 201, called.text
    done(api.complete("cgj.handler", task(api, "cgj.handler", case, "report_in")["id"], decision="accept"))
    consult = task(api, "dongjie.dispatcher", case, "consult")
    late = api.complete(
        "dongjie.dispatcher",
        consult["id"],
        opinion="城管补装井盖",
        assignments=[{"unit": "gulou.cgj", "duty": "补装井盖", "due": past}],
    )
    assert late.status_code == 422, late.text
    assert late.json()["errors"] == [
        {"loc": ["assignments", 0, "due"], "msg": "must be later than now (2026-09-28T01:00:00.000000Z)"}
    ]
    assert task(api, "dongjie.dispatcher", case, "consult")["id"] == consult["id"]  # nothing moved


def test_the_citizen_window_to_evaluate_ends_in_a_return_visit_without_a_rating(api, clock, govflow):
    from govflow.engine.cases.timers import fire_due

    case = api.report("citizen.zhang", **CASE).json()["id"]
    for name, data in (("sign_for", {}), ("handle", {"result": "已补装"}), ("review", {"approved": True})):
        done(api.complete("dongjie.dispatcher", task(api, "dongjie.dispatcher", case, name)["id"], **data))
    evaluate = task(api, "citizen.zhang", case, "evaluate")
    due = dt.datetime.fromisoformat(evaluate["due_at"])
    clock.set(due + dt.timedelta(seconds=1))
    fire_due(govflow.cases)
    body = api.get("citizen.zhang", f"/api/v1/cases/{case}").json()
    assert [(t["name"], t["unit"]) for t in body["open_tasks"]] == [("return_visit", "gulou.cc")]
    assert body["overdue_since"] is None and body["closed_at"] is None
    visit = task(api, "cc.supervisor", case, "return_visit")
    assert visit["due_at"] is not None  # the pack's return_visit deadline
    done(api.complete("cc.supervisor", visit["id"], return_visit=4, outcome="close", note="居民表示已解决"))
    body = api.get("citizen.zhang", f"/api/v1/cases/{case}").json()
    assert (body["status"], body["open_tasks"], body["overdue_since"]) == ("evaluated", [], None)
    events = api.get("citizen.zhang", f"/api/v1/cases/{case}/events").json()
    kinds = [e["kind"] for e in events]
    assert "evaluation.expired" in kinds and kinds[-1] == "case.closed"
    [rating] = [e["data"] for e in events if e["kind"] == "rating.given"]
    assert (rating["dimension"], rating["score"], rating["target"]) == ("return_visit", 4, "gulou.dongjie")
