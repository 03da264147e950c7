"""Call-outs (呼叫), delegated call-out powers, and the three-way evaluation (评价).

A street that cannot solve a case alone calls out departments. Whom it may call
is decided by Casbin (``model.conf`` ``m2``): the departments the pack's
responsibility list (责任清单) makes main or cooperating for the case's matter,
or any department an unexpired delegation (granted by a district supervisor)
names. Every allowed call-out records, per department, the power that allowed
it; a refused one says exactly why. The call itself is delivered to the diagram
as the ``call_out`` signal, whose payload opens one report-in (报到) task per
department.

Ratings are data: the street rates each called department's report-in and
disposal, each department rates the accuracy of the call, the citizen rates
satisfaction (from the evaluation task). Each party rates each thing once.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from govflow.engine.access.identity import Principal
from govflow.engine.cases.service import CaseService, parse_uuid
from govflow.engine.cases.unit_of_work import CaseSnapshot, Change, Event, Outcome, plan
from govflow.engine.model.calendar import Limit
from govflow.engine.model.clock import iso
from govflow.engine.model.errors import (
    Conflict,
    InvalidInput,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    UnroutableInput,
)
from govflow.engine.model.limits import (
    COMMENT_MAX,
    MAX_DEPARTMENTS,
    MEETING_PLACE_MAX,
    PART_MAX,
    REASON_MAX,
    SCORE_MAX,
    SCORE_MIN,
    fields_errors,
)
from govflow.engine.packs.loader import LoadedPack
from govflow.engine.store.db import CaseParty, Delegation, Rating
from govflow.engine.workflow.runtime import Record

DIMENSIONS = {"street_to_department": ("report_in", "disposal"), "department_to_street": ("accuracy",)}
_PATTERN = re.compile(r"^(\*|[a-z][a-z0-9_]*(\.[a-z0-9_]+)*(\.\*)?)$")
_LIMIT_UNITS = {
    "minutes": ("minutes", 1),
    "hours": ("minutes", 60),
    "days": ("minutes", 1440),
    "working_hours": ("working_hours", 1),
    "working_days": ("working_days", 1),
}


@dataclass(frozen=True)
class CallOut:
    departments: Sequence[str]
    reason: str
    meeting_at: dt.datetime | None = None
    meeting_place: str | None = None
    main: str | None = None


class CallOuts:
    """Commands around call-outs; they run through the case command path."""

    def __init__(self, service: CaseService) -> None:
        self.service = service

    # -- call out ---------------------------------------------------------------
    def call_out(self, principal: Principal, case_id: str, call: CallOut) -> Outcome:
        departments = list(dict.fromkeys(call.departments))
        _check_call(call, departments)
        now = self.service.clock.now()
        if call.meeting_at is not None and call.meeting_at.tzinfo is not None and call.meeting_at <= now:
            raise InvalidInput(
                "the call-out is invalid",
                errors=[{"loc": ["meeting_at"], "msg": f"the meeting must be later than now ({iso(now)})"}],
            )
        return self.service.uow.run(
            parse_uuid(case_id, "case"), lambda snapshot: self._decide_call_out(principal, snapshot, call, departments)
        )

    def _decide_call_out(
        self, principal: Principal, snapshot: CaseSnapshot, call: CallOut, departments: list[str]
    ) -> Change:
        service = self.service
        case, pack = snapshot.row, snapshot.pack
        case_id = str(case.id)
        service.require_visible(principal, case, pack)
        # Casbin first: a street of another district (or street) holds no call_out role in this domain
        role_power = service.authorize(principal, pack, case.owner_unit, "call_out")
        if principal.unit != case.owner_unit:
            raise PermissionDenied(
                f"only the sub-centre of {case.owner_unit} may call out for this case",
                case=case_id,
                principal=principal.id,
            )
        if not case.matter:
            raise InvalidTransition(
                "the case has no matter yet: the command centre must classify it before a call-out", case=case_id
            )
        for code in departments:
            unit = pack.catalog.unit(code)
            if unit is None or unit.kind != "department":
                raise UnroutableInput(
                    f"{code!r} is not a department of {pack.catalog.district}",
                    errors=[{"loc": ["departments"], "msg": f"unknown department {code!r}"}],
                )
        now = service.clock.now()
        powers = self._powers(pack, case, departments, now)
        found = pack.responsibility.lookup(case.matter) if pack.responsibility else None
        main = call.main or (found.main if found and found.main in departments else departments[0])
        if main not in departments:
            raise InvalidInput(
                "the main department must be one of those called",
                errors=[{"loc": ["main"], "msg": "not among departments"}],
            )
        dispose_due = self._dispose_due(pack, found, case, now)
        called = {
            code: {
                "unit": code,
                "role": "main" if code == main else "cooperating",
                "reason": call.reason,
                "meeting_at": iso(call.meeting_at) if call.meeting_at else None,
                "meeting_place": call.meeting_place,
                "dispose_due": iso(dispose_due),
                "power": powers[code],
            }
            for code in departments
        }
        runtime = pack.runtime
        roles = pack.diagrams.roles_of(case.process_id)
        if roles.call_out_signal is None:
            raise InvalidTransition(f"the process {case.process_id} has no call-out step", case=case_id)
        workflow = runtime.load(case.state, case.process_id)
        records: list[Record] = []
        try:
            runtime.send_signal(workflow, roles.call_out_signal, called, service.clock, records)
        except InvalidTransition:
            raise InvalidTransition(
                "a call-out is possible only while the street is handling the case", case=case_id, status=case.status
            ) from None
        event = Event(
            "callout.made",
            {
                "departments": [{"unit": c, "role": called[c]["role"], "power": powers[c]} for c in departments],
                "reason": call.reason,
                "meeting_at": called[main]["meeting_at"],
                "meeting_place": call.meeting_place,
                "dispose_due": iso(dispose_due),
            },
        )
        with service.db.connect() as conn:
            existing = set(conn.execute(select(CaseParty.unit_code).where(CaseParty.case_id == case.id)).scalars())
        parties = [
            {"case_id": case.id, "unit_code": c, "role": called[c]["role"], "power": powers[c], "since": now}
            for c in departments
            if c not in existing
        ]
        return plan(
            snapshot,
            workflow,
            actor=principal,
            power=role_power,
            now=now,
            events=[event],
            records=records,
            extra=[(CaseParty.__table__, parties)],
        )

    def _powers(self, pack: LoadedPack, case: Any, departments: list[str], now: dt.datetime) -> dict[str, str]:
        """The power that allows each call, from Casbin; refuse with the exact reason otherwise."""
        authz = self.service.access.authorizer(pack)
        self.service.access.refresh_delegations(pack, authz)
        domain = pack.catalog.domain_of(case.owner_unit)
        found = pack.responsibility.lookup(case.matter) if pack.responsibility else None
        powers: dict[str, str] = {}
        refused: list[dict[str, Any]] = []
        for code in departments:
            allowed, row = authz.may_call_out(domain, case.matter, code, iso(now))
            if allowed and row:
                powers[code] = f"delegation #{row[4]} ({row[1]}) until {row[3]}"
            elif allowed and found is not None:
                share = "main" if code == found.main else "cooperating"
                powers[code] = f"responsibility list {found.matched}: {share}"
            else:
                refused.append({"loc": ["departments", code], "msg": self._why_not(pack, case, code, found, now)})
        if refused:
            raise PermissionDenied(
                f"{case.owner_unit} may not call out {', '.join(r['loc'][1] for r in refused)} for {case.matter}: "
                + "; ".join(r["msg"] for r in refused),
                case=str(case.id),
                matter=case.matter,
            )
        return powers

    def _why_not(self, pack: LoadedPack, case: Any, code: str, found: Any, now: dt.datetime) -> str:
        listed = (
            f"the responsibility list ({found.matched}) names {found.main} as main"
            + (f" and {', '.join(found.cooperating)} as cooperating" if found and found.cooperating else "")
            if found
            else "no responsibility entry covers the matter"
        )
        with self.service.db.connect() as conn:
            expired = conn.execute(
                select(Delegation.id, Delegation.expires_at)
                .where(
                    Delegation.district == pack.catalog.district,
                    Delegation.street == case.owner_unit,
                    Delegation.department == code,
                    Delegation.expires_at <= now,
                )
                .order_by(Delegation.expires_at.desc())
                .limit(1)
            ).first()
        tail = (
            f"; delegation #{expired.id} expired at {iso(expired.expires_at)}"
            if expired
            else "; no delegation grants it"
        )
        return f"{code} is neither main nor cooperating for {case.matter} ({listed}){tail}"

    @staticmethod
    def _dispose_due(pack: LoadedPack, found: Any, case: Any, now: dt.datetime) -> dt.datetime:
        policy = pack.runtime.deadlines
        if found is not None and found.entry.time_limit is not None and policy is not None:
            unit, factor = _LIMIT_UNITS[found.entry.time_limit.unit]
            return policy.working_time.add(now, Limit(found.entry.time_limit.amount * factor, unit))
        tier = pack.catalog.matters[case.matter].tier if case.matter in pack.catalog.matters else None
        if policy is not None:
            return policy.due("handle", tier, now)
        return now + dt.timedelta(days=3)

    def contribute(self, principal: Principal, case_id: str, part: str) -> dict[str, Any]:
        """A cooperating department adds its part (配合) to a joint disposal, on the record.

        It does not block the main department's disposal; it is possible while the
        case is called or consulting.
        """
        service = self.service
        if not part or len(part) > PART_MAX:
            raise InvalidInput(
                f"part must be 1 to {PART_MAX} characters",
                errors=[{"loc": ["part"], "msg": f"1 to {PART_MAX} characters"}],
            )
        if errors := fields_errors(part=part):
            raise InvalidInput("the part is invalid", errors=errors)
        snapshot = service.uow.load(parse_uuid(case_id, "case"))
        case, pack = snapshot.row, snapshot.pack
        service.require_visible(principal, case, pack)
        with service.db.connect() as conn:
            party = conn.execute(
                select(CaseParty).where(CaseParty.case_id == case.id, CaseParty.unit_code == principal.unit)
            ).first()
        if party is None or party.role != "cooperating":
            raise PermissionDenied(
                f"{principal.unit} is not a cooperating department of this case", case=case_id, principal=principal.id
            )
        power = service.authorize(principal, pack, principal.unit, "dispose")
        if case.status not in ("called", "consulting"):
            raise InvalidTransition(
                "a part can be added while the case is called or in consultation", case=case_id, status=case.status
            )
        data = {"unit": principal.unit, "part": part}
        outcome = service.record_fact(snapshot, principal, power, "callout.contribution", data)
        return {**data, "at": outcome.events[0]["at"]}

    # -- delegations ---------------------------------------------------------------
    def delegate(
        self,
        principal: Principal,
        *,
        district: str | None,
        street: str,
        department: str,
        matter_pattern: str,
        expires_at: dt.datetime,
        reason: str,
    ) -> dict[str, Any]:
        """Grant a street the power to call out a department (for a matter pattern) until an expiry.

        Authorization first: a caller who may not delegate in the district learns
        nothing of its streets and departments from a field error.
        """
        if shape := fields_errors(district=district, street=street, department=department, reason=reason):
            raise InvalidInput("the delegation is invalid", errors=shape)
        pack = self.active_pack(principal, district)
        catalog = pack.catalog
        power = self.service.authorize(principal, pack, catalog.command_centre, "delegate")
        errors = []
        if catalog.unit(street) is None or catalog.units[street].kind != "street":
            errors.append({"loc": ["street"], "msg": f"{street!r} is not a street of {catalog.district}"})
        if catalog.unit(department) is None or catalog.units[department].kind != "department":
            errors.append({"loc": ["department"], "msg": f"{department!r} is not a department of {catalog.district}"})
        if not _PATTERN.match(matter_pattern):
            errors.append({"loc": ["matter_pattern"], "msg": "a matter code, a group pattern like road.*, or *"})
        now = self.service.clock.now()
        if expires_at.tzinfo is None or expires_at <= now:
            errors.append({"loc": ["expires_at"], "msg": "must be a future time with a time zone"})
        if not reason or len(reason) > REASON_MAX:
            errors.append({"loc": ["reason"], "msg": f"1 to {REASON_MAX} characters"})
        if errors:
            raise InvalidInput("the delegation is invalid", errors=errors)
        row = {
            "district": catalog.district,
            "street": street,
            "department": department,
            "matter_pattern": matter_pattern,
            "reason": reason,
            "granted_by": principal.id,
            "granted_at": now,
            "expires_at": expires_at,
        }
        with self.service.db.begin() as conn:
            row["id"] = conn.execute(insert(Delegation).returning(Delegation.id), row).scalar_one()
        self.service.access.refresh_delegations(pack)
        return {**row, "power": power, "active": True}

    def may_delegate(self, principal: Principal, district: str | None = None) -> None:
        """Raise PermissionDenied unless ``principal`` may delegate in ``district`` (default: its own)."""
        try:
            pack = self.active_pack(principal, district)
        except NotFound:
            pack = None
        if pack is None or (district or principal.district) is None:
            raise PermissionDenied(f"{principal.id} may not delegate here", principal=principal.id, action="delegate")
        self.service.authorize(principal, pack, pack.catalog.command_centre, "delegate")

    def active_pack(self, principal: Principal, district: str | None) -> LoadedPack:
        """The active pack of ``district`` (default: the principal's); a malformed code is simply unknown."""
        return self.service.packs.active(district or principal.district)

    def delegations(self, principal: Principal, district: str | None = None) -> list[dict[str, Any]]:
        pack = self.active_pack(principal, district)
        self.service.authorize(principal, pack, pack.catalog.command_centre, "read_delegations")
        with self.service.db.connect() as conn:
            rows = conn.execute(
                select(Delegation).where(Delegation.district == pack.catalog.district).order_by(Delegation.id)
            ).all()
        now = self.service.clock.now()
        return [{**r._mapping, "active": r.expires_at > now} for r in rows]

    # -- ratings ---------------------------------------------------------------------
    def rate(
        self, principal: Principal, case_id: str, *, target: str, dimension: str, score: int, comment: str | None
    ) -> dict[str, Any]:
        """The street rates a department (report_in, disposal); a department rates the call (accuracy)."""
        service = self.service
        if not isinstance(score, int) or isinstance(score, bool) or not SCORE_MIN <= score <= SCORE_MAX:
            raise InvalidInput(
                f"score must be an integer from {SCORE_MIN} to {SCORE_MAX}",
                errors=[{"loc": ["score"], "msg": f"{SCORE_MIN} to {SCORE_MAX}"}],
            )
        if comment is not None and len(comment) > COMMENT_MAX:
            raise InvalidInput(
                "comment too long", errors=[{"loc": ["comment"], "msg": f"at most {COMMENT_MAX} characters"}]
            )
        if errors := fields_errors(target=target, dimension=dimension, comment=comment):
            raise InvalidInput("the rating is invalid", errors=errors)
        snapshot = service.uow.load(parse_uuid(case_id, "case"))
        case, pack = snapshot.row, snapshot.pack
        service.require_visible(principal, case, pack)
        with service.db.connect() as conn:
            parties = {r.unit_code: r for r in conn.execute(select(CaseParty).where(CaseParty.case_id == case.id))}
        if principal.unit == case.owner_unit and principal.unit not in parties:
            direction = "street_to_department"
            if target not in parties:
                raise PermissionDenied(f"{target} was not called out on this case", case=case_id)
        elif principal.unit in parties:
            direction = "department_to_street"
            if target != case.owner_unit:
                raise PermissionDenied(
                    f"a called department rates the call of {case.owner_unit}, not {target}", case=case_id
                )
        else:
            raise PermissionDenied(f"{principal.id} takes no part in this case's call-outs", case=case_id)
        if dimension not in DIMENSIONS[direction]:
            raise InvalidInput(
                f"{direction.replace('_', ' ')} rates {', '.join(DIMENSIONS[direction])}",
                errors=[{"loc": ["dimension"], "msg": f"one of {', '.join(DIMENSIONS[direction])}"}],
            )
        if dimension == "disposal" and case.status not in ("completed", "reviewed", "evaluated"):
            raise InvalidTransition(
                "a disposal can be rated once its result is submitted", case=case_id, status=case.status
            )
        power = service.authorize(
            principal, pack, case.owner_unit if direction == "street_to_department" else principal.unit, "rate"
        )
        now = service.clock.now()
        row: dict[str, Any] = {
            "case_id": case.id,
            "direction": direction,
            "rater_party": principal.unit,
            "rater": principal.id,
            "target": target,
            "dimension": dimension,
            "score": score,
            "comment": comment,
            "at": now,
        }
        data = {k: v for k, v in row.items() if k not in ("case_id", "at")}
        try:
            outcome = service.record_fact(
                snapshot, principal, power, "rating.given", data, extra=[(Rating.__table__, [row])]
            )
        except IntegrityError:
            raise Conflict(
                f"{principal.unit} has already rated {target} on {dimension} for this case", case=case_id
            ) from None
        return {**row, "at": outcome.events[0]["at"]}

    def ratings(self, principal: Principal, case_id: str) -> list[dict[str, Any]]:
        """A case's ratings, for those who may read the case (no personal data: nothing is logged)."""
        case = self.service.uow.read_row(parse_uuid(case_id, "case"))
        self.service.require_visible(principal, case, self.service.packs.get(case.pack_name, case.pack_version))
        with self.service.db.connect() as conn:
            rows = conn.execute(select(Rating).where(Rating.case_id == case.id).order_by(Rating.id)).all()
        return [dict(r._mapping) for r in rows]


def _check_call(call: CallOut, departments: list[str]) -> None:
    errors = []
    if not 1 <= len(departments) <= MAX_DEPARTMENTS:
        errors.append({"loc": ["departments"], "msg": f"1 to {MAX_DEPARTMENTS} departments"})
    if not call.reason or len(call.reason) > REASON_MAX:
        errors.append({"loc": ["reason"], "msg": f"1 to {REASON_MAX} characters"})
    if call.meeting_place is not None and len(call.meeting_place) > MEETING_PLACE_MAX:
        errors.append({"loc": ["meeting_place"], "msg": f"at most {MEETING_PLACE_MAX} characters"})
    if call.meeting_at is not None and call.meeting_at.tzinfo is None:
        errors.append({"loc": ["meeting_at"], "msg": "needs a time zone"})
    errors += fields_errors(
        departments=list(call.departments), reason=call.reason, meeting_place=call.meeting_place, main=call.main
    )
    if errors:
        raise InvalidInput("the call-out is invalid", errors=errors)


__all__ = ["CallOut", "CallOuts"]
