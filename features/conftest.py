"""Steps shared by every feature: reports, tasks, case status, the timeline, time.

Scenarios run against the real API (Starlette TestClient over the FastAPI app),
a real database and the real engine; time is a manual clock that steps move.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from pytest_bdd import given, parsers, then, when

from govflow.engine.cases.timers import fire_due

BEIJING = ZoneInfo("Asia/Shanghai")


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
    assert api.get(None, "/readyz").json()["districts"] == ["gulou"]


# a text without quotes: 'has reported "…" as "…" at …' is the categorised step below, never this one
_PLAIN_REPORT = r'(?P<who>\S+) {verb} "(?P<text>[^"]+)" at (?P<lat>-?[\d.]+), (?P<lng>-?[\d.]+)'
_COORDS = {"lat": float, "lng": float}


@given(parsers.re(_PLAIN_REPORT.format(verb="has reported")), converters=_COORDS, target_fixture="ctx")
@when(parsers.re(_PLAIN_REPORT.format(verb="reports")), converters=_COORDS, target_fixture="ctx")
def _report(api, who, text, lat, lng):
    response = api.report(
        who,
        description=text,
        location={"lat": lat, "lng": lng, "address": "测试地址"},
        reporter={"name": "张伟", "phone": "13812345678"},
    )
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
    position = -1
    for kind in kinds.split(", "):  # each kind appears after the previous one
        later = [i for i, k in enumerate(seen) if k == kind and i > position]
        assert later, f"{kind} does not follow in {seen}"
        position = later[0]
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
    # one rule (README, "403 or 404"): a case the caller may not read is answered as if it did not exist
    assert api.get(who, f"/api/v1/cases/{ctx['case']}").status_code == 404


# -- time -------------------------------------------------------------------------------------
_WHEN = "{hour:d}:{minute:d} on {weekday} {day:d} {month} {year:d}"


def _moment(hour, minute, day, month, year) -> dt.datetime:
    month_number = dt.datetime.strptime(month, "%B").month
    return dt.datetime(year, month_number, day, hour, minute, tzinfo=BEIJING)


@given(parsers.parse("it is " + _WHEN + " in Fuzhou"))
def _it_is(clock, hour, minute, weekday, day, month, year):
    moment = _moment(hour, minute, day, month, year)
    assert moment.strftime("%A") == weekday, f"{moment:%Y-%m-%d} is a {moment:%A}"
    clock.set(moment)


@when(parsers.parse("{count:d} minutes pass"))
def _minutes_pass(govflow, clock, count):
    clock.advance(dt.timedelta(minutes=count))
    fire_due(govflow.cases)


@when(parsers.parse("{count:d} hours pass"))
def _hours_pass(govflow, clock, count):
    clock.advance(dt.timedelta(hours=count))
    fire_due(govflow.cases)


@when(parsers.parse("the clock reaches " + _WHEN))
def _clock_reaches(govflow, clock, hour, minute, weekday, day, month, year):
    moment = _moment(hour, minute, day, month, year)
    assert moment >= clock.now()
    clock.set(moment)
    fire_due(govflow.cases)


@then(parsers.parse('the "{name}" task is due at ' + _WHEN))
def _task_due(api, ctx, name, hour, minute, weekday, day, month, year):
    tasks = [t for t in _case(api, ctx)["open_tasks"] if t["name"] == name]
    assert tasks, f"no open {name} task"
    due = dt.datetime.fromisoformat(tasks[0]["due_at"].replace("Z", "+00:00"))
    expected = _moment(hour, minute, day, month, year)
    assert due == expected, f"due {due.astimezone(BEIJING):%A %Y-%m-%d %H:%M}, expected {expected:%A %Y-%m-%d %H:%M}"


def _events(api, ctx, kind=None):
    events = api.get("cc.supervisor", f"/api/v1/cases/{ctx['case']}/events").json()
    return [e for e in events if kind is None or e["kind"] == kind]


@then(parsers.parse('the case has been escalated to "{unit}" as overdue'))
def _escalated(api, ctx, unit):
    case = _case(api, ctx)
    assert case["escalated_to"] == unit and case["overdue_since"] is not None
    overdue = _events(api, ctx, "deadline.overdue")
    assert overdue and overdue[-1]["data"]["escalate_to"] == unit and overdue[-1]["actor"] == "system.timer"


@then("the case was never escalated")
def _never_escalated(api, ctx):
    case = _case(api, ctx)
    assert case["escalated_to"] is None and case["overdue_since"] is None
    assert not _events(api, ctx, "deadline.overdue") and not _events(api, ctx, "deadline.escalated")


@then(parsers.parse("{who} has no open task for the case"))
def _no_task_for(api, ctx, who):
    assert api.inbox(who, ctx["case"]) == []


@given(parsers.parse('{who} has reported "{text}" as "{category}" at {lat:g}, {lng:g}'), target_fixture="ctx")
def _report_categorised(api, who, text, category, lat, lng):
    response = api.report(who, description=text, category=category, location={"lat": lat, "lng": lng})
    assert response.status_code == 201, response.text
    return {"case": response.json()["id"]}


@given(parsers.parse("{who} has signed for it"))
def _signed(api, ctx, who):
    _complete(api, ctx, who, "sign_for")


@when(parsers.parse('{who} supervises it back to "{street}"'))
def _supervise(api, ctx, who, street):
    _complete(api, ctx, who, "supervise", street=street, note="请立即签收")


@then(parsers.parse('a "{kind}" for "{step}" is on the timeline and was notified'))
def _recorded_and_notified(api, ctx, notifications, kind, step):
    recorded = [e for e in _events(api, ctx, kind) if e["data"].get("step") == step]
    assert len(recorded) == 1, recorded
    heard = [e for e in notifications.events if e["kind"] == kind and str(e["case_id"]) == ctx["case"]]
    assert len(heard) == 1


@then(parsers.parse('no "{kind}" is on the timeline'))
def _not_recorded(api, ctx, kind):
    assert _events(api, ctx, kind) == []
