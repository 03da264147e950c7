"""Supervision rates: computed from the record, incrementally, equal to a full recomputation."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import delete, func, select, update

from govflow.engine.cases.service import NewCase
from govflow.engine.cases.timers import fire_due
from govflow.engine.model.errors import FormValidationError, InvalidInput, PermissionDenied
from govflow.engine.oversight import projection
from govflow.engine.oversight.definitions import LOCAL_TZ, CaseContext, fold
from govflow.engine.store.db import CaseEvent, RateCounter

DONGJIE = dict(lat=26.0865, lng=119.3025)  # 东街口: Dongjie street
MANHOLE = "road.manhole_cover"


def report(app, principals, **kw):
    new = NewCase(channel="app", description="东街口有个井盖没了，晚上很危险", category=MANHOLE, **DONGJIE, **kw)
    return app.cases.report(principals["citizen.zhang"], new)


def task_of(app, principals, who, case_id, name):
    return next(t for t in app.queries.inbox(principals[who]) if t["case_id"] == str(case_id) and t["name"] == name)


def complete(app, principals, who, case_id, name, **data):
    return app.cases.complete_task(principals[who], task_of(app, principals, who, case_id, name)["id"], data)


def run_simple(app, principals, case_id, *, satisfaction):
    complete(app, principals, "dongjie.dispatcher", case_id, "sign_for")
    complete(app, principals, "dongjie.dispatcher", case_id, "handle", result="已补装井盖")
    complete(app, principals, "dongjie.dispatcher", case_id, "review", approved=True)
    complete(app, principals, "citizen.zhang", case_id, "evaluate", satisfaction=satisfaction)


def run_called(app, principals, clock, case_id, *, cgj_late: bool):
    from govflow.engine.cases.callouts import CallOut

    complete(app, principals, "dongjie.dispatcher", case_id, "sign_for")
    app.callouts.call_out(
        principals["dongjie.dispatcher"], str(case_id), CallOut(["gulou.cgj", "gulou.zjj"], "井盖缺失需联合处置")
    )
    complete(app, principals, "zjj.handler", case_id, "report_in", decision="accept", attendee="郭文斌")
    if cgj_late:  # one minute past its report-in deadline: the no-response timer fires first
        clock.set(task_of(app, principals, "cgj.handler", case_id, "report_in")["due_at"] + dt.timedelta(minutes=1))
    complete(app, principals, "cgj.handler", case_id, "report_in", decision="accept", attendee="林志勇")
    due = (clock.now() + dt.timedelta(days=1)).isoformat()
    complete(
        app,
        principals,
        "dongjie.dispatcher",
        case_id,
        "consult",
        opinion="城管局补装",
        assignments=[{"unit": "gulou.cgj", "duty": "补装井盖", "due": due}],
    )
    complete(app, principals, "cgj.handler", case_id, "dispose", result="已补装")
    complete(app, principals, "dongjie.dispatcher", case_id, "review", approved=True)
    app.callouts.rate(
        principals["dongjie.dispatcher"], str(case_id), target="gulou.cgj", dimension="report_in", score=4, comment=None
    )
    app.callouts.rate(
        principals["cgj.handler"], str(case_id), target="gulou.dongjie", dimension="accuracy", score=5, comment=None
    )


def test_rates_of_a_scripted_week_equal_hand_computed_values(govflow, principals, clock):
    app = govflow
    cases = [report(app, principals) for _ in range(4)]
    run_simple(app, principals, cases[0].case_id, satisfaction=5)
    run_simple(app, principals, cases[1].case_id, satisfaction=2)
    # dissatisfied: the command centre's return visit (回访) hears 3 and closes the matter
    complete(app, principals, "cc.supervisor", cases[1].case_id, "return_visit", return_visit=3, outcome="close")
    run_called(app, principals, clock, cases[2].case_id, cgj_late=True)
    # case 3: reported, never signed: its sign-for deadline passes and the timer escalates it
    clock.advance(dt.timedelta(hours=2))
    assert fire_due(app.cases).fired >= 1

    cc = principals["cc.supervisor"]
    streets = {r["unit"]: r for r in app.oversight.rates(cc, level="street")["rows"]}
    dongjie = streets["gulou.dongjie"]
    # received 4; handled 3 (cases 0, 1, 2); called 1 → call rate 1/3
    assert dongjie["call_rate"] == pytest.approx(1 / 3)
    # closed (evaluated) 2 of 4 received (case 2 waits for its evaluation, case 3 was never signed)
    assert dongjie["completion_rate"] == pytest.approx(2 / 4)
    # citizens rated 5 and 2: mean 3.5; satisfied (≥4) 1 of 2; resolved (≥3) 1 of 2
    assert dongjie["satisfaction"] == pytest.approx(3.5)
    assert dongjie["bj_satisfaction_rate"] == pytest.approx(0.5) and dongjie["bj_resolution_rate"] == pytest.approx(0.5)
    # one return visit, rated 3; it closed the matter: no reopen of the 2 closed
    assert dongjie["return_visit_satisfaction"] == pytest.approx(3.0) and dongjie["reopen_rate"] == 0.0
    # signed 3, all on time; case 3's sign-for expired unsigned (not "signed")
    assert dongjie["bj_response_rate"] == pytest.approx(1.0)
    # overdue: case 3's sign-for — and case 2's disposal if its deadline had already passed when cgj
    # reported in late (whether it had depends on how the pack sets the disposal deadline);
    # escalated: the overdue ones and cgj's missed report-in deadline
    with app.db.connect() as conn:
        late_disposal = conn.execute(
            select(func.count())
            .select_from(CaseEvent)
            .where(CaseEvent.case_id == cases[2].case_id, CaseEvent.kind == "deadline.overdue")
        ).scalar_one()
    assert late_disposal in (0, 1)
    assert dongjie["overdue_count"] == 1 + late_disposal and dongjie["escalated_count"] == 2 + late_disposal
    assert dongjie["call_accuracy"] == pytest.approx(5.0)
    assert dongjie["on_time_rate:sign_for"] == pytest.approx(1.0)
    departments = {r["unit"]: r for r in app.oversight.rates(cc, level="department")["rows"]}
    # cgj reported in late, zjj on time: each 1 call-out
    assert departments["gulou.cgj"]["response_rate"] == 0.0 and departments["gulou.zjj"]["response_rate"] == 1.0
    assert departments["gulou.cgj"]["no_response_count"] == 1 and departments["gulou.zjj"]["no_response_count"] == 0
    assert departments["gulou.cgj"]["report_in_rating"] == pytest.approx(4.0)
    assert departments["gulou.cgj"]["report_in_minutes"] > departments["gulou.zjj"]["report_in_minutes"]
    district = app.oversight.rates(cc, level="district")["rows"][0]
    assert district["completion_rate"] == pytest.approx(2 / 4)
    matters = {r["matter"]: r for r in app.oversight.rates(cc, level="matter")["rows"]}
    assert matters[MANHOLE]["completion_rate"] == pytest.approx(2 / 4)

    check = projection.verify(app.db)
    assert check.equal and check.events > 40 and check.counters > 10


def test_a_return_visit_that_reopens_the_case_is_counted(govflow, principals):
    app = govflow
    case = report(app, principals).case_id
    run_simple(app, principals, case, satisfaction=1)
    complete(app, principals, "cc.supervisor", case, "return_visit", return_visit=1, outcome="reopen", note="井盖仍缺")
    handle = task_of(app, principals, "dongjie.dispatcher", case, "handle")  # back at the owner street
    assert handle["unit"] == "gulou.dongjie"
    complete(app, principals, "dongjie.dispatcher", case, "handle", result="重新补装并加固")
    complete(app, principals, "dongjie.dispatcher", case, "review", approved=True)
    complete(app, principals, "citizen.zhang", case, "evaluate", satisfaction=5)  # a second round of rating
    cc = principals["cc.supervisor"]
    [row] = [r for r in app.oversight.rates(cc, level="street")["rows"] if r["unit"] == "gulou.dongjie"]
    # reopened 1 of 1 closed; ratings 1 then 5; the return visit rated 1
    assert row["reopen_rate"] == 1.0 and row["completion_rate"] == 1.0
    assert row["satisfaction"] == pytest.approx(3.0) and row["return_visit_satisfaction"] == pytest.approx(1.0)
    with app.db.connect() as conn:
        kinds = conn.execute(select(CaseEvent.kind).where(CaseEvent.case_id == case).order_by(CaseEvent.seq))
        kinds = [k for (k,) in kinds]
    assert kinds.count("case.reopened") == 1 and kinds.count("case.closed") == 1 and kinds[-1] == "case.closed"
    assert [r["rater_party"] for r in app.callouts.ratings(cc, str(case))] == [
        "citizen.zhang",
        "cc.supervisor",
        "citizen.zhang#2",
    ]
    assert projection.verify(app.db).equal


def test_the_projection_is_rebuilt_equal_and_a_tampered_counter_is_caught(govflow, principals):
    case = report(govflow, principals)
    run_simple(govflow, principals, case.case_id, satisfaction=4)
    before = projection.stored(govflow.db)
    with govflow.db.begin() as conn:  # a counter typed in by hand
        conn.execute(update(RateCounter).where(RateCounter.metric == "closed").values(value=RateCounter.value + 7))
    check = projection.verify(govflow.db)
    assert not check.equal and [d[0][4] for d in check.counter_differences] == ["closed"]
    projection.rebuild(govflow.db)
    assert projection.verify(govflow.db).equal and projection.stored(govflow.db).counters == before.counters
    with govflow.db.begin() as conn:
        conn.execute(delete(RateCounter))
    assert not projection.verify(govflow.db).equal  # a lost projection is caught too


def test_a_failed_command_counts_nothing(govflow, principals):
    case = report(govflow, principals)
    with govflow.db.connect() as conn:
        before = conn.execute(select(RateCounter.metric, RateCounter.value)).all()
    with pytest.raises(FormValidationError):
        complete(govflow, principals, "dongjie.dispatcher", case.case_id, "sign_for", unknown_field="x")
    with govflow.db.connect() as conn:
        assert conn.execute(select(RateCounter.metric, RateCounter.value)).all() == before


def test_a_street_reads_its_own_scorecard_but_not_another_streets(govflow, principals):
    case = report(govflow, principals)
    run_simple(govflow, principals, case.case_id, satisfaction=5)
    dongjie, nanjie = principals["dongjie.dispatcher"], principals["nanjie.dispatcher"]
    card = govflow.oversight.scorecard(dongjie, "gulou.dongjie")
    assert card["figures"]["completion_rate"] == 1.0 and card["counters"]["closed"] == 1
    with pytest.raises(PermissionDenied):
        govflow.oversight.scorecard(nanjie, "gulou.dongjie")
    own = govflow.oversight.rates(dongjie, level="street")["rows"]
    assert [r["unit"] for r in own] == ["gulou.dongjie"]
    with pytest.raises(PermissionDenied):
        govflow.oversight.rates(dongjie, level="matter")
    with pytest.raises(PermissionDenied):
        govflow.oversight.rates(principals["citizen.zhang"], level="street")
    district_view = govflow.oversight.scorecard(principals["district.supervisor"], "gulou.dongjie")
    assert district_view["unit"] == "gulou.dongjie"


def test_worst_cases_are_the_most_overdue_open_tasks(govflow, principals, clock):
    first = report(govflow, principals)
    clock.advance(dt.timedelta(minutes=3))
    second = report(govflow, principals)
    clock.advance(dt.timedelta(minutes=8))  # first is 1 minute past its 10-minute sign-for deadline
    card = govflow.oversight.scorecard(principals["dongjie.dispatcher"], "gulou.dongjie")
    assert [w["case_id"] for w in card["worst_cases"]] == [str(first.case_id)]
    assert card["worst_cases"][0]["overdue_minutes"] == 1 and "description" not in card["worst_cases"][0]
    assert str(second.case_id) not in {w["case_id"] for w in card["worst_cases"]}


def test_ranking_orders_units_and_leaves_those_without_data_unranked(govflow, principals):
    case = report(govflow, principals)
    run_simple(govflow, principals, case.case_id, satisfaction=5)
    result = govflow.oversight.ranking(principals["nanjie.dispatcher"], metric="completion_rate")
    assert result["rows"][0] == {"unit": "gulou.dongjie", "name": result["rows"][0]["name"], "value": 1.0, "rank": 1}
    assert all(r["rank"] is None for r in result["rows"][1:])
    with pytest.raises(InvalidInput):
        govflow.oversight.ranking(principals["nanjie.dispatcher"], metric="happiness")
    with pytest.raises(PermissionDenied):
        govflow.oversight.ranking(principals["citizen.zhang"], metric="completion_rate")


def test_the_board_counts_cases_per_stage_per_street_without_personal_data(govflow, principals):
    report(govflow, principals, reporter_name="张伟", reporter_phone="13812345678")
    case = report(govflow, principals)
    complete(govflow, principals, "dongjie.dispatcher", case.case_id, "sign_for")
    board = govflow.oversight.board()
    rows = {r["unit"]: r["counts"] for r in board["rows"]}
    assert rows["gulou.dongjie"]["dispatched"] == 1 and rows["gulou.dongjie"]["handling"] == 1
    assert "张伟" not in repr(board) and "井盖" not in repr(board)


def test_windows_are_validated():
    from govflow.engine.oversight.rates import Window

    today = dt.date(2026, 9, 30)
    assert Window.parse(None, None, today).first == dt.date(2026, 9, 1)
    for start, end in (("2026-09-31", None), ("2026-10-02", "2026-10-01"), ("2000-01-01", "2026-01-01")):
        with pytest.raises(InvalidInput):
            Window.parse(start, end, today)


def test_fold_is_pure_and_attributes_to_the_owner_at_the_time():
    ctx = CaseContext("gulou")
    at = dt.datetime(2026, 9, 28, 16, 30, tzinfo=dt.UTC)  # 00:30 on the 29th in Fuzhou
    ctx, inc = fold(ctx, {"kind": "case.unroutable", "at": at, "data": {"owner": "gulou.cc", "matter": None}})
    assert [(i.unit, i.metric, i.day) for i in inc] == [("gulou.cc", "received", "2026-09-29")]
    ctx, inc = fold(
        ctx, {"kind": "case.dispatched", "at": at, "data": {"owner": "gulou.nanjie", "matter": "road.pothole"}}
    )
    assert [(i.unit, i.matter, i.metric) for i in inc] == [("gulou.nanjie", "road.pothole", "received")]
    _, inc = fold(ctx, {"kind": "deadline.overdue", "at": at, "data": {"escalate_to": "gulou.city"}})
    assert sorted((i.metric, i.unit) for i in inc) == [
        ("escalated", "gulou.nanjie"),
        ("escalations_received", "gulou.city"),  # the unit it was escalated to
        ("overdue", "gulou.nanjie"),
    ]


def test_fold_moves_a_case_across_the_live_board():
    """The board's counters: -1 where the case stood, +1 where it stands (owner × stage)."""
    at = dt.datetime(2026, 9, 28, 2, 0, tzinfo=dt.UTC)

    def board(ctx, kind, **data):
        ctx, inc = fold(ctx, {"kind": kind, "at": at, "data": data})
        return ctx, sorted((i.unit, i.metric, i.value, i.day, i.matter) for i in inc if i.metric.startswith("board:"))

    ctx, moves = board(CaseContext("gulou"), "case.unroutable", owner="gulou.cc", matter=None)
    assert moves == []  # no stage yet
    ctx, moves = board(ctx, "case.stage", stage="reported")
    assert moves == [("gulou.cc", "board:reported", 1, "", "")]
    ctx, moves = board(ctx, "case.dispatched", owner="gulou.nanjie", matter="road.pothole")
    assert moves == [("gulou.cc", "board:reported", -1, "", ""), ("gulou.nanjie", "board:reported", 1, "", "")]
    ctx, moves = board(ctx, "case.stage", stage="dispatched")
    assert moves == [("gulou.nanjie", "board:dispatched", 1, "", ""), ("gulou.nanjie", "board:reported", -1, "", "")]
    assert (ctx.owner, ctx.stage) == ("gulou.nanjie", "dispatched")
    ctx, moves = board(ctx, "case.dispatched", owner="gulou.nanjie", matter="road.manhole_cover")
    assert moves == []  # a new matter, the same cell


