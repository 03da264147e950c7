"""The timer worker: every due timer fires exactly once, failures land on the record."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import event, func, select, update

from govflow.engine.cases import timers
from govflow.engine.cases.service import NewCase
from govflow.engine.cases.timers import TimerLoop, fire_due
from govflow.engine.store.db import CaseEvent, CaseRow, CaseTask

DONGJIE = dict(lat=26.0865, lng=119.3025)


def report_many(govflow, principals, n):
    hotline = principals["hotline12345"]
    return [
        govflow.cases.report(
            hotline, NewCase(channel="hotline_12345", description="东街口有个井盖没了", **DONGJIE)
        ).case_id
        for _ in range(n)
    ]


def overdue_counts(engine):
    with engine.connect() as conn:
        return dict(
            conn.execute(
                select(CaseEvent.case_id, func.count())
                .where(CaseEvent.kind == "deadline.overdue")
                .group_by(CaseEvent.case_id)
            ).all()
        )


def test_due_timers_fire_once_and_only_when_due(govflow, principals, clock):
    cases = report_many(govflow, principals, 12)
    clock.advance(dt.timedelta(minutes=9))
    assert fire_due(govflow.cases).fired == 0
    clock.advance(dt.timedelta(minutes=2))
    first = fire_due(govflow.cases, batch=5)
    rest = fire_due(govflow.cases, batch=50)
    again = fire_due(govflow.cases)
    assert (first.fired, rest.fired, again.fired) == (5, 7, 0)
    assert overdue_counts(govflow.db) == {case: 1 for case in cases}
    with govflow.db.connect() as conn:
        names = conn.execute(select(CaseTask.name).where(CaseTask.case_id.in_(cases))).scalars().all()
    assert sorted(names) == ["supervise"] * 12


def test_a_failing_timer_is_recorded_and_backs_off(govflow, principals, clock):
    broken, healthy = report_many(govflow, principals, 2)
    with govflow.db.begin() as conn:
        conn.execute(update(CaseRow).where(CaseRow.id == broken).values(state=b"not a workflow"))
    clock.advance(dt.timedelta(minutes=11))
    report = fire_due(govflow.cases)
    assert (report.fired, report.failed) == (1, 1)
    assert overdue_counts(govflow.db) == {healthy: 1}
    with govflow.db.connect() as conn:
        failed = (
            conn.execute(select(CaseEvent.data).where(CaseEvent.case_id == broken, CaseEvent.kind == "timer.failed"))
            .scalars()
            .all()
        )
        next_due = conn.execute(select(CaseRow.next_due).where(CaseRow.id == broken)).scalar_one()
    assert len(failed) == 1 and "unreadable" in failed[0]["error"]
    assert next_due > clock.now()
    assert fire_due(govflow.cases).due == 0  # backed off, not spinning


def case_state(engine, case_id):
    with engine.connect() as conn:
        row = conn.execute(select(CaseRow.version, CaseRow.next_due).where(CaseRow.id == case_id)).one()
        kinds = conn.execute(select(CaseEvent.kind).where(CaseEvent.case_id == case_id)).scalars().all()
    return row.version, row.next_due, kinds


def test_a_case_with_nothing_due_after_all_only_gets_its_next_due_refreshed(govflow, principals, clock):
    [case] = report_many(govflow, principals, 1)
    version, next_due, kinds = case_state(govflow.db, case)
    assert next_due == clock.now() + dt.timedelta(minutes=10)
    with govflow.db.begin() as conn:  # a stale next_due, as left by an older worker or a manual fix
        conn.execute(update(CaseRow).where(CaseRow.id == case).values(next_due=clock.now() - dt.timedelta(minutes=1)))
    report = fire_due(govflow.cases)
    assert (report.due, report.idle, report.fired, report.conflicts, report.failed) == (1, 1, 0, 0, 0)
    assert case_state(govflow.db, case) == (version, next_due, kinds)  # the true next_due, nothing else
    assert fire_due(govflow.cases).due == 0


def test_a_case_changed_between_read_and_write_is_a_conflict_and_fires_once(govflow, principals, clock, database):
    """A second worker runs its whole tick while the first is about to write the case it read.

    SQLite: the second worker fires the timer; the first one's version-checked write finds the
    case changed and counts a conflict. PostgreSQL: the first worker holds the row lock, so the
    second skips the case. Either way the timer fires exactly once.
    """
    [case] = report_many(govflow, principals, 1)
    clock.advance(dt.timedelta(minutes=11))
    armed, second = [True], []

    def meanwhile(conn, cursor, statement, parameters, context, executemany):
        if armed and statement.lstrip().upper().startswith("UPDATE CASES"):
            armed.clear()  # once: the second worker's own writes go through
            second.append(fire_due(govflow.cases))

    event.listen(database, "before_cursor_execute", meanwhile)
    try:
        first = fire_due(govflow.cases)
    finally:
        event.remove(database, "before_cursor_execute", meanwhile)
    [other] = second
    if database.dialect.name == "sqlite":
        assert (first.due, first.fired, first.conflicts) == (1, 0, 1)
        assert (other.due, other.fired, other.conflicts) == (1, 1, 0)
    else:
        assert (first.due, first.fired, first.conflicts) == (1, 1, 0)
        assert other.due == 0
    assert overdue_counts(govflow.db) == {case: 1}
    version, _, kinds = case_state(govflow.db, case)
    assert (version, kinds.count("deadline.overdue"), kinds.count("timer.failed")) == (2, 1, 0)
    assert fire_due(govflow.cases).due == 0


class Ticks:
    """Records every tick of a TimerLoop (what fire_due reported, or raised)."""

    def __init__(self, monkeypatch, fail_first: int = 0) -> None:
        self.reports: list = []
        self.changed = threading.Condition()
        self.fail_first = fail_first
        real = timers.fire_due

        def tick(service, *, batch):
            try:
                if len(self.reports) < self.fail_first:
                    raise RuntimeError("the database went away")
                result = real(service, batch=batch)
            except Exception as exc:
                self.record(exc)
                raise
            self.record(result)
            return result

        monkeypatch.setattr(timers, "fire_due", tick)

    def record(self, result) -> None:
        with self.changed:
            self.reports.append(result)
            self.changed.notify_all()

    def wait_for(self, count: int, timeout: float = 20) -> list:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.reports) >= count, timeout), self.reports
            return list(self.reports)


@pytest.fixture
def loops():
    started: list[TimerLoop] = []
    yield started
    for loop in started:
        loop.stop()
        loop.join(5)


def test_the_loop_drains_full_batches_at_once_then_waits_the_interval(govflow, principals, clock, monkeypatch, loops):
    ticks = Ticks(monkeypatch)
    cases = report_many(govflow, principals, 3)
    clock.advance(dt.timedelta(minutes=11))
    loop = TimerLoop(govflow.cases, interval=30, batch=1)
    loops.append(loop)
    loop.start()
    reports = ticks.wait_for(4)  # three full batches back to back, then one that finds nothing due
    assert [(r.due, r.fired) for r in reports] == [(1, 1), (1, 1), (1, 1), (0, 0)]
    assert overdue_counts(govflow.db) == {case: 1 for case in cases}
    time.sleep(0.5)
    assert len(ticks.reports) == 4  # idle: waiting its 30 s interval, not spinning
    began = time.monotonic()
    loop.stop()
    loop.join(5)
    assert not loop.is_alive() and time.monotonic() - began < 2  # stop() ends the wait at once


def test_an_idle_loop_ticks_once_per_interval(govflow, monkeypatch, loops):
    ticks = Ticks(monkeypatch)
    loop = TimerLoop(govflow.cases, interval=0.2)
    loops.append(loop)
    began = time.monotonic()
    loop.start()
    ticks.wait_for(3)
    elapsed = time.monotonic() - began
    assert all(r.due == 0 for r in ticks.reports)
    assert elapsed >= 0.4  # two full intervals between three idle ticks


def test_a_tick_that_raises_keeps_the_loop_alive(govflow, principals, clock, monkeypatch, loops, caplog):
    ticks = Ticks(monkeypatch, fail_first=2)
    [case] = report_many(govflow, principals, 1)
    clock.advance(dt.timedelta(minutes=11))
    loop = TimerLoop(govflow.cases, interval=0.05)
    loops.append(loop)
    with caplog.at_level("ERROR", logger="govflow.timers"):
        loop.start()
        reports = ticks.wait_for(3)
    assert [type(r).__name__ for r in reports[:3]] == ["RuntimeError", "RuntimeError", "TickReport"]
    assert (reports[2].due, reports[2].fired) == (1, 1)
    assert loop.is_alive()
    failures = [r for r in caplog.records if r.getMessage() == "timer loop tick failed"]
    assert len(failures) == 2 and all(r.exc_info[0] is RuntimeError for r in failures)
    assert overdue_counts(govflow.db) == {case: 1}


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_several_worker_processes_fire_each_timer_once_even_when_one_is_killed(database, govflow, principals, clock):
    """Real `govflow worker` processes on PostgreSQL over 2,000 due timers; one is killed mid-run."""
    clock.set(dt.datetime.now(dt.UTC) - dt.timedelta(hours=2))  # their sign-for deadlines passed long ago
    n = 2000
    cases = report_many(govflow, principals, n)
    url = database.url.render_as_string(hide_password=False)
    env = dict(os.environ, GOVFLOW_DATABASE_URL=url)
    command = [sys.executable, "-m", "govflow.cli", "worker", "--batch", "40", "--interval", "0.2"]
    workers = [subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(3)]
    try:
        deadline = time.monotonic() + 120
        while sum(overdue_counts(govflow.db).values()) < n // 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        workers[0].send_signal(signal.SIGKILL)  # mid-run, most likely mid-batch
        while sum(overdue_counts(govflow.db).values()) < n and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
        for worker in workers:
            worker.wait(20)
    counts = overdue_counts(govflow.db)
    assert set(counts) == set(cases), f"{n - len(counts)} timers never fired"
    assert set(counts.values()) == {1}, "a timer fired twice"
    assert workers[0].returncode == -signal.SIGKILL
    with govflow.db.connect() as conn:
        supervising = conn.execute(
            select(func.count()).select_from(CaseTask).where(CaseTask.name == "supervise")
        ).scalar_one()
        actors = set(conn.execute(select(CaseEvent.actor).where(CaseEvent.kind == "deadline.overdue")).scalars())
    assert supervising == n
    assert actors == {"system.timer"}
