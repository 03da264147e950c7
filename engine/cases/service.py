"""The one command path for cases.

Every change to a case — report, complete a task, withdraw, timer tick — runs:

    load (case row + version)  →  authorize (Casbin, in the engine, not in routes)
    →  apply with the sandboxed script engine and the injected clock
    →  refresh timers + engine steps
    →  save state, open tasks, events and next_due in ONE transaction,
       guarded by the row's optimistic-lock version.

A write that lost the race is refused with :class:`ConcurrentUpdate` (nothing
written); the caller retries on fresh state. Events are appended in the same
transaction as the change they record, and listeners (notifications) hear of
them only after the commit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from govflow.engine.access.identity import Principal
from govflow.engine.model.catalog import ROLE_FOR_KIND
from govflow.engine.model.clock import Clock
from govflow.engine.model.dispatch import Dispatcher, Report
from govflow.engine.model.errors import (
    ConcurrentUpdate,
    IdempotencyMismatch,
    InvalidInput,
    InvalidTransition,
    NotFound,
    PermissionDenied,
)
from govflow.engine.model.lifecycle import Stage, furthest
from govflow.engine.packs.loader import LoadedPack
from govflow.engine.packs.registry import PackRegistry
from govflow.engine.store.db import CaseEvent, CaseRow, CaseTask, IdempotencyKey, Rating
from govflow.engine.workflow.runtime import Record

CHANNELS = ("hotline_12345", "wechat", "app", "weibo", "grid_worker", "sensor", "web", "walk_in")


@dataclass(frozen=True)
class NewCase:
    """A report as it arrives from any channel."""

    channel: str
    description: str
    category: str | None = None
    lat: float | None = None
    lng: float | None = None
    address: str | None = None
    reporter_name: str | None = None
    reporter_phone: str | None = None
    district: str | None = None

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.__dict__, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


@dataclass
class Event:
    kind: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    """What a command did: the case id, its new status and the events it appended."""

    case_id: uuid.UUID
    status: str
    version: int
    events: list[dict[str, Any]]
    replayed: bool = False


@dataclass
class Pending:
    """A command's result, computed and ready to write (one version-checked row update)."""

    case_id: uuid.UUID
    version: int
    values: dict[str, Any]
    gone: list[uuid.UUID]
    new_tasks: list[dict[str, Any]]
    event_rows: list[dict[str, Any]]
    outcome: Outcome

    def update_row(self, conn: Connection) -> None:
        result = conn.execute(
            update(CaseRow).where(CaseRow.id == self.case_id, CaseRow.version == self.version).values(**self.values)
        )
        if result.rowcount != 1:
            raise ConcurrentUpdate(
                "the case changed since it was read; nothing was written, retry on fresh state", case=str(self.case_id)
            )

    def write(self, conn: Connection) -> None:
        self.update_row(conn)
        if self.gone:
            conn.execute(delete(CaseTask).where(CaseTask.id.in_(self.gone)))
        if self.new_tasks:
            conn.execute(insert(CaseTask), self.new_tasks)
        conn.execute(insert(CaseEvent), self.event_rows)


Listener = Callable[[Sequence[dict[str, Any]]], None]


def parse_uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except (ValueError, AttributeError, TypeError):
        raise NotFound(f"no such {what}", id=str(value)[:64]) from None