def test_trend_gives_one_value_per_day_and_respects_rights(govflow, principals, clock):
    first = report(govflow, principals)
    run_simple(govflow, principals, first.case_id, satisfaction=5)
    clock.advance(dt.timedelta(days=2))
    report(govflow, principals)  # received, not closed
    cc, dongjie = principals["cc.supervisor"], principals["dongjie.dispatcher"]
    day0 = "2026-09-28"
    trend = govflow.oversight.trend(cc, metric="completion_rate", unit="gulou.dongjie", start=day0, end="2026-09-30")
    assert [p["day"] for p in trend["points"]] == ["2026-09-28", "2026-09-29", "2026-09-30"]
    assert [p["value"] for p in trend["points"]] == [1.0, None, 0.0]
    own = govflow.oversight.trend(dongjie, metric="completion_rate", unit="gulou.dongjie", start=day0, end=day0)
    assert own["points"][0]["value"] == 1.0
    with pytest.raises(PermissionDenied):
        govflow.oversight.trend(dongjie, metric="completion_rate", unit="gulou.nanjie")
    with pytest.raises(PermissionDenied):
        govflow.oversight.trend(dongjie, metric="completion_rate")  # the district's trend


def test_a_task_completed_after_its_deadline_fired_is_late():
    """The task's row loses its due time once its deadline timer fires; the record keeps it."""
    opened = dt.datetime(2026, 9, 28, 2, 0, tzinfo=dt.UTC)
    due = opened + dt.timedelta(hours=2)
    ctx = CaseContext("gulou", owner="gulou.dongjie")
    ctx, _ = fold(
        ctx,
        {
            "kind": "task.opened",
            "at": opened,
            "data": {"task": "report_in", "unit": "gulou.cgj", "due_at": due.isoformat()},
        },
    )
    late = {"task": "report_in", "unit": "gulou.cgj", "role": "report_in", "due_at": None, "form": {}}
    done, inc = fold(ctx, {"kind": "task.completed", "at": due + dt.timedelta(minutes=1), "data": late})
    got = {(i.metric, i.unit): i.value for i in inc}
    assert got[("reported_in", "gulou.cgj")] == 1 and ("reported_in_on_time", "gulou.cgj") not in got
    assert got[("done:report_in", "gulou.cgj")] == 1 and ("on_time:report_in", "gulou.cgj") not in got
    assert done.dues == ()  # forgotten once done
    _, inc = fold(ctx, {"kind": "task.completed", "at": due - dt.timedelta(minutes=1), "data": late})
    assert {(i.metric, i.unit): i.value for i in inc}[("reported_in_on_time", "gulou.cgj")] == 1
    cancelled, _ = fold(ctx, {"kind": "task.cancelled", "at": due, "data": {"task": "report_in"}})
    assert cancelled.dues == ()


