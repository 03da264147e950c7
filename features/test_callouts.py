"""callouts.feature: call-out powers, report-in, consultation, disposal, ratings."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml
from pytest_bdd import given, parsers, scenarios, then, when

from govflow.bootstrap import deploy_folder
from tests.pack_helpers import ROOT, store_demo_principals

BEIJING = dt.timezone(dt.timedelta(hours=8))

scenarios("callouts.feature")

pytestmark = pytest.mark.usefixtures("database", "notifications")


def _at(clock, hour, minute=0):
    local = clock.now().astimezone(BEIJING)
    return local.replace(hour=hour, minute=minute, second=0, microsecond=0).isoformat()


@when(parsers.parse('{who} calls out "{units}" to meet at "{place}" at {hour:d}:{minute:d}'))
def _call_out(api, ctx, clock, who, units, place, hour, minute):
    body = {
        "departments": units.split(", "),
        "reason": "街道无法单独解决，需部门联合处置",
        "meeting_place": place,
        "meeting_at": _at(clock, hour, minute),
    }
    ctx["response"] = api.post(who, f"/api/v1/cases/{ctx['case']}/call-outs", json=body)


@then("the call-out is accepted")
def _accepted(ctx):
    assert ctx["response"].status_code == 201, ctx["response"].text


@then(parsers.parse('the call of "{unit}" was allowed by "{power}"'))
def _power(api, ctx, unit, power):
    made = [
        e for e in api.get("cc.supervisor", f"/api/v1/cases/{ctx['case']}/events").json() if e["kind"] == "callout.made"
    ]
    departments = {d["unit"]: d["power"] for d in made[-1]["data"]["departments"]}
    assert departments[unit].startswith(power), departments


@then(parsers.parse('the refusal says "{text}"'))
def _refusal(ctx, text):
    assert text in ctx["response"].json()["detail"], ctx["response"].json()


@when(parsers.parse("{who} reports in"))
def _report_in(api, ctx, who):
    task = next(t for t in api.inbox(who, ctx["case"]) if t["name"] == "report_in")
    response = api.complete(who, task["id"], decision="accept", attendee=who, part="按会商分工处理")
    assert response.status_code == 200, response.text


@when(parsers.parse('{who} rejects the call because "{reason}"'))
def _reject(api, ctx, who, reason):
    task = next(t for t in api.inbox(who, ctx["case"]) if t["name"] == "report_in")
    response = api.complete(who, task["id"], decision="reject", reason=reason)
    assert response.status_code == 200, response.text


@when(parsers.parse('{who} records the consultation "{opinion}" assigning "{unit}"'))
def _consult(api, ctx, clock, who, opinion, unit):
    task = next(t for t in api.inbox(who, ctx["case"]) if t["name"] == "consult")
    due = (clock.now() + dt.timedelta(days=1)).isoformat()
    response = api.complete(who, task["id"], opinion=opinion, assignments=[{"unit": unit, "duty": opinion, "due": due}])
    assert response.status_code == 200, response.text


@when(parsers.parse('{who} adds its part "{part}"'))
def _contribute(api, ctx, who, part):
    response = api.post(who, f"/api/v1/cases/{ctx['case']}/contributions", json={"part": part})
    assert response.status_code == 201, response.text
    assert (
        api.post("cgj.handler", f"/api/v1/cases/{ctx['case']}/contributions", json={"part": "x"}).status_code == 403
    )  # the main one disposes


@when(parsers.parse('{who} completes "dispose" with result "{result}"'))
def _dispose(api, ctx, who, result):
    task = next(t for t in api.inbox(who, ctx["case"]) if t["name"] == "dispose")
    response = api.complete(who, task["id"], result=result)
    assert response.status_code == 200, response.text


@when(
    parsers.parse(
        '{who} delegates "{department}" to "{street}" for "{pattern}" until {hour:d}:{minute:d} on {weekday} {day:d} {month} {year:d}'
    )
)
def _delegate(api, ctx, who, department, street, pattern, hour, minute, weekday, day, month, year):
    expires = dt.datetime(year, dt.datetime.strptime(month, "%B").month, day, hour, minute, tzinfo=BEIJING)
    body = {
        "street": street,
        "department": department,
        "matter_pattern": pattern,
        "expires_at": expires.isoformat(),
        "reason": "试点授权：东街可直接呼叫生态环境局",
    }
    response = api.post(who, "/api/v1/delegations", json=body)
    assert response.status_code == 201, response.text
    ctx["delegation"] = response.json()


@then("the delegation is on the record")
def _delegation_recorded(api, ctx):
    listed = api.get("district.supervisor", "/api/v1/delegations").json()
    assert [d["id"] for d in listed] == [ctx["delegation"]["id"]]
    assert listed[0]["granted_by"] == "district.supervisor" and listed[0]["active"] is True
    assert api.get("dongjie.dispatcher", "/api/v1/delegations").status_code == 403


@then(parsers.parse('"{unit}" is recorded as not responding and escalated to "{target}"'))
def _no_response(api, ctx, unit, target):
    events = [
        e
        for e in api.get("cc.supervisor", f"/api/v1/cases/{ctx['case']}/events").json()
        if e["kind"] == "callout.no_response"
    ]
    assert len(events) == 1
    assert events[0]["data"]["departments"] == [unit] and events[0]["data"]["escalate_to"] == target
    assert api.get("cc.supervisor", f"/api/v1/cases/{ctx['case']}").json()["escalated_to"] == target


@then(parsers.parse('a "{kind}" is on the timeline and the command centre was notified'))
def _notified(api, ctx, notifications, kind):
    events = [e for e in api.get("cc.supervisor", f"/api/v1/cases/{ctx['case']}/events").json() if e["kind"] == kind]
    assert len(events) == 1 and events[0]["data"]["escalate_to"] == "gulou.cc"
    assert [e for e in notifications.events if e["kind"] == kind and str(e["case_id"]) == ctx["case"]]


@when(parsers.parse('{who} rates "{target}" {score:d} for "{dimension}"'))
def _rate(api, ctx, who, target, score, dimension):
    response = api.post(
        who, f"/api/v1/cases/{ctx['case']}/ratings", json={"target": target, "dimension": dimension, "score": score}
    )
    assert response.status_code == 201, response.text


@then(parsers.parse('the case has ratings "{expected}"'))
def _ratings(api, ctx, expected):
    ratings = api.get("dongjie.dispatcher", f"/api/v1/cases/{ctx['case']}/ratings").json()
    seen = sorted(f"{r['direction']} {r['dimension']} {r['score']}" for r in ratings)
    assert seen == sorted(expected.split(", "))


@then(parsers.parse('a second rating of "{target}" for "{dimension}" by {who} is refused with 409'))
def _twice(api, ctx, target, dimension, who):
    response = api.post(
        who, f"/api/v1/cases/{ctx['case']}/ratings", json={"target": target, "dimension": dimension, "score": 1}
    )
    assert response.status_code == 409, response.text


@then(parsers.parse("a rating of {score:d} by {who} is refused with 422"))
def _out_of_range(api, ctx, score, who):
    response = api.post(
        who,
        f"/api/v1/cases/{ctx['case']}/ratings",
        json={"target": "gulou.dongjie", "dimension": "accuracy", "score": score},
    )
    assert response.status_code == 422, response.text


@then(parsers.parse("{who} may not rate the case"))
def _may_not_rate(api, ctx, who):
    response = api.post(
        who,
        f"/api/v1/cases/{ctx['case']}/ratings",
        json={"target": "gulou.dongjie", "dimension": "accuracy", "score": 3},
    )
    assert response.status_code == 404, response.text  # not a party: the case is not even visible to it


@given("the Taijiang district pack is deployed beside it")
def _taijiang(govflow, api):
    folder = ROOT / "examples" / "taijiang"
    deploy_folder(govflow, folder)
    store_demo_principals(govflow, folder)
    data = yaml.safe_load((folder / "policies" / "demo-principals.yaml").read_text(encoding="utf-8"))
    api.tokens.update({p["id"]: p["token"] for p in data["principals"]})
