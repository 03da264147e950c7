"""The one unit of work every change to a case goes through.

Every command — report, complete a task, withdraw, call out, rate, contribute,
fire a timer, migrate to another pack version, record a failure — has the same
four steps, and only this module touches the case tables for writing:

.. code-block:: text

    load      CaseSnapshot = the case row, its pack version, its open tasks (as read)
      │
    decide    a pure function of the snapshot (and the command's input) returning a Change:
      │       the row's new values, tasks opened / closed / updated, events, extra rows.
      │       It may run the workflow in memory; it never writes.
    commit    ONE transaction: UPDATE cases … WHERE id = :id AND version = :read_version,
      │       task rows, event rows, extra rows. A lost race raises ConcurrentUpdate and
      │       writes nothing.
      │       Projectors run inside the same transaction (read models, an outbox).
    notify    listeners (notification plugins) hear of the committed events, after the commit.

:func:`plan` turns what a workflow command did (the workflow after running, the
events it wants recorded, the facts diagram elements recorded) into a
:class:`Change`; :func:`plan_event` does the same for a fact that moves no
workflow (a rating, a contribution, a failed timer). Event sequence numbers and
the case version are assigned here and nowhere else.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.engine import Connection, Engine

from govflow.engine.access.identity import Principal
from govflow.engine.model.catalog import ROLE_FOR_KIND
from govflow.engine.model.clock import Clock, iso
from govflow.engine.model.errors import ConcurrentUpdate, NotFound
from govflow.engine.model.lifecycle import OVERDUE_KINDS, Stage, furthest
from govflow.engine.packs.loader import LoadedPack
from govflow.engine.store.db import CaseEvent, CaseRow, CaseTask
from govflow.engine.workflow.runtime import Record

#: the fields of an open task that a command may change while the task stays open
TASK_FIELDS = ("title", "stage", "action", "unit_code", "role", "assignee_user", "due_at")

Listener = Callable[[Sequence[dict[str, Any]]], None]
#: Called inside the commit's transaction with the changes being committed: read models kept in
#: step with the record (rates), an outbox of what must leave the process (webhooks). Whatever it
#: writes commits or rolls back with the change itself; an exception aborts the whole commit.
Projector = Callable[[Connection, Sequence["Change"]], None]


@dataclass(frozen=True)
class Event:
    """A fact a command puts on the case's record (sequence, time and actor are added at planning)."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What a command did: the case id, its new status and version, and the event rows it appended."""

    case_id: uuid.UUID
    status: str
    version: int
    events: list[dict[str, Any]]
    replayed: bool = False


@dataclass(frozen=True)
class CaseSnapshot:
    """A case as one command read it: the row, the pack version it runs on, its open tasks."""

    row: Any
    pack: LoadedPack
    open_tasks: Mapping[uuid.UUID, Any]

    @property
    def id(self) -> uuid.UUID:
        return self.row.id

    @property
    def version(self) -> int:
        return self.row.version


@dataclass(frozen=True)
class Change:
    """Everything one command will write for one case, decided before any write.

    ``read_version`` is the version the decision was made on (``None`` for a new
    case): :meth:`apply` writes only if the row still has it.
    """

    case_id: uuid.UUID
    read_version: int | None
    values: dict[str, Any]
    events: list[dict[str, Any]]
    new_tasks: list[dict[str, Any]] = field(default_factory=list)
    gone_tasks: list[uuid.UUID] = field(default_factory=list)
    updated_tasks: list[dict[str, Any]] = field(default_factory=list)
    extra: list[tuple[Any, list[dict[str, Any]]]] = field(default_factory=list)
    outcome: Outcome | None = None
    #: the case row as the command read it (None for a new case): projectors take the case's
    #: district, owner and reporter from it (with ``values``) instead of reading them back
    case_row: Any = None
    #: (runtime, workflow) the command ran, kept in the process's cache once committed
    #: (:class:`~govflow.engine.workflow.runtime.WorkflowCache`); None: nothing to keep
    workflow: Any = None

    def keep_workflow(self) -> None:
        """After the commit: the workflow as this change's version (the next command may run on it)."""
        if self.workflow is not None and self.outcome is not None and "state" in self.values:
            runtime, workflow = self.workflow
            runtime.keep(self.case_id, self.outcome.version, self.values["state"], workflow)

    def write_row(self, conn: Connection) -> None:
        """The version-checked write of the case row (or its insert, for a new case)."""
        if self.read_version is None:
            conn.execute(insert(CaseRow), self.values)
            return
        result = conn.execute(
            update(CaseRow)
            .where(CaseRow.id == self.case_id, CaseRow.version == self.read_version)
            .values(**self.values)
        )
        if result.rowcount != 1:
            raise ConcurrentUpdate(
                "the case changed since it was read; nothing was written, retry on fresh state",
                case=str(self.case_id),
            )

    def write_rest(self, conn: Connection) -> None:
        """Task, event and extra rows (after :meth:`write_row`, in the same transaction)."""
        write_rows(conn, [self])

    def apply(self, conn: Connection) -> None:
        self.write_row(conn)
        self.write_rest(conn)


