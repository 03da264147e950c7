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

A case whose timer fails in any way (a state that does not restore, a broken diagram or plugin,
a limit, a failed write) is rolled back to its savepoint and gets an open incident
(:mod:`.incidents`), ``timer.failed`` on its record and a growing back-off on ``next_due``, so it
neither blocks the batch nor spins; :func:`retry_incident` runs it again on an operator's word.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from govflow.engine.cases import incidents
from govflow.engine.cases.service import TIMER_ACTOR, CaseService
from govflow.engine.cases.unit_of_work import CaseSnapshot, Change, refresh_next_due, write_group, write_rows
from govflow.engine.model.errors import ConcurrentUpdate, DiagramFailed
from govflow.engine.store.db import CaseRow, CaseTask, Incident

log = logging.getLogger("govflow.timers")

RETRY_AFTER = incidents.RETRY_AFTER


@dataclass
class TickReport:
    due: int = 0
    fired: int = 0
    idle: int = 0
    conflicts: int = 0
    failed: int = 0


def fire_due(service: CaseService, *, batch: int = 200) -> TickReport:
    """Fire one batch of due timers in one transaction; returns what happened.

    The batch's cases are decided in memory first; those that ran are written together (one
    savepoint, row updates batched, one call of the projectors). Whatever fails — a case's
    diagram or state, or the group's write — falls back to the case-by-case path: each case in its
    own savepoint, so one case's failure rolls back that case only, opens an incident on it with a
    back-off, and the batch goes on. Cases with an open incident always take that path (their
    incident is resolved with them). (On SQLite, whose driver starts the transaction at the first
    savepoint, each savepoint then commits on its own; exactly once holds either way.)
    """
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
        ids = [r.id for r in rows]
        open_tasks: dict[Any, dict[Any, Any]] = defaultdict(dict)
        for task in conn.execute(select(CaseTask).where(CaseTask.case_id.in_(ids))):
            open_tasks[task.case_id][task.id] = task
        with_incident = set(
            conn.execute(select(Incident.case_id).where(Incident.case_id.in_(ids), Incident.status == "open")).scalars()
        )
        alone = [case for case in rows if case.id in with_incident]
        fired: list[Change] = []
        idle: list[tuple[Any, Any]] = []
        for case in rows:
            if case.id in with_incident:
                continue
            try:
                snapshot = uow.snapshot(case, open_tasks[case.id])
                change = service.decide_timers(snapshot)
                if change is None:
                    idle.append((case, service.next_due(snapshot)))
                else:
                    fired.append(change)
            except Exception:  # the case-by-case path runs it again and records the failure
                alone.append(case)
        try:
            with conn.begin_nested():
                if fired:
                    write_group(conn, fired)
                    uow.project(conn, fired)
                for case, next_due in idle:
                    if next_due != case.next_due:
                        refresh_next_due(conn, case, next_due)
        except Exception:
            log.info("writing a batch of %d timers together failed; case by case instead", len(fired), exc_info=True)
            grouped = {c.case_id for c in fired} | {case.id for case, _ in idle}
            alone += [case for case in rows if case.id in grouped]
        else:
            report.fired += len(fired)
            report.idle += len(idle)
            applied += fired
        for case in alone:
            try:
                with conn.begin_nested():
                    changes = fire_case(service, conn, case, open_tasks[case.id], now)
            except ConcurrentUpdate:
                report.conflicts += 1
                continue
            except Exception as exc:
                report.failed += 1
                failed = _failure(service, conn, case, open_tasks[case.id], exc, now)
                applied += [failed] if failed is not None else []
                continue
            if not changes or changes[0].events[0]["kind"] == "incident.resolved":
                report.idle += 1
            else:
                report.fired += 1
            applied += changes
    for change in applied:
        change.keep_workflow()
    uow.notify([e for change in applied for e in change.events])
    return report


def fire_case(
    service: CaseService, conn: Any, case: Any, open_tasks: Any, now: dt.datetime, by: str = TIMER_ACTOR
) -> list[Change]:
    """Fire the due timers of one case read under lock, write it (version-checked), and resolve its
    open incident, if any; the caller holds the transaction (a savepoint per case)."""
    uow = service.uow
    snapshot = uow.snapshot(case, open_tasks)
    change = service.decide_timers(snapshot)
    changes = []
    if change is None:  # nothing was due after all: refresh next_due only
        next_due = service.next_due(snapshot)
        if next_due != case.next_due:
            refresh_next_due(conn, case, next_due)
    else:
        change.write_row(conn)  # version-checked; on PostgreSQL the row is ours anyway
        write_rows(conn, [change])
        uow.project(conn, [change])
        changes.append(change)
    resolved = incidents.resolve(uow, conn, snapshot, change, now, by)
    return changes + ([resolved] if resolved is not None else [])


def _failure(
    service: CaseService, conn: Any, case: Any, open_tasks: Any, exc: BaseException, now: dt.datetime
) -> Change | None:
    """A failed timer: an incident, on the record, tried again after a back-off (it never blocks the batch)."""
    try:
        with conn.begin_nested():
            snapshot = CaseSnapshot(case, _pack_or_none(service, case), open_tasks)
            return incidents.record_failure(service.uow, conn, snapshot, exc, now, "timer")
    except Exception:  # even recording failed (the row moved meanwhile): the next tick sees it again
        log.exception("recording the failed timer of case %s failed", case.id)
        return None


def _pack_or_none(service: CaseService, case: Any) -> Any:
    try:
        return service.uow.pack_of(case.pack_name, case.pack_version)
    except Exception:  # a pack version that no longer loads: the failure is recorded all the same
        return None


def retry_incident(service: CaseService, incident_id: int, *, actor: str) -> incidents.IncidentView:
    """Run the case of an open incident again now (after the cause was fixed).

    Success resolves the incident (``incident.resolved`` on the record); another failure counts an
    attempt and is raised (409, naming the element), the incident staying open.
    """
    uow = service.uow
    now = service.clock.now()
    view = incidents.get_incident(uow.db, incident_id)
    incidents.require_open(view)
    failure: BaseException | None = None
    applied: list[Change] = []
    with uow.db.begin() as conn:
        query = select(CaseRow).where(CaseRow.id == view.case_id_uuid())
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        case = conn.execute(query).one()
        tasks = {t.id: t for t in conn.execute(select(CaseTask).where(CaseTask.case_id == case.id))}
        try:
            with conn.begin_nested():
                applied = fire_case(service, conn, case, tasks, now, actor)
                if not any(c.events and c.events[0]["kind"] == "incident.resolved" for c in applied):
                    raise ConcurrentUpdate("the incident changed meanwhile", incident=incident_id)
        except ConcurrentUpdate:
            raise
        except Exception as exc:
            failure = exc
            failed = _failure(service, conn, case, tasks, exc, now)
            applied = [failed] if failed is not None else []
    uow.notify([e for change in applied for e in change.events])
    if failure is not None:
        element, error = incidents.describe(failure)
        raise DiagramFailed(f"the retry failed: {error}", incident=incident_id, case=view.case_id, element=element)
    return incidents.get_incident(uow.db, incident_id)


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
