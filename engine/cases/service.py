"""Commands on cases: report, complete a task, withdraw (上报, 签收/处置/审核/评价, 撤回).

Each command is a *decision* over a :class:`~govflow.engine.cases.unit_of_work.CaseSnapshot`
run by the one :class:`~govflow.engine.cases.unit_of_work.UnitOfWork`: authorize
(Casbin, in the engine, not in routes) → run the workflow in memory with the
sandboxed script engine and the injected clock → :func:`plan` the change →
commit it in one version-checked transaction → notify. A write that lost the
race is refused with :class:`ConcurrentUpdate` (nothing written).

What the engine needs to know of a diagram it reads from the roles its
elements declare (:mod:`govflow.engine.workflow.roles`): the withdrawal signal,
the evaluation task and its rating field, the tasks that re-route a case.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from govflow.engine.access.authz import Authorizer
from govflow.engine.access.identity import Principal
from govflow.engine.cases import duplicates
from govflow.engine.cases.disputes import amend, next_version
from govflow.engine.cases.unit_of_work import (
    CaseSnapshot,
    Change,
    Event,
    Listener,
    Outcome,
    UnitOfWork,
    event_rows,
    open_task_rows,
    plan,
    plan_event,
    recorded,
    task_opened,
)
from govflow.engine.model.clock import Clock, iso
from govflow.engine.model.dispatch import Report, Routing
from govflow.engine.model.errors import (
    ConcurrentUpdate,
    FormValidationError,
    IdempotencyMismatch,
    InvalidInput,
    InvalidTransition,
    NotFound,
    PermissionDenied,
)
from govflow.engine.model.limits import (
    CHANNELS,
    DESCRIPTION_MAX,
    IDEMPOTENCY_KEY_MAX,
    IDEMPOTENCY_KEY_PATTERN,
    LAT_MAX,
    LAT_MIN,
    LNG_MAX,
    LNG_MIN,
    REASON_MAX,
    SYSTEM_CHANNELS,
    data_errors,
)
from govflow.engine.packs.loader import LoadedPack
from govflow.engine.store.db import CaseParty, CaseRow, IdempotencyKey, Rating
from govflow.engine.workflow.runtime import Record

#: the principal timers act as (on the record as ``actor``)
TIMER_ACTOR = "system.timer"


class PackSource(Protocol):
    """Where commands find pack versions (``govflow.engine.packs.registry.PackRegistry``)."""

    def get(self, name: str, version: str) -> LoadedPack: ...

    def active(self, district: str | None = None) -> LoadedPack: ...

    def districts(self) -> list[str]: ...

    def compile(self, files: Mapping[str, bytes]) -> LoadedPack: ...

    def deploy(self, pack: LoadedPack, *, actor: str, now: Any, activate: bool = True) -> bool: ...


class Dispatcher(Protocol):
    """What the engine asks of smart dispatch (answered by plugins, wired by the composition root)."""

    def dispatch(self, pack: LoadedPack, report: Report) -> Routing:
        """Decide the matter, street and owner unit of a new case (owner None: command centre)."""
        ...


class AccessSource(Protocol):
    """Where commands find the Casbin enforcer of a pack version (``govflow.engine.access.control``)."""

    def authorizer(self, pack: LoadedPack, principal: Principal | None = None) -> Authorizer: ...

    def refresh_delegations(self, pack: LoadedPack, authz: Authorizer | None = None) -> None: ...


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


def parse_uuid(value: str, what: str) -> uuid.UUID:
    """A UUID from a caller; anything else is simply not found (forged ids learn nothing)."""
    try:
        return uuid.UUID(str(value))
    except (ValueError, AttributeError, TypeError):
        raise NotFound(f"no such {what}", id=str(value)[:64]) from None


class CaseService:
    """Commands on cases. One instance per process; safe to share between threads."""

    def __init__(
        self,
        *,
        uow: UnitOfWork,
        packs: PackSource,
        access: AccessSource,
        dispatcher: Dispatcher,
        clock: Clock,
    ) -> None:
        self.uow = uow
        self.packs = packs
        self.access = access
        self.dispatcher = dispatcher
        self.clock = clock
        uow.listeners.append(duplicates.follow_main(self))  # duplicates follow their main case

    @property
    def db(self) -> Any:
        return self.uow.db

    @property
    def listeners(self) -> list[Listener]:
        return self.uow.listeners

    # -- authorization ---------------------------------------------------------
    def authorize(self, principal: Principal, pack: LoadedPack, unit: str | None, action: str) -> str:
        """Casbin decides; returns the power (role@domain:action) that allowed it, for the record."""
        domain = pack.catalog.domain_of(unit)
        authz = self.access.authorizer(pack, principal)
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

    # -- who may see a case (one rule: docs/architecture.md, "403 or 404") ------------------------
    def reading_domain(self, principal: Principal, case: Any, pack: LoadedPack) -> str:
        """The domain in which ``principal`` reads ``case``: the owner's, or a called department's own."""
        domain = pack.catalog.domain_of(case.owner_unit)
        if principal.unit and principal.unit != case.owner_unit:
            with self.db.connect() as conn:
                party = conn.execute(
                    select(CaseParty.unit_code).where(
                        CaseParty.case_id == case.id, CaseParty.unit_code == principal.unit
                    )
                ).first()
            if party is not None:  # a called department reads the case in its own domain
                domain = pack.catalog.domain_of(principal.unit)
        return domain

    def may_read(self, principal: Principal, case: Any, pack: LoadedPack) -> bool:
        """The case's reporter, or anyone Casbin allows ``read_case`` in the case's reading domain."""
        if case.reported_by == principal.id:
            return True
        domain = self.reading_domain(principal, case, pack)
        return self.access.authorizer(pack, principal).allowed(principal.id, domain, "read_case")

    def sees_personal_data(self, principal: Principal, case: Any, pack: LoadedPack) -> bool:
        """Unmasked reporter data: Casbin's ``read_pii`` in the reading domain, or a citizen's own report.

        An integrator (or anyone) who filed a report on a caller's behalf sees the
        caller's data only with ``read_pii``, like everyone else.
        """
        if case.reported_by == principal.id and principal.has_role("citizen"):
            return True
        domain = self.reading_domain(principal, case, pack)
        return self.access.authorizer(pack, principal).allowed(principal.id, domain, "read_pii")

    def require_visible(self, principal: Principal, case: Any, pack: LoadedPack, *, task: Any = None) -> None:
        """Raise exactly what a missing case (or task) raises unless ``principal`` may read the case.

        A caller who may not read a case learns nothing of it, not even that it
        exists: the 404 is the same as for an id that was never issued.
        """
        if not self.may_read(principal, case, pack):
            if task is not None:
                raise NotFound("no such open task", task=str(task))
            raise NotFound("no such case", case=str(case.id))

    # -- report ------------------------------------------------------------------
    def report(
        self, principal: Principal, new: NewCase, *, idempotency_key: str | None = None, system: bool = False
    ) -> Outcome:
        """Create a case from a report, dispatch it and open its first task (上报 → 分发).

        ``system`` admits the engine's own channels (a campaign case); callers' reports never are.
        """
        check_new_case(new, channels=CHANNELS + SYSTEM_CHANNELS if system else CHANNELS)
        if idempotency_key is not None:
            if len(idempotency_key) > IDEMPOTENCY_KEY_MAX or not re.match(IDEMPOTENCY_KEY_PATTERN, idempotency_key):
                raise InvalidInput(
                    "the Idempotency-Key must be 1-128 visible ASCII characters",
                    errors=[{"loc": ["header", "idempotency-key"], "msg": "1-128 visible ASCII characters"}],
                )
            replay = self._replay(principal, idempotency_key, new)
            if replay is not None:
                return replay
        pack = self.pack_for(principal, new)
        if new.category is not None and new.category not in pack.catalog.matters:
            raise InvalidInput(
                f"unknown category {new.category!r}",
                errors=[{"loc": ["category"], "msg": "not a matter code of the catalog"}],
            )
        change = self._decide_report(principal, pack, new, idempotency_key)
        try:
            return self.uow.commit(change)
        except IntegrityError:
            if idempotency_key is None:
                raise
            replay = self._replay(principal, idempotency_key, new)  # a concurrent retry won the race
            if replay is None:
                raise
            return replay

    def pack_for(self, principal: Principal, new: NewCase) -> LoadedPack:
        """The active pack of the report's district: the one named, else found from the coordinates or places.

        Coordinates outside every served district's territory are refused (422)
        rather than turned into a case nobody can reach; so are coordinates in
        another district than the one named.
        """
        named = new.district or principal.district
        if new.lat is not None and new.lng is not None:
            return self._pack_at(named, new.lat, new.lng)
        if named is not None:
            return self.packs.active(named)
        try:
            return self.packs.active(None)
        except InvalidInput:  # several districts served: the places the report names may settle it
            found = [
                pack
                for d in self.packs.districts()
                if (pack := self.packs.active(d)).gazetteer is not None
                and pack.gazetteer.locate(new.address, new.description).places
            ]
            if len(found) == 1:
                return found[0]
            raise

    def _pack_at(self, named: str | None, lat: float, lng: float) -> LoadedPack:
        try:
            pack = self.packs.active(named)
        except InvalidInput:
            pack = None  # several districts and none named: the coordinates decide
        if pack is not None and pack.territory.locate(lat, lng) is not None:
            return pack
        inside = [p for d in self.packs.districts() if (p := self.packs.active(d)).territory.locate(lat, lng)]
        where = f"({lat:.6f}, {lng:.6f})"
        if not inside:
            served = ", ".join(self.packs.districts())
            raise InvalidInput(
                f"the location {where} lies outside every district served here ({served})",
                errors=[{"loc": ["location"], "msg": f"{where} is outside the territory of {served}"}],
            )
        if named is not None and inside[0].catalog.district != named:
            raise InvalidInput(
                f"the location {where} lies in {inside[0].catalog.district}, not in {named}",
                errors=[{"loc": ["location"], "msg": f"{where} is in {inside[0].catalog.district}"}],
            )
        return inside[0]

    def _decide_report(
        self, principal: Principal, pack: LoadedPack, new: NewCase, idempotency_key: str | None
    ) -> Change:
        report = Report(new.description, new.category, new.lat, new.lng, new.address, new.channel)
        routing = self.dispatcher.dispatch(pack, report)
        owner = routing.owner or pack.catalog.command_centre
        power = self.authorize(principal, pack, owner, "report")
        now = self.clock.now()
        case_id = uuid.uuid4()
        runtime = pack.runtime
        records: list[Record] = []
        process = pack.manifest.process
        start = {
            "case_id": str(case_id),
            "district": pack.catalog.district,
            "owner_unit": routing.owner,
            "matter": routing.matter,
            "tier": tier_of(pack, routing.matter),
            "review_approved": None,
        }
        workflow = runtime.start(process, start, self.clock, records)
        row: dict[str, Any] = {
            "id": case_id,
            "district": pack.catalog.district,
            "pack_name": pack.manifest.name,
            "pack_version": pack.manifest.version,
            "process_id": process,
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
            "status": None,
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
                {
                    "matter": routing.matter,
                    "street": routing.street,
                    "owner": owner,
                    "how": routing.how,
                    **routing.record(),
                },
            ),
        ]
        record_events, escalated_to = recorded(pack, records, row)
        events += record_events
        if escalated_to is not None:
            row["escalated_to"] = escalated_to
        main = duplicates.main_of(self.uow, pack, new, duplicates.matters_of(routing), now, principal.id)
        tasks: list[dict[str, Any]] = []
        if main is not None:  # a duplicate: it follows the main case and opens no task (重复件)
            status = duplicates.LINKED
            events.append(Event("case.linked", main.record()))
        else:
            tasks, status = open_task_rows(pack, process, workflow, row, now)
        events += [task_opened(t) for t in tasks]
        events.append(Event("case.stage", {"stage": status}))
        rows = event_rows(case_id, 0, now, principal, power, events)
        row.update(
            status=status,
            state=runtime.dump(workflow),
            next_due=None if main is not None else runtime.next_due(workflow),
            event_seq=len(rows),
        )
        extra = []
        if idempotency_key is not None:
            key_row = {
                "principal_id": principal.id,
                "key": idempotency_key,
                "request_hash": new.fingerprint(),
                "case_id": case_id,
                "created_at": now,
            }
            extra.append((IdempotencyKey.__table__, [key_row]))
        return Change(
            case_id,
            None,
            row,
            rows,
            tasks,
            extra=extra,
            outcome=Outcome(case_id, status, 1, rows),
            workflow=(runtime, workflow),
        )

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
        self,
        principal: Principal,
        task_id: str,
        data: Mapping[str, Any] | None,
        *,
        expected_version: int | None = None,
    ) -> Outcome:
        """Complete an open user task with its form data (签收, 处置, 审核, 评价, 分拨 …)."""
        tid = parse_uuid(task_id, "task")
        if errors := data_errors(dict(data or {}), ["data"]):
            raise FormValidationError("the form data is invalid", errors=errors, task=task_id)

        def decide(snapshot: CaseSnapshot) -> Change:
            task = snapshot.open_tasks.get(tid)
            if task is None:
                raise NotFound("no such open task", task=str(tid))
            self.require_visible(principal, snapshot.row, snapshot.pack, task=tid)
            return self._decide_complete(principal, snapshot, task, data, expected_version)

        return self.uow.run_on_task(tid, decide)

    def _decide_complete(
        self,
        principal: Principal,
        snapshot: CaseSnapshot,
        task: Any,
        data: Mapping[str, Any] | None,
        expected_version: int | None,
    ) -> Change:
        case, pack = snapshot.row, snapshot.pack
        check_assignment(principal, task)
        # a unit acts in its own domain: the owner street, a called department, the command centre
        power = self.authorize(principal, pack, task.unit_code or case.owner_unit, task.action)
        if expected_version is not None and expected_version != case.version:  # only once allowed to act
            raise ConcurrentUpdate(f"the case is at version {case.version}, not {expected_version}", case=str(case.id))
        runtime = pack.runtime
        roles = pack.diagrams.roles_of(case.process_id)
        workflow = runtime.load_case(case)
        spiff_task = runtime.find_task(workflow, str(task.id))
        element = runtime.element_of(spiff_task)
        info = pack.diagrams.user_tasks[element]
        form = pack.forms[task.action]
        values = form.validate(
            data, pack.catalog, task=str(task.id), context=runtime.task_data(spiff_task), now=self.clock.now()
        )
        rating, rated = None, rated_by(roles, element)
        if rated is not None:  # the citizen's direction of 评价, or the return visit's (回访)
            field = form.fields[rated[2]]
            rating = values.get(field.variable or rated[2])
        moved_to, amendment = None, None
        if element == roles.ruling_task and roles.ruling_variable:  # 长效责任机制: a new list version
            moved_to, amendment = self._rule_responsibility(principal, case, values[roles.ruling_variable], values)
        if info.form_variable:  # e.g. each report-in instance's answer as one dict
            values = {info.form_variable: values}
        changes: dict[str, Any] = {}
        if element in roles.dispatch_tasks:  # 分拨 / 督办: the form decides who owns the case
            if "owner_unit" in values:
                changes["owner_unit"] = values["owner_unit"]
            if values.get("matter"):
                changes["matter"] = values["matter"]
                values["tier"] = tier_of(pack, values["matter"])
        records: list[Record] = []
        runtime.complete(workflow, str(task.id), values, self.clock, records)
        completed = {
            "task": task.name,
            "action": task.action,
            "form": form.recorded(data),
            # what the supervision rates need of the task, on the record itself (see engine/oversight)
            "unit": task.unit_code,
            "stage": task.stage,
            "role": roles.role_of(element),
            "opened_at": iso(task.created_at),
            "due_at": iso(task.due_at) if task.due_at else None,
        }
        events = [Event("task.completed", completed)]
        if changes:
            owner, matter = changes.get("owner_unit", case.owner_unit), changes.get("matter", case.matter)
            events.append(Event("case.dispatched", {"owner": owner, "matter": matter}))
        if moved_to is not None and amendment is not None:  # the case continues under the ruling
            changes["pack_version"] = moved_to.manifest.version
            events.append(Event("responsibility.amended", amendment))
        now = self.clock.now()
        extra = []
        if rating is not None and rated is not None:
            direction, dimension, _ = rated
            # a reopened case is rated again: each later round is its own row (uq_ratings_once)
            party = self._rating_party(case.id, principal.id, case.owner_unit, dimension)
            rating_row = {
                "case_id": case.id,
                "direction": direction,
                "rater_party": party,
                "rater": principal.id,
                "target": case.owner_unit,
                "dimension": dimension,
                "score": rating,
                "comment": values.get("comment"),
                "at": now,
            }
            extra.append((Rating.__table__, [rating_row]))
            events.append(
                Event(
                    "rating.given",
                    {
                        "direction": direction,
                        "rater_party": party,
                        "target": case.owner_unit,
                        "dimension": dimension,
                        "score": rating,
                    },
                )
            )
        return plan(
            snapshot,
            workflow,
            actor=principal,
            power=power,
            now=now,
            events=events,
            changes=changes,
            records=records,
            extra=extra,
            pack=moved_to,
        )

    def _rule_responsibility(
        self, principal: Principal, case: Any, department: str, values: Mapping[str, Any]
    ) -> tuple[LoadedPack, dict[str, Any]]:
        """Deploy the ruling as a new active version of the district's pack (the case its provenance)."""
        if not case.matter:
            raise InvalidInput("the case has no matter; the meeting cannot amend the list for it")
        active = self.packs.active(case.district)
        name = active.manifest.name

        def exists(version: str) -> bool:
            try:
                self.packs.get(name, version)
            except NotFound:
                return False
            return True

        version = next_version(active.manifest.version, exists)
        decision = str(values.get("decision") or "")
        amended = amend(
            dict(active.files),
            version=version,
            description=active.manifest.description,
            matter=case.matter,
            department=department,
            case_id=str(case.id),
            decision=decision,
        )
        new_pack = self.packs.compile(amended.files)
        self.packs.deploy(new_pack, actor=principal.id, now=self.clock.now(), activate=True)
        return new_pack, amended.record(name, case.pack_version, decision, str(case.id))

    def _rating_party(self, case_id: uuid.UUID, party: str, target: str, dimension: str) -> str:
        """The rater party of a rating: ``party``, numbered ``#2``, ``#3`` … for later rounds."""
        with self.db.connect() as conn:
            earlier = conn.execute(
                select(Rating.id).where(
                    Rating.case_id == case_id, Rating.target == target, Rating.dimension == dimension
                )
            ).all()
        return party if not earlier else f"{party}#{len(earlier) + 1}"

    def withdraw(self, principal: Principal, case_id: str, reason: str) -> Outcome:
        """The reporter withdraws the case before the result is submitted (撤回)."""
        if not reason or len(reason) > REASON_MAX:
            raise InvalidInput(
                f"a reason of 1 to {REASON_MAX} characters is required",
                errors=[{"loc": ["reason"], "msg": f"required, at most {REASON_MAX} characters"}],
            )
        if errors := data_errors(reason, ["reason"]):
            raise InvalidInput("the reason is invalid", errors=errors)

        def decide(snapshot: CaseSnapshot) -> Change:
            case, pack = snapshot.row, snapshot.pack
            self.require_visible(principal, case, pack)
            if case.reported_by != principal.id:
                raise PermissionDenied(
                    "only the reporter of a case may withdraw it", case=case_id, principal=principal.id
                )
            power = self.authorize(principal, pack, case.owner_unit, "withdraw")
            if case.closed_at is not None:
                raise InvalidTransition("the case is already closed", case=case_id)
            runtime = pack.runtime
            roles = pack.diagrams.roles_of(case.process_id)
            workflow = runtime.load_case(case)
            records: list[Record] = []
            try:
                runtime.send_signal(workflow, roles.withdrawal_signal, {"reason": reason}, self.clock, records)
            except InvalidTransition:
                raise InvalidTransition(
                    "the case can no longer be withdrawn: its result has been submitted",
                    case=case_id,
                    status=case.status,
                ) from None
            return plan(
                snapshot,
                workflow,
                actor=principal,
                power=power,
                now=self.clock.now(),
                events=[Event("case.withdrawn", {"reason": reason})],
                records=records,
            )

        return self.uow.run(parse_uuid(case_id, "case"), decide)

    # -- duplicates (重复件) ---------------------------------------------------------------
    def link(self, principal: Principal, case_id: str, main_id: str) -> Outcome:
        """The command centre links an open case to the open case it duplicates (its tasks set aside)."""
        return duplicates.link(self, principal, case_id, main_id)

    def unlink(self, principal: Principal, case_id: str) -> Outcome:
        """The command centre unlinks a duplicate: its tasks open as for a new report."""
        return duplicates.unlink(self, principal, case_id)

    # -- facts that move no workflow --------------------------------------------------
    def record_fact(
        self,
        snapshot: CaseSnapshot,
        principal: Principal,
        power: str | None,
        kind: str,
        data: dict[str, Any],
        *,
        extra: Sequence[Any] = (),
    ) -> Outcome:
        """Commit one event that moves no workflow (a rating, a contribution) on the case as read."""
        change = plan_event(
            snapshot, actor=principal, power=power, now=self.clock.now(), events=[Event(kind, data)], extra=extra
        )
        return self.uow.commit(change)

    # -- timers ----------------------------------------------------------------------
    def decide_timers(self, snapshot: CaseSnapshot) -> Change | None:
        """Fire the due timers of a case (read under lock by a worker) in memory.

        Returns the change to write, or ``None`` when no timer was due after all
        (the worker then only refreshes ``next_due``, see :mod:`.timers`).
        """
        case, pack = snapshot.row, snapshot.pack
        runtime = pack.runtime
        workflow = runtime.load_case(case)
        waited_for = runtime.next_due(workflow)
        records: list[Record] = []
        runtime.advance(workflow, self.clock, records)
        if not records and runtime.next_due(workflow) == waited_for:
            return None  # no timer fired: a timer without a record (e.g. a wait before the end) counts too
        timer = Principal(TIMER_ACTOR, "timer", "system", case.district, None, ())
        return plan(snapshot, workflow, actor=timer, power="deadline", now=self.clock.now(), records=records)

    def next_due(self, snapshot: CaseSnapshot) -> Any:
        """The case's earliest pending timer, recomputed from its stored state."""
        case = snapshot.row
        return snapshot.pack.runtime.next_due(snapshot.pack.runtime.load(case.state, case.process_id))