def write_rows(conn: Connection, changes: Sequence[Change]) -> None:
    """The task, event and extra rows of several changes, in as few statements as possible."""
    gone = [t for c in changes for t in c.gone_tasks]
    if gone:
        conn.execute(delete(CaseTask).where(CaseTask.id.in_(gone)))
    for change in changes:
        for task in change.updated_tasks:
            conn.execute(
                update(CaseTask).where(CaseTask.id == task["id"]).values(**{k: task[k] for k in task if k != "id"})
            )
    new = [t for c in changes for t in c.new_tasks]
    if new:
        conn.execute(insert(CaseTask), new)
    events = [e for c in changes for e in c.events]
    if events:
        conn.execute(insert(CaseEvent), events)
    for change in changes:
        for table, rows in change.extra:
            if rows:
                conn.execute(insert(table), rows)


def write_group(conn: Connection, changes: Sequence[Change]) -> None:
    """Write several changes of existing cases together: the version-checked row updates as one
    batch per set of columns, then :func:`write_rows`. ConcurrentUpdate (nothing of the group may
    stand: the caller rolls back its savepoint) if any row moved since it was read."""
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for change in changes:
        assert change.read_version is not None, "a new case is inserted by Change.apply"
        by_columns.setdefault(tuple(sorted(change.values)), []).append(
            {**{f"v_{k}": v for k, v in change.values.items()}, "_id": change.case_id, "_version": change.read_version}
        )
    for columns, params in by_columns.items():
        stmt = (
            update(CaseRow)
            .where(CaseRow.id == bindparam("_id"), CaseRow.version == bindparam("_version"))
            .values({c: bindparam(f"v_{c}") for c in columns})
        )
        result = conn.execute(stmt, params)
        if result.rowcount != len(params):
            raise ConcurrentUpdate("a case of the group changed since it was read; nothing of the group was written")
    write_rows(conn, changes)


def refresh_next_due(conn: Connection, row: Any, next_due: dt.datetime | None) -> None:
    """Correct a case's ``next_due`` index when no timer was due after all (nothing else changes:
    no event, no new version). Version-checked, so it never overwrites a newer write."""
    conn.execute(update(CaseRow).where(CaseRow.id == row.id, CaseRow.version == row.version).values(next_due=next_due))


