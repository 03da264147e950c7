"""Incidents (Camunda's model): a failure while the engine itself ran a case, kept open until retried.

When a timer or worker run fails on one case — its state does not restore, its diagram code fails
or hits a limit, its row cannot be saved — the failure is isolated to that case (a savepoint), the
case keeps its last good state, and an **incident** is opened (element, error, time, attempts). The
case is tried again after a back-off that doubles with each attempt (at most a day); an operator
lists incidents and retries one after fixing the cause (e.g. migrating the case to a fixed pack
version): ``GET /api/v1/incidents``, ``POST /api/v1/incidents/{id}/retry``, ``govflow incidents``.

The incident row is its own table; what happens to it is also on the case's record
(``incident.opened``, ``timer.failed``, ``incident.resolved``), planned with :func:`plan_event` and
written by the unit of work's :class:`Change` in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from govflow.engine.access.identity import Principal
from govflow.engine.cases.unit_of_work import CaseSnapshot, Change, Event, UnitOfWork, plan_event, write_rows
from govflow.engine.model.clock import iso
from govflow.engine.model.errors import GovflowError, InvalidTransition, NotFound
from govflow.engine.store.db import Incident

log = logging.getLogger("govflow.incidents")

RETRY_AFTER = dt.timedelta(minutes=5)
MAX_BACKOFF = dt.timedelta(days=1)
SYSTEM_ACTOR = "system.timer"
ERROR_MAX = 1000


@dataclass(frozen=True)
class IncidentView:
    id: int
    case_id: str
    district: str
    source: str
    element: str | None
    error: str
    status: str
    attempts: int
    opened_at: dt.datetime
    failed_at: dt.datetime
    retry_at: dt.datetime | None
    resolved_at: dt.datetime | None
    resolved_by: str | None

    def case_id_uuid(self) -> uuid.UUID:
        return uuid.UUID(self.case_id)

    @classmethod
    def of(cls, row: Any) -> IncidentView:
        return cls(
            row.id,
            str(row.case_id),
            row.district,
            row.source,
            row.element,
            row.error,
            row.status,
            row.attempts,
            row.opened_at,
            row.failed_at,
            row.retry_at,
            row.resolved_at,
            row.resolved_by,
        )


def backoff(attempts: int) -> dt.timedelta:
    """Five minutes after the first failure, doubling with each attempt, at most a day."""
    return min(RETRY_AFTER * 2 ** max(attempts - 1, 0), MAX_BACKOFF)


def describe(exc: BaseException) -> tuple[str | None, str]:
    """The element (if the error names one) and the error text of a failure."""
    if isinstance(exc, GovflowError):
        return exc.context.get("element"), exc.message[:ERROR_MAX]
    return None, f"{type(exc).__name__}: {exc}"[:ERROR_MAX]


def open_incident(conn: Connection, case_id: Any) -> Any:
    return conn.execute(select(Incident).where(Incident.case_id == case_id, Incident.status == "open")).first()


def _system(district: str) -> Principal:
    return Principal(SYSTEM_ACTOR, "timer", "system", district, None, ())


def _commit_in(uow: UnitOfWork, conn: Connection, change: Change) -> Change:
    change.write_row(conn)
    write_rows(conn, [change])
    uow.project(conn, [change])
    return change


def record_failure(
    uow: UnitOfWork, conn: Connection, snapshot: CaseSnapshot, exc: BaseException, now: dt.datetime, source: str
) -> Change:
    """Open (or count another attempt on) the case's incident and put the failure on its record,
    with a back-off on ``next_due``; nothing else of the case changes."""
    case = snapshot.row
    element, error = describe(exc)
    existing = open_incident(conn, case.id)
    attempts = existing.attempts + 1 if existing else 1
    retry_at = now + backoff(attempts)
    events = []
    if existing is None:
        incident_id = conn.execute(
            insert(Incident).returning(Incident.id),
            {
                "case_id": case.id,
                "district": case.district,
                "source": source,
                "element": element,
                "error": error,
                "status": "open",
                "attempts": 1,
                "opened_at": now,
                "failed_at": now,
                "retry_at": retry_at,
            },
        ).scalar_one()
        events.append(Event("incident.opened", {"incident": incident_id, "element": element, "error": error}))
    else:
        incident_id = existing.id
        conn.execute(
            update(Incident)
            .where(Incident.id == incident_id)
            .values(attempts=attempts, element=element, error=error, failed_at=now, retry_at=retry_at)
        )
    log.warning("%s run of case %s failed (incident %s, attempt %s): %s", source, case.id, incident_id, attempts, error)
    events.insert(
        0,
        Event(
            "timer.failed",
            {
                "error": error,
                "element": element,
                "incident": incident_id,
                "attempts": attempts,
                "retry_at": iso(retry_at),
            },
        ),
    )
    change = plan_event(
        snapshot,
        actor=_system(case.district),
        power="deadline",
        now=now,
        events=events,
        values={"next_due": retry_at},
    )
    return _commit_in(uow, conn, change)


def resolve(
    uow: UnitOfWork, conn: Connection, snapshot: CaseSnapshot, after: Change | None, now: dt.datetime, by: str
) -> Change | None:
    """Close the case's open incident (if any) once a run of the case succeeded."""
    incident = open_incident(conn, snapshot.id)
    if incident is None:
        return None
    conn.execute(
        update(Incident).where(Incident.id == incident.id).values(status="resolved", resolved_at=now, resolved_by=by)
    )
    row = snapshot.row
    if after is not None:  # the case as the successful run left it
        row = SimpleNamespace(
            id=row.id,
            district=row.district,
            status=after.values.get("status", row.status),
            event_seq=after.values["event_seq"],
            version=after.values["version"],
        )
    change = plan_event(
        CaseSnapshot(row, snapshot.pack, snapshot.open_tasks),
        actor=_system(row.district) if by == SYSTEM_ACTOR else Principal(by, by, "system", row.district, None, ()),
        power="incident:retry",
        now=now,
        events=[Event("incident.resolved", {"incident": incident.id, "attempts": incident.attempts, "by": by})],
    )
    return _commit_in(uow, conn, change)


def list_incidents(
    db: Any, *, status: str | None = "open", district: str | None = None, limit: int = 100, offset: int = 0
) -> list[IncidentView]:
    query = select(Incident).order_by(Incident.id)
    if status:
        query = query.where(Incident.status == status)
    if district:
        query = query.where(Incident.district == district)
    with db.connect() as conn:
        return [IncidentView.of(r) for r in conn.execute(query.limit(limit).offset(offset))]


def count_open(db: Any) -> dict[str, int]:
    """Open incidents per district (the metrics' gauge)."""
    with db.connect() as conn:
        rows = conn.execute(
            select(Incident.district, func.count()).where(Incident.status == "open").group_by(Incident.district)
        ).all()
    return {district: count for district, count in rows}


def get_incident(db: Any, incident_id: int) -> IncidentView:
    with db.connect() as conn:
        row = conn.execute(select(Incident).where(Incident.id == incident_id)).first()
    if row is None:
        raise NotFound("no such incident", incident=incident_id)
    return IncidentView.of(row)


def require_open(view: IncidentView) -> None:
    if view.status != "open":
        raise InvalidTransition("the incident is already resolved", incident=view.id)


__all__ = [
    "IncidentView",
    "backoff",
    "count_open",
    "get_incident",
    "list_incidents",
    "record_failure",
    "resolve",
]