class CaseService:
    """Commands on cases. One instance per process; safe to share between threads."""

    def __init__(
        self,
        *,
        db: Engine,
        packs: PackRegistry,
        dispatcher: Dispatcher,
        clock: Clock,
        listeners: Sequence[Listener] = (),
    ) -> None:
        self.db = db
        self.packs = packs
        self.dispatcher = dispatcher
        self.clock = clock
        self.listeners = list(listeners)

    # -- authorization ---------------------------------------------------------
    def authorize(self, principal: Principal, pack: LoadedPack, unit: str | None, action: str) -> str:
        """Casbin decides; returns the power (role@domain policy) that allowed it, for the record."""
        domain = pack.catalog.domain_of(unit)
        authz = self.packs.authorizer(pack, principal)
        if not authz.allowed(principal.id, domain, action):
            roles = ", ".join(principal.roles) or "no role"
            raise PermissionDenied(
                f"{principal.id} ({roles}) may not {action} in {domain}",
                principal=principal.id,
                action=action,
                domain=domain,
            )
        role, dom, act = authz.explain(principal.id, domain, action) or ("?", domain, action)
        return f"{role}@{dom}:{act}"

    # -- report ------------------------------------------------------------------
    def report(self, principal: Principal, new: NewCase, *, idempotency_key: str | None = None) -> Outcome:
        """Create a case from a report, dispatch it and open its first task (上报 → 分发)."""
        _check_new_case(new)
        if idempotency_key is not None:
            replay = self._replay(principal, idempotency_key, new)
            if replay is not None:
                return replay
        pack = self.packs.active(new.district or principal.district)
        if new.category is not None and new.category not in pack.catalog.matters:
            raise InvalidInput(
                f"unknown category {new.category!r}",
                errors=[{"loc": ["category"], "msg": "not a matter code of the catalog"}],
            )
        routing = self.dispatcher.dispatch(
            pack, Report(new.description, new.category, new.lat, new.lng, new.address, new.channel)
        )
        owner = routing.owner or pack.catalog.command_centre
        power = self.authorize(principal, pack, owner, "report")
        now = self.clock.now()
        case_id = uuid.uuid4()
        runtime = pack.runtime
        records: list[Record] = []
        workflow = runtime.start(
            pack.manifest.process,
            {
                "case_id": str(case_id),
                "district": pack.catalog.district,
                "owner_unit": routing.owner,
                "matter": routing.matter,
                "tier": _tier(pack, routing.matter),
                "review_approved": None,
            },
            self.clock,
            records,
        )
        row = {
            "id": case_id,
            "district": pack.catalog.district,
            "pack_name": pack.manifest.name,
            "pack_version": pack.manifest.version,
            "process_id": pack.manifest.process,
            "owner_unit": owner,
            "matter": routing.matter,
            "channel": new.channel,
            "description": new.description,
            "lat": new.lat,
            "lng": new.lng,
            "address": new.address,
            "reporter_name": new.reporter_name,
            "reporter_phone": new.reporter_phone,
            "reported_by": principal.id,
            "created_at": now,
            "updated_at": now,
            "closed_at": None,
            "version": 1,
            "overdue_since": None,
            "escalated_to": None,
        }
        events = [
            Event(
                "case.reported",
                {
                    "channel": new.channel,
                    "category": new.category,
                    "has_location": new.lat is not None,
                    "pack": f"{pack.manifest.name} {pack.manifest.version}",
                },
            ),
            Event(
                "case.routed" if routing.owner else "case.unroutable",
                {"matter": routing.matter, "street": routing.street, "owner": owner, "how": routing.how},
            ),
        ]
        events += self._record_events(pack, records, row, now)
        tasks, status = self._open_tasks(pack, workflow, row, now)
        events += [_opened(t) for t in tasks]
        events.append(Event("case.stage", {"stage": status}))
        row.update(
            status=status, state=runtime.dump(workflow), next_due=runtime.next_due(workflow), event_seq=len(events)
        )
        event_rows = self._event_rows(case_id, 0, now, principal, power, events)
        try:
            with self.db.begin() as conn:
                conn.execute(insert(CaseRow), row)
                if tasks:
                    conn.execute(insert(CaseTask), tasks)
                conn.execute(insert(CaseEvent), event_rows)
                if idempotency_key is not None:
                    conn.execute(
                        insert(IdempotencyKey),
                        {
                            "principal_id": principal.id,
                            "key": idempotency_key,
                            "request_hash": new.fingerprint(),
                            "case_id": case_id,
                            "created_at": now,
                        },
                    )
        except IntegrityError:
            if idempotency_key is None:
                raise
            replay = self._replay(principal, idempotency_key, new)  # a concurrent retry won the race
            if replay is None:
                raise
            return replay
        self._notify(event_rows)
        return Outcome(case_id, status, 1, event_rows)

    def _replay(self, principal: Principal, key: str, new: NewCase) -> Outcome | None:
        with self.db.connect() as conn:
            hit = conn.execute(
                select(IdempotencyKey.request_hash, IdempotencyKey.case_id).where(
                    IdempotencyKey.principal_id == principal.id, IdempotencyKey.key == key
                )
            ).first()
            if hit is None:
                return None
            if hit.request_hash != new.fingerprint():
                raise IdempotencyMismatch("this Idempotency-Key was used for a different report", key=key)
            case = conn.execute(select(CaseRow.status, CaseRow.version).where(CaseRow.id == hit.case_id)).one()
        return Outcome(hit.case_id, case.status, case.version, [], replayed=True)

    # -- tasks ---------------------------------------------------------------------
    def complete_task(
        self, principal: Principal, task_id: str, data: Mapping[str, Any] | None, *, expected_version: int | None = None
    ) -> Outcome:
        """Complete an open user task with its form data (签收, 处置, 审核, 评价, 分拨 …)."""
        tid = parse_uuid(task_id, "task")
        with self.db.connect() as conn:
            task = conn.execute(select(CaseTask).where(CaseTask.id == tid)).first()
        if task is None:
            raise NotFound("no such open task", task=task_id)
        case = self._load(task.case_id)
        if expected_version is not None and expected_version != case.version:
            raise ConcurrentUpdate(f"the case is at version {case.version}, not {expected_version}", case=str(case.id))
        pack = self.packs.get(case.pack_name, case.pack_version)
        self._check_assignment(principal, task)
        # a unit acts in its own domain: the owner street, a called department, the command centre
        power = self.authorize(principal, pack, task.unit_code or case.owner_unit, task.action)
        runtime = pack.runtime
        workflow = runtime.load(case.state, case.process_id)
        spiff_task = runtime.find_task(workflow, task_id)
        info = pack.diagrams.user_tasks[spiff_task.task_spec.bpmn_id]
        values = pack.forms[task.action].validate(data, pack.catalog, task=task_id, context=spiff_task.data)
        if info.form_variable:  # e.g. each report-in instance's answer as one dict
            values = {info.form_variable: values}
        changes: dict[str, Any] = {}
        if "owner_unit" in values:  # dispatch / supervision decides who owns the case
            changes["owner_unit"] = values["owner_unit"]
        if values.get("matter"):
            changes["matter"] = values["matter"]
            values["tier"] = _tier(pack, values["matter"])
        records: list[Record] = []
        runtime.complete(workflow, task_id, values, self.clock, records)
        events = [Event("task.completed", {"task": task.name, "action": task.action, "form": data or {}})]
        if changes:
            events.append(
                Event(
                    "case.dispatched",
                    {"owner": changes.get("owner_unit", case.owner_unit), "matter": changes.get("matter", case.matter)},
                )
            )
        after_write = None
        if task.action == "evaluate" and "satisfaction" in values:  # the citizen's direction of 评价
            rating = {
                "case_id": case.id,
                "direction": "citizen_to_case",
                "rater_party": principal.id,
                "rater": principal.id,
                "target": case.owner_unit,
                "dimension": "satisfaction",
                "score": values["satisfaction"],
                "comment": values.get("comment"),
                "at": self.clock.now(),
            }

            def after_write(conn: Connection) -> None:
                conn.execute(insert(Rating), rating)

        return self._save(principal, power, pack, case, workflow, events, changes, records, after_write=after_write)

    def withdraw(self, principal: Principal, case_id: str, reason: str) -> Outcome:
        """The reporter withdraws the case before the result is submitted (撤回)."""
        if not reason or len(reason) > 1000:
            raise InvalidInput(
                "a reason of 1 to 1000 characters is required",
                errors=[{"loc": ["reason"], "msg": "required, at most 1000 characters"}],
            )
        case = self._load(parse_uuid(case_id, "case"))
        pack = self.packs.get(case.pack_name, case.pack_version)
        if case.reported_by != principal.id:
            raise PermissionDenied("only the reporter of a case may withdraw it", case=case_id, principal=principal.id)
        power = self.authorize(principal, pack, case.owner_unit, "withdraw")
        if case.closed_at is not None:
            raise InvalidTransition("the case is already closed", case=case_id)
        runtime = pack.runtime
        workflow = runtime.load(case.state, case.process_id)
        records: list[Record] = []
        try:
            runtime.send_signal(workflow, "withdrawn", {"reason": reason}, self.clock, records)
        except InvalidTransition:
            raise InvalidTransition(
                "the case can no longer be withdrawn: its result has been submitted", case=case_id, status=case.status
            ) from None
        return self._save(
            principal, power, pack, case, workflow, [Event("case.withdrawn", {"reason": reason})], {}, records
        )

    def append_event(
        self, conn: Connection, case_id: uuid.UUID, principal: Principal, power: str, kind: str, data: dict[str, Any]
    ) -> dict[str, Any]:
        """Append one event that changes no workflow state (a rating, a contribution).

        The case's version moves too, so a command that read the case before
        this event is refused with ConcurrentUpdate instead of colliding on the
        event sequence.
        """
        seq = conn.execute(
            update(CaseRow)
            .where(CaseRow.id == case_id)
            .values(event_seq=CaseRow.event_seq + 1, version=CaseRow.version + 1)
            .returning(CaseRow.event_seq)
        ).scalar_one()
        row = {
            "case_id": case_id,
            "seq": seq,
            "at": self.clock.now(),
            "kind": kind,
            "actor": principal.id,
            "actor_unit": principal.unit,
            "power": power,
            "data": data,
        }
        conn.execute(insert(CaseEvent), row)
        return row

    # -- internals -------------------------------------------------------------------
    def _load(self, case_id: uuid.UUID) -> Any:
        with self.db.connect() as conn:
            case = conn.execute(select(CaseRow).where(CaseRow.id == case_id)).first()
        if case is None:
            raise NotFound("no such case", case=str(case_id))
        return case

    @staticmethod
    def _check_assignment(principal: Principal, task: Any) -> None:
        if task.assignee_user is not None:
            if task.assignee_user != principal.id:
                raise PermissionDenied(
                    "this task belongs to the case's reporter", task=str(task.id), principal=principal.id
                )
            return
        if principal.unit != task.unit_code or (task.role and task.role not in principal.roles):
            raise PermissionDenied(
                f"this task is assigned to {task.role or 'staff'} of {task.unit_code}; {principal.id} is not",
                task=str(task.id),
                principal=principal.id,
            )

    def _open_tasks(
        self, pack: LoadedPack, workflow: Any, case: Mapping[str, Any], now: dt.datetime
    ) -> tuple[list[dict[str, Any]], str]:
        rows: list[dict[str, Any]] = []
        stages: list[str] = []
        for task in pack.runtime.open_tasks(workflow):
            info = pack.diagrams.user_tasks[task.task_spec.bpmn_id]  # MI children share their activity's id
            unit, user = None, None
            if info.assignee == "reporter":
                user = case["reported_by"]
            elif info.assignee == "command_centre":
                unit = pack.catalog.command_centre
            elif info.assignee == "called":
                unit = (task.data.get("department") or {}).get("unit")
            elif info.assignee == "main_department":
                unit = next(
                    (d["unit"] for d in (task.data.get("called") or {}).values() if d.get("role") == "main"), None
                )
            else:
                unit = case["owner_unit"]
            role = (
                None
                if user
                else ROLE_FOR_KIND[pack.catalog.units[unit].kind if unit in pack.catalog.units else "street"]
            )
            rows.append(
                {
                    "id": task.id,
                    "case_id": case["id"],
                    "name": info.name,
                    "title": info.title,
                    "stage": info.stage,
                    "action": info.action,
                    "unit_code": unit,
                    "role": role,
                    "assignee_user": user,
                    "due_at": pack.runtime.task_deadline(task),
                    "created_at": now,
                }
            )
            stages.append(info.stage)
        status = furthest(stages)
        if status is None:
            status = (
                Stage.EVALUATED.value
                if not workflow.get_tasks(spec_name="case_withdrawn", state=TaskState.COMPLETED)
                else Stage.WITHDRAWN.value
            )
        return rows, status

    def _save(
        self,
        principal: Principal,
        power: str,
        pack: LoadedPack,
        case: Any,
        workflow: Any,
        events: list[Event],
        changes: dict[str, Any],
        records: list[Record],
        *,
        after_write: Callable[[Connection], None] | None = None,
    ) -> Outcome:
        """Write a command's result in one transaction, then notify listeners.

        ``after_write`` adds the command's own rows (e.g. the parties of a call-out)
        to the same transaction.
        """
        with self.db.connect() as read:
            open_before = {
                r.id: r.name
                for r in read.execute(select(CaseTask.id, CaseTask.name).where(CaseTask.case_id == case.id))
            }
        pending = self._prepare(principal, power, pack, case, workflow, events, changes, records, open_before)
        with self.db.begin() as conn:
            pending.write(conn)
            if after_write is not None:
                after_write(conn)
        self._notify(pending.event_rows)
        return pending.outcome

    def _prepare(
        self,
        principal: Principal,
        power: str,
        pack: LoadedPack,
        case: Any,
        workflow: Any,
        events: list[Event],
        changes: dict[str, Any],
        records: list[Record],
        open_before: Mapping[uuid.UUID, str],
    ) -> Pending:
        """Everything a command will write: the case row's new values, task changes, events."""
        now = self.clock.now()
        runtime = pack.runtime
        current = {**case._mapping, **changes}
        events += self._record_events(pack, records, current, now)
        if any(r.kind in OVERDUE_KINDS for r in records):
            changes.setdefault("overdue_since", case.overdue_since or now)
        if any(r.data.get("escalate_to") for r in records):
            changes["escalated_to"] = current["escalated_to"]
        tasks, status = self._open_tasks(pack, workflow, current, now)
        for event in events:
            if event.kind == "callout.no_response":  # who has not reported in: counted as not responding
                event.data["departments"] = sorted(t["unit_code"] for t in tasks if t["action"] == "report_in")
        new_tasks = [t for t in tasks if t["id"] not in open_before]
        gone = [tid for tid in open_before if tid not in {t["id"] for t in tasks}]
        completed = {e.data.get("task") for e in events if e.kind == "task.completed"}
        events += [
            Event("task.cancelled", {"task": open_before[tid]}) for tid in gone if open_before[tid] not in completed
        ]
        events += [_opened(t) for t in new_tasks]
        if status != case.status:
            events.append(Event("case.stage", {"stage": status, "from": case.status}))
        closed = workflow.completed
        if closed and case.closed_at is None:
            events.append(Event("case.closed", {"stage": status}))
        event_rows = self._event_rows(case.id, case.event_seq, now, principal, power, events)
        values = {
            **changes,
            "status": status,
            "state": runtime.dump(workflow),
            "next_due": runtime.next_due(workflow),
            "event_seq": case.event_seq + len(event_rows),
            "version": case.version + 1,
            "updated_at": now,
            "closed_at": case.closed_at or (now if closed else None),
        }
        return Pending(
            case.id,
            case.version,
            values,
            gone,
            new_tasks,
            event_rows,
            Outcome(case.id, status, case.version + 1, event_rows),
        )

    # -- timers ----------------------------------------------------------------------
    def prepare_timers(self, case: Any, open_before: Mapping[uuid.UUID, str]) -> Pending | dt.datetime | None:
        """Fire the due timers of ``case`` (a row read under lock) in memory.

        Returns what to write, or — when no timer was due after all — the case's
        recomputed ``next_due`` (the worker refreshes it). Used by :mod:`.timers`.
        """
        pack = self.packs.get(case.pack_name, case.pack_version)
        runtime = pack.runtime
        workflow = runtime.load(case.state, case.process_id)
        records: list[Record] = []
        runtime.advance(workflow, self.clock, records)
        if not records:
            return runtime.next_due(workflow)
        timer = Principal(TIMER_ACTOR, "timer", "system", case.district, None, ())
        return self._prepare(timer, "deadline", pack, case, workflow, [], {}, records, open_before)

    @staticmethod
    def _record_events(pack: LoadedPack, records: list[Record], case: dict[str, Any], now: dt.datetime) -> list[Event]:
        """Events for what diagram elements asked to record (reminders, overdue, escalations)."""
        events = []
        for record in records:
            data: dict[str, Any] = {"element": record.element, **record.data, "owner": case.get("owner_unit")}
            target = record.data.get("escalate_to")
            if target == "command_centre":
                data["escalate_to"] = pack.catalog.command_centre
            if target:
                case["escalated_to"] = data["escalate_to"]
            events.append(Event(record.kind, data))
        return events

    @staticmethod
    def _event_rows(
        case_id: uuid.UUID, seq: int, now: dt.datetime, principal: Principal, power: str, events: list[Event]
    ) -> list[dict[str, Any]]:
        return [
            {
                "case_id": case_id,
                "seq": seq + i + 1,
                "at": now,
                "kind": e.kind,
                "actor": principal.id,
                "actor_unit": principal.unit,
                "power": power,
                "data": e.data,
            }
            for i, e in enumerate(events)
        ]

    def _notify(self, event_rows: list[dict[str, Any]]) -> None:
        for listener in self.listeners:
            listener(event_rows)