class UnitOfWork:
    """Load, commit and notify for every command on cases (see the module docstring)."""

    def __init__(
        self,
        *,
        db: Engine,
        pack_of: Callable[[str, str], LoadedPack],
        clock: Clock,
        listeners: Sequence[Listener] = (),
        projectors: Sequence[Projector] = (),
    ) -> None:
        self.db = db
        self.pack_of = pack_of
        self.clock = clock
        self.listeners = list(listeners)
        self.projectors = list(projectors)
        # reads outside a transaction: no BEGIN and no ROLLBACK around them (two round trips
        # less per read on PostgreSQL). A command's reads need no snapshot of their own: the
        # version-checked write refuses a decision taken on a case that moved since.
        self.reader = db.execution_options(isolation_level="AUTOCOMMIT")

    # -- load ---------------------------------------------------------------------
    def read_row(self, case_id: uuid.UUID) -> Any:
        """The case row (no pack, no tasks): for reads that need only the row."""
        with self.reader.connect() as conn:
            row = conn.execute(select(CaseRow).where(CaseRow.id == case_id)).first()
        if row is None:
            raise NotFound("no such case", case=str(case_id))
        return row

    def load(self, case_id: uuid.UUID) -> CaseSnapshot:
        """The case as a command reads it: row, pack version, open tasks."""
        with self.reader.connect() as conn:
            row = conn.execute(select(CaseRow).where(CaseRow.id == case_id)).first()
            if row is None:
                raise NotFound("no such case", case=str(case_id))
            tasks = {t.id: t for t in conn.execute(select(CaseTask).where(CaseTask.case_id == case_id))}
        return CaseSnapshot(row, self.pack_of(row.pack_name, row.pack_version), tasks)

    def load_of_task(self, task_id: uuid.UUID) -> CaseSnapshot:
        """The case an open task belongs to, as a command reads it (NotFound once the task is done
        or never was): the row found through the task in the same statement."""
        of_task = select(CaseTask.case_id).where(CaseTask.id == task_id).scalar_subquery()
        with self.reader.connect() as conn:
            row = conn.execute(select(CaseRow).where(CaseRow.id == of_task)).first()
            if row is None:
                raise NotFound("no such open task", task=str(task_id))
            tasks = {t.id: t for t in conn.execute(select(CaseTask).where(CaseTask.case_id == row.id))}
        return CaseSnapshot(row, self.pack_of(row.pack_name, row.pack_version), tasks)

    def case_of_task(self, task_id: uuid.UUID) -> uuid.UUID:
        """The case an open task belongs to (NotFound once the task is done or never was)."""
        with self.reader.connect() as conn:
            case_id = conn.execute(select(CaseTask.case_id).where(CaseTask.id == task_id)).scalar()
        if case_id is None:
            raise NotFound("no such open task", task=str(task_id))
        return case_id

    def snapshot(self, row: Any, open_tasks: Mapping[uuid.UUID, Any]) -> CaseSnapshot:
        """A snapshot of a row read elsewhere (e.g. a worker's batch read under lock)."""
        return CaseSnapshot(row, self.pack_of(row.pack_name, row.pack_version), open_tasks)

    # -- commit -------------------------------------------------------------------
    def commit(self, change: Change) -> Outcome:
        """Write one change in one transaction, then notify; ConcurrentUpdate if the case moved."""
        with self.db.begin() as conn:
            change.apply(conn)
            self.project(conn, [change])
        change.keep_workflow()
        self.notify(change.events)
        assert change.outcome is not None
        return change.outcome

    def run(self, case_id: uuid.UUID, decide: Callable[[CaseSnapshot], Change]) -> Outcome:
        """load → decide → commit → notify."""
        return self.commit(decide(self.load(case_id)))

    def run_on_task(self, task_id: uuid.UUID, decide: Callable[[CaseSnapshot], Change]) -> Outcome:
        """load the case of an open task → decide → commit → notify."""
        return self.commit(decide(self.load_of_task(task_id)))

    def project(self, conn: Connection, changes: Sequence[Change]) -> None:
        """Run the projectors inside the transaction that writes ``changes`` (see :data:`Projector`)."""
        if changes:
            for projector in self.projectors:
                projector(conn, changes)

    def notify(self, events: Sequence[dict[str, Any]]) -> None:
        if not events:
            return
        for listener in self.listeners:
            listener(events)


# -- decide: pure planning helpers -------------------------------------------------------
def event_rows(
    case_id: uuid.UUID, seq: int, now: dt.datetime, actor: Principal, power: str | None, events: Sequence[Event]
) -> list[dict[str, Any]]:
    """Event rows numbered after ``seq`` (the case's last event sequence)."""
    return [
        {
            "case_id": case_id,
            "seq": seq + i + 1,
            "at": now,
            "kind": e.kind,
            "actor": actor.id,
            "actor_unit": actor.unit,
            "power": power,
            "data": e.data,
        }
        for i, e in enumerate(events)
    ]


