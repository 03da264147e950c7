"""The timer worker: every due timer fires exactly once, failures land on the record."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select, update

from govflow.engine.cases.service import NewCase
from govflow.engine.cases.timers import fire_due
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