def tier_of(pack: LoadedPack, matter: str | None) -> str | None:
    """The tier (马上办/快速办/限时办) of a matter in the pack's catalog."""
    found = pack.catalog.matters.get(matter) if matter else None
    return found.tier if found else None


def rated_by(roles: Any, element: str) -> tuple[str, str, str] | None:
    """(direction, dimension, form field) of the rating a task's completion gives, if it gives one."""
    if element == roles.evaluation_task and roles.rating_field:
        return "citizen_to_case", "satisfaction", roles.rating_field
    if element == roles.return_visit_task and roles.return_visit_field:
        return "return_visit", "return_visit", roles.return_visit_field
    return None


def check_assignment(principal: Principal, task: Any) -> None:
    """The principal must be the task's assignee: its user, or staff of its unit in its role."""
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


def check_new_case(new: NewCase, *, channels: tuple[str, ...] = CHANNELS) -> None:
    """A report's fields within the engine's limits (the API's schemas use the same limits)."""
    errors: list[dict[str, Any]] = []
    if new.channel not in channels:
        errors.append({"loc": ["channel"], "msg": f"must be one of {', '.join(channels)}"})
    if not new.description or not new.description.strip() or len(new.description) > DESCRIPTION_MAX:
        errors.append({"loc": ["description"], "msg": f"1 to {DESCRIPTION_MAX} characters"})
    for loc, value in (
        (["description"], new.description),
        (["category"], new.category),
        (["district"], new.district),
        (["location", "address"], new.address),
        (["reporter", "name"], new.reporter_name),
        (["reporter", "phone"], new.reporter_phone),
    ):
        errors += data_errors(value, loc) if value is not None else []
    if (new.lat is None) != (new.lng is None):
        errors.append({"loc": ["location"], "msg": "lat and lng go together"})
    elif (
        new.lat is not None
        and new.lng is not None
        and not (LAT_MIN <= new.lat <= LAT_MAX and LNG_MIN <= new.lng <= LNG_MAX)
    ):
        errors.append({"loc": ["location"], "msg": "lat must be in [-90, 90] and lng in [-180, 180]"})
    if errors:
        raise InvalidInput("the report is invalid", errors=errors)


__all__ = [
    "TIMER_ACTOR",
    "CaseService",
    "NewCase",
    "Outcome",
    "check_assignment",
    "check_new_case",
    "parse_uuid",
    "tier_of",
]