def test_sums_of_past_days_are_kept_until_a_rebuild_moves_the_generation(govflow, principals, clock):
    """Past days never change but by a rebuild: their sums are read once per generation."""
    case = report(govflow, principals)
    run_simple(govflow, principals, case.case_id, satisfaction=4)
    yesterday = clock.now().astimezone(LOCAL_TZ).date().isoformat()
    clock.advance(dt.timedelta(days=1))
    report(govflow, principals)  # today: received, read live
    cc = principals["cc.supervisor"]

    def completion():
        rows = govflow.oversight.rates(cc, level="street", start=yesterday)["rows"]
        return next(r for r in rows if r["unit"] == "gulou.dongjie")["completion_rate"]

    def generation():
        with govflow.db.connect() as conn:
            return projection.generation_on(conn)

    first = generation()  # the migration that made the tables rebuilt the projection once
    projection.rebuild(govflow.db)
    assert generation() == first + 1 and projection.verify(govflow.db).equal  # the generation row is no counter
    assert completion() == pytest.approx(1 / 2)
    closed = (RateCounter.metric == "closed") & (RateCounter.day == yesterday)
    with govflow.db.begin() as conn:  # yesterday's counter changed behind the projection's back
        conn.execute(update(RateCounter).where(closed).values(value=0))
    assert completion() == pytest.approx(1 / 2)  # yesterday's sums as read before
    report(govflow, principals)
    assert completion() == pytest.approx(1 / 3)  # today's rows are read each time
    with govflow.db.begin() as conn:  # the generation moves (as a rebuild moves it): past days are read again
        conn.execute(update(RateCounter).where(RateCounter.metric == "generation").values(value=first + 2))
    assert completion() == 0.0
    projection.rebuild(govflow.db)  # the record's own figure again
    assert generation() == first + 3 and completion() == pytest.approx(1 / 3) and projection.verify(govflow.db).equal
