"""Reads: a case as a caller may see it, its timeline, a caller's inbox.

Who may read a case: its reporter, or anyone Casbin allows ``read_case`` in the
case's domain; anyone else is answered as if the case did not exist (404). A
reporter's name and phone are masked unless Casbin allows ``read_pii`` there (a
citizen sees their own report; an integrator that filed a report for a caller
needs ``read_pii`` like everyone else). Every response that shows unmasked data
writes exactly one row to ``personal_data_access``, whoever reads (DOMAIN.md:
every access to personal data is recorded); a response that shows none (masked
data, a timeline, ratings) writes none.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Engine

from govflow.engine.access.identity import Principal
from govflow.engine.cases import duplicates
from govflow.engine.cases.inbox import inbox_query
from govflow.engine.cases.service import CaseService, parse_uuid
from govflow.engine.model.lifecycle import CHINESE
from govflow.engine.store.db import CaseEvent, CaseRow, CaseTask, PersonalDataAccess
from govflow.engine.workflow.bpmn import files_defining


def mask_name(name: str | None) -> str | None:
    if not name:
        return name
    return name[0] + "*" * max(1, len(name) - 1)


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return phone
    digits = phone.strip()
    if len(digits) <= 4:
        return "*" * len(digits)
    return (
        digits[:3] + "*" * max(0, len(digits) - 7) + digits[-4:]
        if len(digits) >= 8
        else "*" * (len(digits) - 2) + digits[-2:]
    )


def routing_of(conn: Any, case_id: Any) -> dict[str, Any] | None:
    """How smart dispatch routed the case (its ``case.routed`` / ``case.unroutable`` event): the
    matter, the owner, how, and the candidates with their probabilities and the evidence."""
    row = conn.execute(
        select(CaseEvent.data)
        .where(CaseEvent.case_id == case_id, CaseEvent.kind.in_(("case.routed", "case.unroutable")))
        .order_by(CaseEvent.seq)
        .limit(1)
    ).first()
    if row is None:
        return None
    keys = ("matter", "street", "owner", "how", "candidates", "evidence", "located", "streets")
    return {k: row.data[k] for k in keys if k in row.data}


class CaseQueries:
    def __init__(self, service: CaseService) -> None:
        self.service = service
        self.db: Engine = service.db

    def _case_for_reader(self, principal: Principal, case_id: str) -> tuple[Any, bool]:
        """The case row and whether the caller sees its personal data; NotFound unless it may read it."""
        cid = parse_uuid(case_id, "case")
        case = self.service.uow.read_row(cid)
        pack = self.service.packs.get(case.pack_name, case.pack_version)
        self.service.require_visible(principal, case, pack)
        return case, self.service.sees_personal_data(principal, case, pack)

    def case(self, principal: Principal, case_id: str) -> dict[str, Any]:
        case, see_pii = self._case_for_reader(principal, case_id)
        with self.db.connect() as conn:
            tasks = conn.execute(
                select(CaseTask).where(CaseTask.case_id == case.id).order_by(CaseTask.created_at)
            ).all()
            routing = routing_of(conn, case.id)
            linked = duplicates.linked_to(conn, case.id) if case.status == duplicates.LINKED else None
            # the reporter of a duplicate follows the main case: its stage, nothing else of it
            main_status = (
                conn.execute(select(CaseRow.status).where(CaseRow.id == parse_uuid(linked, "case"))).scalar()
                if linked
                else None
            )
            copies = duplicates.linked_cases(conn, case) if case.closed_at is None else []
        pii_present = [f for f in ("reporter_name", "reporter_phone") if getattr(case, f)]
        if see_pii and pii_present:  # one row per response that shows unmasked data, whoever reads
            with self.db.begin() as conn:
                conn.execute(
                    insert(PersonalDataAccess),
                    {
                        "case_id": case.id,
                        "principal_id": principal.id,
                        "at": self.service.clock.now(),
                        "fields": pii_present,
                    },
                )
        reporter = {
            "name": case.reporter_name if see_pii else mask_name(case.reporter_name),
            "phone": case.reporter_phone if see_pii else mask_phone(case.reporter_phone),
            "masked": not see_pii,
        }
        deadlines = [t.due_at for t in tasks if t.due_at is not None]
        return {
            "id": str(case.id),
            "status": case.status,
            "status_name": CHINESE.get(case.status, case.status),
            "district": case.district,
            "owner_unit": case.owner_unit,
            "category": case.matter,
            "channel": case.channel,
            "description": case.description,
            "location": {"lat": case.lat, "lng": case.lng, "address": case.address},
            "reporter": reporter,
            "reported_by": case.reported_by,
            "pack": {"name": case.pack_name, "version": case.pack_version},
            "open_tasks": [task_view(t) for t in tasks],
            "next_deadline": min(deadlines) if deadlines else None,
            "overdue_since": case.overdue_since,
            "escalated_to": case.escalated_to,
            "routing": routing,
            "linked_to": linked,
            "linked_to_status": main_status,
            "duplicates": copies,
            "created_at": case.created_at,
            "updated_at": case.updated_at,
            "closed_at": case.closed_at,
            "version": case.version,
        }

    def events(self, principal: Principal, case_id: str) -> list[dict[str, Any]]:
        case, _ = self._case_for_reader(principal, case_id)
        with self.db.connect() as conn:
            rows = conn.execute(select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.seq)).all()
        return [
            {
                "seq": r.seq,
                "at": r.at,
                "kind": r.kind,
                "actor": r.actor,
                "actor_unit": r.actor_unit,
                "power": r.power,
                "data": r.data,
            }
            for r in rows
        ]

    def diagram(self, principal: Principal, case_id: str) -> dict[str, Any]:
        """The case on its diagram: the diagrams of the version it runs on (its process's file
        first, then those of the processes it calls) and where it stands, by element id
        (``completed``, ``open`` user tasks, ``waiting`` sub-processes and events,
        ``cancelled``). Readable by whoever may read the case."""
        case, _ = self._case_for_reader(principal, case_id)
        pack = self.service.packs.get(case.pack_name, case.pack_version)
        workflow = pack.runtime.load(case.state, case.process_id)
        called = pack.diagrams.subprocess_specs.get(case.process_id, {})
        paths = files_defining(pack.files, [case.process_id, *called])
        return {
            "case_id": str(case.id),
            "pack": {"name": case.pack_name, "version": case.pack_version},
            "process": case.process_id,
            "diagrams": [{"path": path, "xml": pack.files[path].decode("utf-8")} for path in paths],
            "elements": pack.runtime.element_states(workflow),
        }

    def inbox(self, principal: Principal, *, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Open tasks for the caller: their unit's tasks for their roles, and tasks assigned to them."""
        query = inbox_query(principal, limit=limit, offset=offset)  # each part read in order from an index
        with self.db.connect() as conn:
            rows = conn.execute(query).all()
            unsure = list({r.case_id for r in rows if r.matter is None})
            weighed: dict[Any, list[Any]] = {}
            if unsure:  # the command centre dispatches by hand: the candidates smart dispatch weighed
                for e in conn.execute(
                    select(CaseEvent.case_id, CaseEvent.data).where(
                        CaseEvent.case_id.in_(unsure), CaseEvent.kind == "case.unroutable"
                    )
                ):
                    weighed.setdefault(e.case_id, list(e.data.get("candidates") or []))
        return [
            {
                **task_view(r),
                "case_status": r.case_status,
                "category": r.matter,
                "owner_unit": r.owner_unit,
                "candidates": weighed.get(r.case_id, []),
            }
            for r in rows
        ]


def task_view(task: Any) -> dict[str, Any]:
    return {
        "id": str(task.id),
        "case_id": str(task.case_id),
        "name": task.name,
        "title": task.title,
        "stage": task.stage,
        "action": task.action,
        "unit": task.unit_code,
        "role": task.role,
        "assignee": task.assignee_user,
        "due_at": task.due_at,
        "created_at": task.created_at,
    }


__all__ = ["CaseQueries", "mask_name", "mask_phone", "task_view"]
