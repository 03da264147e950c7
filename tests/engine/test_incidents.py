"""No poison pills (issue 14): one case's failing timer is isolated, becomes an incident, and is retried."""

from __future__ import annotations

import datetime as dt
import json
import zlib

import pytest
from sqlalchemy import func, select, update

from govflow.engine.cases import incidents
from govflow.engine.cases.service import NewCase
from govflow.engine.cases.timers import fire_due, retry_incident
from govflow.engine.model.errors import DiagramFailed, InvalidTransition
from govflow.engine.store.db import CaseEvent, CaseRow, Incident

DONGJIE = dict(lat=26.0865, lng=119.3025)


def report_many(govflow, principals, n):
    hotline = principals["hotline12345"]
    return [
        govflow.cases.report(hotline, NewCase(channel="hotline_12345", description="井盖没了", **DONGJIE)).case_id
        for _ in range(n)
    ]


def kinds_of(engine, case_id):
    with engine.connect() as conn:
        return conn.execute(select(CaseEvent.kind).where(CaseEvent.case_id == case_id)).scalars().all()


def overdue_counts(engine):
    with engine.connect() as conn:
        return dict(
            conn.execute(
                select(CaseEvent.case_id, func.count())
                .where(CaseEvent.kind == "deadline.overdue")
                .group_by(CaseEvent.case_id)
            ).all()
        )


def set_state(engine, case_id, state):
    with engine.begin() as conn:
        conn.execute(update(CaseRow).where(CaseRow.id == case_id).values(state=state))


def state_of(engine, case_id):
    with engine.connect() as conn:
        return conn.execute(select(CaseRow.state).where(CaseRow.id == case_id)).scalar_one()


def spiff_keyerror_state(blob: bytes) -> bytes:
    """A readable state whose restore raises a plain KeyError inside SpiffWorkflow."""
    dct = json.loads(zlib.decompress(blob))
    del dct["tasks"]
    return zlib.compress(json.dumps(dct).encode())


def test_corrupt_cases_among_due_timers_do_not_stop_the_others(govflow, principals, clock):
    cases = report_many(govflow, principals, 8)
    garbage, keyerror, save_fails = cases[0], cases[3], cases[6]
    set_state(govflow.db, garbage, b"\x00\xffgarbage")
    set_state(govflow.db, keyerror, spiff_keyerror_state(state_of(govflow.db, keyerror)))

    def failing_projector(conn, changes):  # saving this one case fails (after its row was written)
        if any(c.case_id == save_fails and c.events[0]["kind"] != "timer.failed" for c in changes):
            raise RuntimeError("the read model refused the row")

    govflow.uow.projectors.append(failing_projector)
    try:
        clock.advance(dt.timedelta(minutes=11))
        report = fire_due(govflow.cases, batch=50)
    finally:
        govflow.uow.projectors.remove(failing_projector)
    assert (report.due, report.fired, report.failed) == (8, 5, 3)
    healthy = [c for c in cases if c not in (garbage, keyerror, save_fails)]
    assert overdue_counts(govflow.db) == {c: 1 for c in healthy}  # every valid timer fired exactly once
    open_ = {i.case_id: i for i in incidents.list_incidents(govflow.db)}
    assert set(open_) == {str(garbage), str(keyerror), str(save_fails)}
    assert "unreadable" in open_[str(garbage)].error
    assert "KeyError" in open_[str(keyerror)].error
    assert "RuntimeError" in open_[str(save_fails)].error
    for case in (garbage, keyerror, save_fails):
        assert kinds_of(govflow.db, case)[-2:] == ["timer.failed", "incident.opened"]
        assert "deadline.overdue" not in kinds_of(govflow.db, case)  # the last good state is kept
    # backed off: the next ticks fire nothing again, and never twice
    assert fire_due(govflow.cases).due == 0
    assert overdue_counts(govflow.db) == {c: 1 for c in healthy}


def test_the_back_off_doubles_and_attempts_are_counted(govflow, principals, clock):
    [case] = report_many(govflow, principals, 1)
    set_state(govflow.db, case, b"garbage")
    clock.advance(dt.timedelta(minutes=11))
    retries = []
    for _ in range(3):
        assert fire_due(govflow.cases).failed == 1
        [incident] = incidents.list_incidents(govflow.db)
        retries.append(incident.retry_at - clock.now())
        clock.advance(retries[-1])
    assert retries == [dt.timedelta(minutes=5), dt.timedelta(minutes=10), dt.timedelta(minutes=20)]
    assert incident.attempts == 3
    assert kinds_of(govflow.db, case).count("incident.opened") == 1
    assert kinds_of(govflow.db, case).count("timer.failed") == 3


def test_an_operator_retries_after_fixing_the_cause(govflow, principals, clock):
    [case] = report_many(govflow, principals, 1)
    good = state_of(govflow.db, case)
    set_state(govflow.db, case, spiff_keyerror_state(good))
    clock.advance(dt.timedelta(minutes=11))
    fire_due(govflow.cases)
    [incident] = incidents.list_incidents(govflow.db)
    with pytest.raises(DiagramFailed, match="the retry failed") as failed:  # not fixed yet
        retry_incident(govflow.cases, incident.id, actor="ops")
    assert failed.value.context["incident"] == incident.id
    assert incidents.get_incident(govflow.db, incident.id).attempts == 2
    set_state(govflow.db, case, good)  # the cause is fixed
    done = retry_incident(govflow.cases, incident.id, actor="ops")
    assert (done.status, done.resolved_by) == ("resolved", "ops")
    assert overdue_counts(govflow.db) == {case: 1}
    assert kinds_of(govflow.db, case)[-1] == "incident.resolved"
    assert incidents.list_incidents(govflow.db) == []
    with pytest.raises(InvalidTransition):
        retry_incident(govflow.cases, incident.id, actor="ops")
    assert fire_due(govflow.cases).failed == 0


def test_a_timer_run_that_hits_a_diagram_limit_is_an_incident(govflow, principals, clock, monkeypatch):
    [case, other] = report_many(govflow, principals, 2)
    from govflow.engine.model.errors import LimitExceeded

    real = govflow.cases.decide_timers

    def decide(snapshot):
        if snapshot.id == case:
            raise LimitExceeded("the diagram was stopped at remind: too many steps", element="remind")
        return real(snapshot)

    monkeypatch.setattr(govflow.cases, "decide_timers", decide)
    clock.advance(dt.timedelta(minutes=11))
    assert fire_due(govflow.cases).failed == 1
    [incident] = incidents.list_incidents(govflow.db)
    assert (incident.case_id, incident.element) == (str(case), "remind")
    assert overdue_counts(govflow.db) == {other: 1}
    with govflow.db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Incident)).scalar_one() == 1
