"""supervision.feature: rates, scorecards, early warnings, return visits, disputes."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from pytest_bdd import given, parsers, scenarios, then, when

from govflow.engine.cases.timers import fire_due
from govflow.engine.oversight import projection

BEIJING = ZoneInfo("Asia/Shanghai")
MANHOLE = {"description": "东街口有个井盖没了，晚上很危险", "category": "road.manhole_cover"}
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

scenarios("supervision.feature")

pytestmark = pytest.mark.usefixtures("database")


def _inbox_task(api, who, case, name):
    [found] = [t for t in api.inbox(who, case) if t["name"] == name]
    return found["id"]


def _do(api, who, case, name, **data):
    response = api.complete(who, _inbox_task(api, who, case, name), **data)
    assert response.status_code == 200, response.text


def _on(clock, weekday):
    """10:00 on ``weekday`` of the scenario's week (the week of the clock's Monday)."""
    local = clock.now().astimezone(BEIJING)
    monday = local.date() - dt.timedelta(days=local.weekday())
    day = monday + dt.timedelta(days=WEEKDAYS.index(weekday))
    moment = dt.datetime.combine(day, dt.time(10, 0), tzinfo=BEIJING)
    assert moment >= clock.now()
    clock.set(moment)


def _report_manhole(api):
    response = api.report("citizen.zhang", **MANHOLE, location={"lat": 26.0865, "lng": 119.3025})
    assert response.status_code == 201, response.text
    return response.json()["id"]


@given(
    parsers.parse("on {weekday} a manhole case in Dongjie is signed, handled, approved and rated {score:d}"),
    target_fixture="ctx",
)
def _week_case(api, clock, govflow, weekday, score):
    _on(clock, weekday)
    fire_due(govflow.cases)
    case = _report_manhole(api)
    _do(api, "dongjie.dispatcher", case, "sign_for")
    _do(api, "dongjie.dispatcher", case, "handle", result="已补装井盖")
    _do(api, "dongjie.dispatcher", case, "review", approved=True)
    _do(api, "citizen.zhang", case, "evaluate", satisfaction=score)
    return {"case": case}


@given(parsers.parse("on {weekday} a manhole case in Dongjie is reported and never signed for"), target_fixture="ctx")
def _week_unsigned(api, clock, govflow, weekday):
    _on(clock, weekday)
    fire_due(govflow.cases)
    return {"case": _report_manhole(api)}


@given(parsers.parse("{who} visits the resident, who rates {score:d}, and closes the matter"))
def _visit_close(api, ctx, who, score):
    _do(api, who, ctx["case"], "return_visit", return_visit=score, outcome="close", note="居民认可")


@given(parsers.parse("{who} visits the resident, who rates {score:d}, and reopens the case"))
def _visit_reopen(api, ctx, who, score):
    _do(api, who, ctx["case"], "return_visit", return_visit=score, outcome="reopen", note="问题仍在")


@when(parsers.parse('{who} completes the return visit rating {score:d} and choosing "{outcome}"'))
def _visit(api, ctx, who, score, outcome):
    _do(api, who, ctx["case"], "return_visit", return_visit=score, outcome=outcome, note="回访记录")


@given(parsers.parse("{who} handles it again, approves it and the resident rates {score:d}"))
def _again(api, ctx, who, score):
    _do(api, who, ctx["case"], "handle", result="重新补装")
    _do(api, who, ctx["case"], "review", approved=True)
    _do(api, "citizen.zhang", ctx["case"], "evaluate", satisfaction=score)


def _street_row(api, clock, unit, start, end):
    response = api.get("cc.supervisor", f"/api/v1/rates?level=street&from={start}&to={end}")
    assert response.status_code == 200, response.text
    [row] = [r for r in response.json()["rows"] if r["unit"] == unit]
    return row


def _check(row, datatable):
    header, *rows = datatable
    assert header == ["rate", "value"]
    for name, value in rows:
        assert row[name] == pytest.approx(float(value), abs=1e-4), (name, row[name])


@then(parsers.parse('the street figures of "{unit}" for the week are'))
def _week_figures(api, clock, unit, datatable):
    local = clock.now().astimezone(BEIJING).date()
    monday = local - dt.timedelta(days=local.weekday())
    _check(_street_row(api, clock, unit, monday, monday + dt.timedelta(days=6)), datatable)


@then(parsers.parse('the street figures of "{unit}" for today are'))
def _today_figures(api, clock, unit, datatable):
    today = clock.now().astimezone(BEIJING).date()
    _check(_street_row(api, clock, unit, today, today), datatable)


@then("the rates equal a full recomputation from the record")
def _verified(govflow):
    assert projection.verify(govflow.db).equal


# -- scorecards ---------------------------------------------------------------------------------
@then(parsers.parse('{who} may read the scorecard of "{unit}"'))
def _may_read(api, who, unit):
    response = api.get(who, f"/api/v1/units/{unit}/scorecard")
    assert response.status_code == 200, response.text
    assert response.json()["unit"] == unit


@then(parsers.parse('{who} may not read the scorecard of "{unit}"'))
def _may_not_read(api, who, unit):
    response = api.get(who, f"/api/v1/units/{unit}/scorecard")
    assert response.status_code == 403, response.text
    assert "worst" not in response.text and "rates" not in response.json()


@then(parsers.parse('{who} sees only the rates of "{unit}"'))
def _own_rates(api, who, unit):
    response = api.get(who, "/api/v1/rates?level=street")
    assert response.status_code == 200, response.text
    assert [r["unit"] for r in response.json()["rows"]] in ([unit], [])


# -- early warnings -------------------------------------------------------------------------------
def _spread(i: int) -> dict:
    """Points a few hundred metres apart inside Dongjie (not one place: no repeat warning)."""
    return {"lat": 26.0850 + 0.0025 * (i % 3), "lng": 119.3000 + 0.0025 * (i // 3)}


def _waterlogging(api, text, i):
    response = api.report("citizen.zhang", description=text, category="water.waterlogging", location=_spread(i))
    assert response.status_code == 201, response.text
    return response.json()["id"]


@given("a quiet month with one waterlogging report a week in Dongjie", target_fixture="ctx")
def _quiet(api, clock):
    for week in range(4):
        _waterlogging(api, "路口积水", week)
        clock.advance(dt.timedelta(days=7))
    scan = api.post("cc.supervisor", "/api/v1/warnings/scan")
    assert scan.status_code == 200 and scan.json() == [], scan.text
    return {}


@when(parsers.parse("{count:d} waterlogging reports arrive in Dongjie within three hours"))
def _storm(api, clock, ctx, count):
    ctx["storm"] = [_waterlogging(api, f"暴雨后积水很深 {i}", i) for i in range(count)]
    clock.advance(dt.timedelta(hours=3))


@when(parsers.parse("{who} scans for early warnings"))
def _scan(api, ctx, who):
    response = api.post(who, "/api/v1/warnings/scan")
    assert response.status_code == 200, response.text
    ctx["warnings"] = response.json()


@then(parsers.parse('one "{kind}" warning names "{unit}" and "{matter}" with {count:d} cases'))
def _warning(ctx, kind, unit, matter, count):
    [found] = [w for w in ctx["warnings"] if w["kind"] == kind]
    assert (found["unit"], found["matter"], found["evidence"]["observed"]) == (unit, matter, count)
    assert sorted(found["evidence"]["cases"]) == sorted(ctx["storm"])


@then(parsers.parse('a second scan raises no new "{kind}" warning'))
def _no_second(api, kind):
    response = api.post("cc.supervisor", "/api/v1/warnings/scan")
    assert [w for w in response.json() if w["kind"] == kind] == []


# -- return visits ----------------------------------------------------------------------------------
@then(parsers.parse('the return visit\'s rating {score:d} of "{unit}" is on the record'))
def _visit_rating(api, ctx, score, unit):
    events = api.get("cc.supervisor", f"/api/v1/cases/{ctx['case']}/events").json()
    given_ = [e for e in events if e["kind"] == "rating.given" and e["data"]["dimension"] == "return_visit"]
    assert [(e["data"]["score"], e["data"]["target"], e["actor"]) for e in given_] == [(score, unit, "cc.supervisor")]


# -- responsibility disputes (长效责任机制) ---------------------------------------------------------
def _call(api, ctx, clock, who, units):
    meeting = clock.now().astimezone(BEIJING).replace(hour=15, minute=0, second=0, microsecond=0)
    body = {
        "departments": units.split(", "),
        "reason": "街道无法单独解决，需部门联合处置",
        "meeting_at": meeting.isoformat(),
    }
    return api.post(who, f"/api/v1/cases/{ctx['case']}/call-outs", json=body)


@when(parsers.parse('{who} calls "{units}" out to the scene'))
def _call_out(api, ctx, clock, who, units):
    response = _call(api, ctx, clock, who, units)
    assert response.status_code == 201, response.text


@then(parsers.parse('the call of "{unit}" by {who} is refused by the responsibility list'))
def _call_refused(api, ctx, clock, unit, who):
    response = _call(api, ctx, clock, who, unit)
    assert response.status_code == 403, response.text
    assert "neither main nor cooperating" in response.json()["detail"]


@when(parsers.parse('{who} rejects the call because "{reason}"'))
def _reject(api, ctx, who, reason):
    _do(api, who, ctx["case"], "report_in", decision="reject", reason=reason)


@when(parsers.parse("{who} maintains the call"))
def _maintain(api, ctx, who):
    _do(api, who, ctx["case"], "answer_rejection", maintain=True, reason="井盖位于城管管养道路上")


@when(parsers.parse('{who} rules "{ruling}" on the disputed call'))
def _rule(api, ctx, who, ruling):
    _do(api, who, ctx["case"], "rule_dispute", ruling=ruling, opinion="指挥中心裁定")


@when(parsers.parse('{who} rules that "{unit}" has main responsibility'))
def _meeting(api, ctx, who, unit):
    _do(
        api, who, ctx["case"], "rule_responsibility", department=unit, decision="联席会议议定：燃气检查井由燃气公司主责"
    )


@then(parsers.parse('the active reference pack is version "{version}", deployed by {who} and naming the case'))
def _new_version(api, ctx, version, who):
    versions = api.get("district.supervisor", "/api/v1/packs").json()
    [active] = [v for v in versions if v["active"] and v["name"] == "reference"]
    assert (active["version"], active["deployed_by"]) == (version, who)
    manifest = api.get("district.supervisor", f"/api/v1/packs/reference/{version}/files/pack.yaml")
    assert manifest.status_code == 200, manifest.text
    assert ctx["case"] in manifest.text and "长效责任联席会议" in manifest.text


@then(parsers.parse('its responsibility list names "{unit}" as main for "{matter}" with "{other}" cooperating'))
def _amended_list(api, unit, matter, other):
    import yaml

    [active] = [v for v in api.get("district.supervisor", "/api/v1/packs").json() if v["active"]]
    text = api.get(
        "district.supervisor", f"/api/v1/packs/reference/{active['version']}/files/policies/responsibility.yaml"
    )
    [entry] = [e for e in yaml.safe_load(text.text)["entries"] if e["matter"] == matter]
    assert entry["main"] == unit and other in entry["cooperating"] and unit not in entry["cooperating"]
    before = api.get("district.supervisor", "/api/v1/packs/reference/1.0.0/files/policies/responsibility.yaml")
    [old] = [e for e in yaml.safe_load(before.text)["entries"] if e["matter"] == matter]
    assert old["main"] == other  # the version before is untouched


@then(parsers.parse('the case runs on version "{version}" and its record shows the amendment'))
def _case_moved(api, ctx, version):
    case = api.get("cc.supervisor", f"/api/v1/cases/{ctx['case']}").json()
    assert case["pack"]["version"] == version, case
    events = api.get("cc.supervisor", f"/api/v1/cases/{ctx['case']}/events").json()
    [amended] = [e["data"] for e in events if e["kind"] == "responsibility.amended"]
    assert amended["pack"] == f"reference {version}" and amended["main"] == "gulou.rqgs"
    assert amended["previous_main"] == "gulou.cgj" and amended["case"] == ctx["case"]


@then(parsers.parse('the rates of "{unit}" today count {calls:d} call-outs and {rejections:d} rejection'))
def _department_counts(api, clock, unit, calls, rejections):
    today = clock.now().astimezone(BEIJING).date()
    response = api.get("cc.supervisor", f"/api/v1/rates?level=department&from={today}&to={today}")
    [row] = [r for r in response.json()["rows"] if r["unit"] == unit]
    assert row["rejection_rate"] == pytest.approx(rejections / calls)


# -- escalation to the city (市级督办) -------------------------------------------------------------
@then(parsers.parse('the case has been escalated to "{unit}" by a "{kind}" for "{step}"'))
def _escalated_by(api, ctx, unit, kind, step):
    case = api.get("cc.supervisor", f"/api/v1/cases/{ctx['case']}").json()
    assert case["escalated_to"] == unit
    events = api.get("cc.supervisor", f"/api/v1/cases/{ctx['case']}/events").json()
    recorded = [e for e in events if e["kind"] == kind and e["data"].get("step") == step]
    assert len(recorded) == 1 and recorded[0]["data"]["escalate_to"] == unit, recorded
    assert recorded[0]["actor"] == "system.timer"


@then(parsers.parse('the scorecard of "{unit}" lists the case among its worst cases once it is overdue on {weekday}'))
def _city_worst(api, clock, govflow, ctx, unit, weekday):
    local = clock.now().astimezone(BEIJING)
    monday = local.date() - dt.timedelta(days=local.weekday())
    day = monday + dt.timedelta(days=WEEKDAYS.index(weekday))
    before = api.get("city.supervisor", f"/api/v1/units/{unit}/scorecard").json()
    assert ctx["case"] not in [w["case_id"] for w in before["worst_cases"]]  # not overdue yet
    clock.set(dt.datetime.combine(day, dt.time(12, 0), tzinfo=BEIJING))
    fire_due(govflow.cases)
    response = api.get("city.supervisor", f"/api/v1/units/{unit}/scorecard")
    assert response.status_code == 200, response.text
    worst = response.json()["worst_cases"]
    assert [(w["case_id"], w["task"]) for w in worst] == [(ctx["case"], "city_supervise")], worst
    # the lapse is on the record, with no one further up to escalate to
    events = api.get("cc.supervisor", f"/api/v1/cases/{ctx['case']}/events").json()
    late = [e for e in events if e["kind"] == "deadline.overdue" and e["data"].get("step") == "city"]
    assert len(late) == 1 and not late[0]["data"].get("escalate_to"), late


@when(parsers.parse('{who} decides as the city that "{street}" must sign'))
def _city_supervises(api, ctx, who, street):
    _do(api, who, ctx["case"], "city_supervise", street=street, note="市级督办：请立即签收处置")


@when(parsers.parse('{who} rules "{ruling}" on the disputed call as the city'))
def _city_rules(api, ctx, who, ruling):
    _do(api, who, ctx["case"], "city_rule_dispute", ruling=ruling, opinion="市级督办裁定")


@then(parsers.parse("{who}'s own figures for the week are"))
def _own_week_figures(api, clock, who, datatable):
    local = clock.now().astimezone(BEIJING).date()
    monday = local - dt.timedelta(days=local.weekday())
    me = api.get(who, "/api/v1/me")
    assert me.status_code == 200, me.text
    unit = me.json()["unit"]
    response = api.get(who, f"/api/v1/units/{unit}/scorecard?from={monday}&to={monday + dt.timedelta(days=6)}")
    assert response.status_code == 200, response.text
    _check(response.json()["figures"], datatable)


@when(parsers.parse('{who} instructs as the city "{instruction}"'))
def _city_urges(api, ctx, who, instruction):
    [name] = [t["name"] for t in api.inbox(who, ctx["case"]) if t["name"].startswith("city_urge_")]
    _do(api, who, ctx["case"], name, instruction=instruction)


@then(parsers.parse('the city\'s instruction "{instruction}" on "{task}" is on the record'))
def _city_instruction(api, ctx, instruction, task):
    events = api.get("cc.supervisor", f"/api/v1/cases/{ctx['case']}/events").json()
    done = [e for e in events if e["kind"] == "task.completed" and e["data"]["task"] == task]
    assert [(e["data"]["form"], e["data"]["unit"], e["actor"]) for e in done] == [
        ({"instruction": instruction}, "gulou.city", "city.supervisor")
    ], done


@then(parsers.parse('the city\'s "{task}" task is cancelled on the record after the ruling'))
def _city_closed(api, ctx, task):
    events = api.get("cc.supervisor", f"/api/v1/cases/{ctx['case']}/events").json()
    ruled = [e["seq"] for e in events if e["kind"] == "task.completed" and e["data"]["task"] == "rule_responsibility"]
    cancelled = [e["seq"] for e in events if e["kind"] == "task.cancelled" and e["data"]["task"] == task]
    assert len(ruled) == 1 and len(cancelled) == 1 and cancelled[0] > ruled[0], events
    assert not [e for e in events if e["kind"] == "task.completed" and e["data"]["task"] == task]
