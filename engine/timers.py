"""Firing due timers from the database, exactly once, from any number of workers.

A case's earliest pending timer is kept in ``cases.next_due`` (indexed).
:func:`fire_due` runs one batch in ONE transaction:

1. select up to ``batch`` cases with ``next_due <= now``; on PostgreSQL with
   ``FOR UPDATE SKIP LOCKED``, so concurrent workers take disjoint batches and
   never wait on each other;
2. for each case, inside a savepoint, fire its due timers through the command
   path (:meth:`CaseService.fire_timers`: load, advance with the injected clock,
   save state, tasks, events and the new ``next_due``, version-checked);
3. commit the batch, then hand the events to the listeners (notifications).

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
from dataclasses import dataclass

from sqlalchemy import insert, select, update

from .cases import TIMER_ACTOR, CaseService
from .db import CaseEvent, CaseRow
from .errors import ConcurrentUpdate, GovflowError

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
    """Fire one batch of due timers; returns what happened."""
    report = TickReport()
    now = service.clock.now()
    written: list[dict] = []
    with service.db.begin() as conn:
        query = select(CaseRow).where(CaseRow.next_due <= now).order_by(CaseRow.next_due).limit(batch)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = conn.execute(query).all()
        report.due = len(rows)
        for case in rows:
            savepoint = conn.begin_nested()
            try:
                events = service.fire_timers(conn, case)
                savepoint.commit()
            except ConcurrentUpdate:
                savepoint.rollback()
                report.conflicts += 1
                continue
            except GovflowError as exc:
                savepoint.rollback()
                report.failed += 1
                _record_failure(conn, case, exc, now)
                continue
            if events is None:
                report.idle += 1
            else:
                report.fired += 1
                written += events
    if written:
        service._notify(written)
    return report


def _record_failure(conn, case, exc: GovflowError, now: dt.datetime) -> None:
    log.warning("timer of case %s failed: %s", case.id, exc)
    result = conn.execute(
        update(CaseRow).where(CaseRow.id == case.id, CaseRow.version == case.version)
        .values(next_due=now + RETRY_AFTER, event_seq=case.event_seq + 1, version=case.version + 1)
    )
    if result.rowcount == 1:
        conn.execute(insert(CaseEvent), {
            "case_id": case.id, "seq": case.event_seq + 1, "at": now, "kind": "timer.failed", "actor": TIMER_ACTOR,
            "actor_unit": None, "power": "deadline", "data": {"error": exc.message, "retry_at": (now + RETRY_AFTER).isoformat()},
        })


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