def recorded(pack: LoadedPack, records: Sequence[Record], case: Mapping[str, Any]) -> tuple[list[Event], str | None]:
    """Events for what diagram elements recorded (reminders, overdue, escalations), and where the
    case was escalated to (None: not escalated by these records)."""
    events: list[Event] = []
    escalated_to = None
    for record in records:
        data: dict[str, Any] = {"element": record.element, **record.data, "owner": case.get("owner_unit")}
        target = record.data.get("escalate_to")
        if target == "command_centre":
            data["escalate_to"] = pack.catalog.command_centre
        elif target == "city":  # the city unit of the catalog, when it has one
            data["escalate_to"] = pack.catalog.unit_of_kind("city") or "city"
        if target:
            escalated_to = data["escalate_to"]
        events.append(Event(record.kind, data))
    return events, escalated_to


def open_task_rows(
    pack: LoadedPack, process_id: str, workflow: Any, case: Mapping[str, Any], now: dt.datetime
) -> tuple[list[dict[str, Any]], str]:
    """The open user tasks of ``workflow`` as task rows (assignees resolved), and the case's status."""
    runtime = pack.runtime
    roles = pack.diagrams.roles_of(process_id)
    rows: list[dict[str, Any]] = []
    stages: list[str] = []
    for task in runtime.open_tasks(workflow):
        info = pack.diagrams.user_tasks[runtime.element_of(task)]  # MI instances share their activity's id
        unit, user = None, None
        data = runtime.task_data(task)
        if info.assignee == "reporter":
            user = case["reported_by"]
        elif info.assignee == "command_centre":
            unit = pack.catalog.command_centre
        elif info.assignee in ("responsibility_meeting", "city"):  # that unit, else the command centre
            unit = pack.catalog.unit_of_kind(info.assignee) or pack.catalog.command_centre
        elif info.assignee == "called":
            unit = (data.get(roles.report_in_item or "") or {}).get("unit")
        elif info.assignee == "main_department":
            called = data.get(roles.call_out_variable or "") or {}
            unit = next((d["unit"] for d in called.values() if d.get("role") == "main"), None)
        else:
            unit = case["owner_unit"]
        kind = pack.catalog.units[unit].kind if unit in pack.catalog.units else "street"
        rows.append(
            {
                "id": task.id,
                "case_id": case["id"],
                "name": info.name,
                "title": info.title,
                "stage": info.stage,
                "action": info.action,
                "unit_code": unit,
                "role": None if user else ROLE_FOR_KIND[kind],
                "assignee_user": user,
                "due_at": runtime.task_deadline(task),
                "created_at": now,
            }
        )
        stages.append(info.stage)
    status = furthest(stages)
    if status is None:
        if not runtime.is_complete(workflow):
            status = case.get("status") or Stage.REPORTED.value  # waiting on a timer or a signal only
        elif runtime.reached_any(workflow, roles.withdrawn_ends):
            status = Stage.WITHDRAWN.value
        else:
            status = Stage.EVALUATED.value
    return rows, status


def task_opened(task: Mapping[str, Any]) -> Event:
    return Event(
        "task.opened",
        {
            "task": task["name"],
            "unit": task["unit_code"],
            "assignee": task["assignee_user"],
            "due_at": iso(task["due_at"]) if task["due_at"] else None,
        },
    )


