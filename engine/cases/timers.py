"""Firing due timers from the database, exactly once, from any number of workers.

A case's earliest pending timer is kept in ``cases.next_due`` (indexed).
:func:`fire_due` runs one batch in ONE transaction:

1. select up to ``batch`` cases with ``next_due <= now``; on PostgreSQL with
   ``FOR UPDATE SKIP LOCKED``, so concurrent workers take disjoint batches and
   never wait on each other;
2. for each case, fire its due timers through the command path in memory
   (:meth:`CaseService.prepare_timers`: load, advance with the injected clock,
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

from sqlalchemy import delete, insert, select, update

from govflow.engine.cases.service import TIMER_ACTOR, CaseService, Pending
from govflow.engine.model.errors import ConcurrentUpdate, GovflowError
from govflow.engine.store.db import CaseEvent, CaseRow, CaseTask

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
    now = service.clock.now()
    written: list[dict] = []
    with service.db.begin() as conn:
        query = select(CaseRow).where(CaseRow.next_due <= now).order_by(CaseRow.next_due).limit(batch)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = conn.execute(query).all()
        report.due = len(rows)
        if not rows:
            return report
        open_tasks: dict = defaultdict(dict)
        for task in conn.execute(
            select(CaseTask.id, CaseTask.name, CaseTask.case_id).where(CaseTask.case_id.in_([r.id for r in rows]))
        ):
            open_tasks[task.case_id][task.id] = task.name
        applied: list[Pending] = []
        for case in rows:
            try:
                result = service.prepare_timers(case, open_tasks[case.id])
            except GovflowError as exc:
                report.failed += 1
                written += _record_failure(conn, case, exc, now)
                continue
            if not isinstance(result, Pending):  # nothing was due after all: refresh next_due only
                report.idle += 1
                if result != case.next_due:
                    conn.execute(
                        update(CaseRow)
                        .where(CaseRow.id == case.id, CaseRow.version == case.version)
                        .values(next_due=result)
                    )
                continue
            try:
                result.update_row(conn)  # version-checked; on PostgreSQL the row is ours anyway
            except ConcurrentUpdate:
                report.conflicts += 1
                continue
            applied.append(result)
            report.fired += 1
        # the rest of the batch's writes go in a few statements, in the same transaction
        gone = [task for p in applied for task in p.gone]
        if gone:
            conn.execute(delete(CaseTask).where(CaseTask.id.in_(gone)))
        new_tasks = [task for p in applied for task in p.new_tasks]
        if new_tasks:
            conn.execute(insert(CaseTask), new_tasks)
        events = [e for p in applied for e in p.event_rows]
        if events:
            conn.execute(insert(CaseEvent), events)
        written += events
    if written:
        service._notify(written)
    return report


def _record_failure(conn, case, exc: GovflowError, now: dt.datetime) -> list[dict]:
    log.warning("timer of case %s failed: %s", case.id, exc)
    result = conn.execute(
        update(CaseRow)
        .where(CaseRow.id == case.id, CaseRow.version == case.version)
        .values(next_due=now + RETRY_AFTER, event_seq=case.event_seq + 1, version=case.version + 1)
    )
    if result.rowcount != 1:
        return []
    event = {
        "case_id": case.id,
        "seq": case.event_seq + 1,
        "at": now,
        "kind": "timer.failed",
        "actor": TIMER_ACTOR,
        "actor_unit": None,
        "power": "deadline",
        "data": {"error": exc.message, "retry_at": (now + RETRY_AFTER).isoformat()},
    }
    conn.execute(insert(CaseEvent), event)
    return [event]


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