TIMER_ACTOR = "system.timer"
#: recorded facts that make a case overdue (others, like a rejected call, only notify upward)
OVERDUE_KINDS = ("deadline.overdue", "deadline.escalated", "callout.no_response")


def _tier(pack: LoadedPack, matter: str | None) -> str | None:
    found = pack.catalog.matters.get(matter) if matter else None
    return found.tier if found else None


def _opened(task: dict[str, Any]) -> Event:
    return Event(
        "task.opened",
        {
            "task": task["name"],
            "unit": task["unit_code"],
            "assignee": task["assignee_user"],
            "due_at": task["due_at"].isoformat() if task["due_at"] else None,
        },
    )


def _check_new_case(new: NewCase) -> None:
    errors = []
    if new.channel not in CHANNELS:
        errors.append({"loc": ["channel"], "msg": f"must be one of {', '.join(CHANNELS)}"})
    if not new.description or not new.description.strip() or len(new.description) > 4000:
        errors.append({"loc": ["description"], "msg": "1 to 4000 characters"})
    if (new.lat is None) != (new.lng is None):
        errors.append({"loc": ["location"], "msg": "lat and lng go together"})
    elif new.lat is not None and new.lng is not None and not (-90 <= new.lat <= 90 and -180 <= new.lng <= 180):
        errors.append({"loc": ["location"], "msg": "lat must be in [-90, 90] and lng in [-180, 180]"})
    if errors:
        raise InvalidInput("the report is invalid", errors=errors)