def plan(
    snapshot: CaseSnapshot,
    workflow: Any,
    *,
    actor: Principal,
    power: str | None,
    now: dt.datetime,
    events: Sequence[Event] = (),
    changes: Mapping[str, Any] | None = None,
    records: Sequence[Record] = (),
    pack: LoadedPack | None = None,
    extra: Sequence[tuple[Any, list[dict[str, Any]]]] = (),
) -> Change:
    """Everything a workflow command will write, from the workflow after it ran.

    ``changes`` are row values the command itself decided (a new owner, a new
    pack version); ``records`` what diagram elements asked to record; ``pack``
    the pack version the case runs on afterwards (another one for a migration).
    Pure: reads nothing from the database.
    """
    case = snapshot.row
    pack = pack or snapshot.pack
    values: dict[str, Any] = dict(changes or {})
    current = {**case._mapping, **values}
    record_events, escalated_to = recorded(pack, records, current)
    all_events = [*events, *record_events]
    if any(r.kind in OVERDUE_KINDS for r in records):
        values.setdefault("overdue_since", case.overdue_since or now)
    if escalated_to is not None:
        values["escalated_to"] = escalated_to
        current["escalated_to"] = escalated_to
    tasks, status = open_task_rows(pack, case.process_id, workflow, current, now)
    roles = pack.diagrams.roles_of(case.process_id)
    before = snapshot.open_tasks
    # who had not reported in when the deadline passed: the report-in tasks open before this command
    # (a timer that fires within a command was due before it; a late report-in still counts as late)
    silent = sorted(str(t.unit_code) for t in before.values() if t.name == roles.report_in_task)
    all_events = [
        Event(e.kind, {**e.data, "departments": silent}) if e.kind == "callout.no_response" else e for e in all_events
    ]
    now_open = {t["id"]: t for t in tasks}
    new_tasks = [t for t in tasks if t["id"] not in before]
    # a call upheld by the command centre's ruling: the departments asked to report in again
    renewed = sorted(str(t["unit_code"]) for t in new_tasks if t["name"] == roles.report_in_task)
    all_events = [
        Event(e.kind, {**e.data, "departments": renewed}) if e.kind == "callout.upheld" else e for e in all_events
    ]
    gone = [tid for tid in before if tid not in now_open]
    updated = []
    for tid, task in now_open.items():
        old = before.get(tid)
        if old is not None:
            diff = {k: task[k] for k in TASK_FIELDS if getattr(old, k) != task[k]}
            if diff:
                updated.append({"id": tid, **diff})
    completed = {e.data.get("task") for e in all_events if e.kind == "task.completed"}
    all_events += [Event("task.cancelled", {"task": before[t].name}) for t in gone if before[t].name not in completed]
    all_events += [task_opened(t) for t in new_tasks]
    if status != case.status:
        all_events.append(Event("case.stage", {"stage": status, "from": case.status}))
    closed = pack.runtime.is_complete(workflow)
    if closed and case.closed_at is None:
        all_events.append(Event("case.closed", {"stage": status}))
    rows = event_rows(case.id, case.event_seq, now, actor, power, all_events)
    values.update(
        status=status,
        state=pack.runtime.dump(workflow),
        next_due=pack.runtime.next_due(workflow),
        event_seq=case.event_seq + len(rows),
        version=case.version + 1,
        updated_at=now,
        closed_at=case.closed_at or (now if closed else None),
    )
    return Change(
        case.id,
        case.version,
        values,
        rows,
        new_tasks,
        gone,
        updated,
        list(extra),
        Outcome(case.id, status, case.version + 1, rows),
        case_row=case,
        # a workflow that moves to another pack version is restored with that version's specs next time
        workflow=(pack.runtime, workflow) if pack is snapshot.pack else None,
    )


def plan_event(
    snapshot: CaseSnapshot,
    *,
    actor: Principal,
    power: str | None,
    now: dt.datetime,
    events: Sequence[Event],
    values: Mapping[str, Any] | None = None,
    extra: Sequence[tuple[Any, list[dict[str, Any]]]] = (),
) -> Change:
    """A change that moves no workflow: facts on the record (a rating, a contribution, a failed
    timer), optional row values, extra rows. The version moves too, so a command that read the case
    before is refused instead of colliding on the event sequence."""
    case = snapshot.row
    rows = event_rows(case.id, case.event_seq, now, actor, power, events)
    new_values = {**(values or {}), "event_seq": case.event_seq + len(rows), "version": case.version + 1}
    return Change(
        case.id,
        case.version,
        new_values,
        rows,
        extra=list(extra),
        outcome=Outcome(case.id, case.status, case.version + 1, rows),
        case_row=case,
    )


__all__ = [
    "CaseSnapshot",
    "Change",
    "Event",
    "Listener",
    "Outcome",
    "Projector",
    "UnitOfWork",
    "event_rows",
    "open_task_rows",
    "plan",
    "plan_event",
    "recorded",
    "refresh_next_due",
    "task_opened",
    "write_group",
    "write_rows",
]
