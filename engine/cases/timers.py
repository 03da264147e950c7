"""Firing due timers from the database, exactly once, from any number of workers.

A case's earliest pending timer is kept in ``cases.next_due`` (indexed).
:func:`fire_due` runs one batch in ONE transaction:

1. select up to ``batch`` cases with ``next_due <= now``; on PostgreSQL with
   ``FOR UPDATE SKIP LOCKED``, so concurrent workers take disjoint batches and
   never wait on each other;
2. for each case, fire its due timers through the command path in memory
   (:meth:`CaseService.decide_timers`: advance with the injected clock,
   compute state, tasks, events and the new ``next_due``) and write its row
   with a version-checked update;
3. write the batch's task changes and events in three statements, commit, then
   hand the events to the listeners (notifications).

Each timer fires exactly once: firing moves ``next_due`` past it in the same
commit that records it, and the row lock (PostgreSQL) or the version check
(SQLite, where writers are serialized anyway) keeps two workers from applying
the same case. A worker killed mid-batch commits nothing of that batch: its row
locks are released and the same cases are due again for the next worker.

A case whose timer fails (a broken diagram or plugin) gets a ``timer.failed``
event and a back-off on ``next_due``, so it neither blocks the batch nor spins.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from govflow.engine.access.identity import Principal
from govflow.engine.cases.service import TIMER_ACTOR, CaseService
from govflow.engine.cases.unit_of_work import Change, Event, plan_event, refresh_next_due, write_rows
from govflow.engine.model.errors import ConcurrentUpdate, GovflowError
from govflow.engine.store.db import CaseRow, CaseTask

log = logging.getLogger("govflow.timers")

RETRY_AFTER = dt.timedelta(minutes=5)


@dataclass
class TickReport:
    due: int = 0
    fired: int = 0
    idle: int = 0
    conflicts: int = 0
    failed: int = 0


def fire_due(service: CaseService, *, batch: int = 200) -> TickReport:
    """Fire one batch of due timers in one transaction; returns what happened."""
    report = TickReport()
    uow = service.uow
    now = service.clock.now()
    applied: list[Change] = []
    with uow.db.begin() as conn:
        query = select(CaseRow).where(CaseRow.next_due <= now).order_by(CaseRow.next_due).limit(batch)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = conn.execute(query).all()
        report.due = len(rows)
        if not rows:
            return report
        open_tasks: dict[Any, dict[Any, Any]] = defaultdict(dict)
        for task in conn.execute(select(CaseTask).where(CaseTask.case_id.in_([r.id for r in rows]))):
            open_tasks[task.case_id][task.id] = task
        for case in rows:
            snapshot = uow.snapshot(case, open_tasks[case.id])
            try:
                change = service.decide_timers(snapshot)
            except GovflowError as exc:
                report.failed += 1
                change = _failure(snapshot, exc, now)
            if change is None:  # nothing was due after all: refresh next_due only
                report.idle += 1
                next_due = service.next_due(snapshot)
                if next_due != case.next_due:
                    refresh_next_due(conn, case, next_due)
                continue
            try:
                change.write_row(conn)  # version-checked; on PostgreSQL the row is ours anyway
            except ConcurrentUpdate:
                report.conflicts += 1
                continue
            applied.append(change)
            if change.events and change.events[0]["kind"] != "timer.failed":
                report.fired += 1
        # the rest of the batch's writes go in a few statements, in the same transaction
        write_rows(conn, applied)
        uow.project(conn, applied)
    uow.notify([e for change in applied for e in change.events])
    return report


def _failure(snapshot: Any, exc: GovflowError, now: dt.datetime) -> Change:
    """A failed timer: on the record, and tried again after a back-off (it never blocks the batch)."""
    log.warning("timer of case %s failed: %s", snapshot.id, exc)
    retry_at = now + RETRY_AFTER
    actor = Principal(TIMER_ACTOR, "timer", "system", snapshot.row.district, None, ())
    return plan_event(
        snapshot,
        actor=actor,
        power="deadline",
        now=now,
        events=[Event("timer.failed", {"error": exc.message, "retry_at": retry_at.isoformat()})],
        values={"next_due": retry_at},
    )


class TimerLoop(threading.Thread):
    """The in-process timer loop of ``govflow serve`` (a worker like any other)."""

    def __init__(self, service: CaseService, interval: float, batch: int = 200) -> None:
        super().__init__(name="govflow-timers", daemon=True)
        self.service, self.interval, self.batch = service, interval, batch
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                report = fire_due(self.service, batch=self.batch)
            except Exception:  # keep the loop alive; the next tick retries
                log.exception("timer loop tick failed")
                report = TickReport()
            if report.due < self.batch:
                self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
