"""Duplicate reports (重复件): a new report close in place and meaning to an open case is linked to it.

A burst of residents reporting the same broken manhole cover should make one
piece of work for the street, not six. When a new report is classified (a
matter, by the reporter or by smart dispatch; for a report smart dispatch was
unsure of, its two best candidates) :func:`find_main` looks among the
district's **open** cases of **that matter** (or waiting for the command centre
with it among their two best candidates) reported within the window
(``settings.dispatch.duplicates.window_hours``, default 72) for one **close in
place**: both located by coordinates within ``radius_m`` (default 100 m), or,
without coordinates, both giving the same address, and **reported by someone
else** (another account, or another phone under the hotline's account) in a
report that does not say it is about another one (另一处…). The nearest (then
the earliest) wins. The service then records the new case as *linked* to it
(status ``linked``, event ``case.linked``): its workflow is started but it opens
no task — the street works the main case once — while the report counts in the
rates like any other (its ``case.routed`` is recorded). The reporter follows
the main case (the case view names it and its stage); when the main case is
settled its duplicates close with it, when it is withdrawn they are unlinked and
go on as cases of their own (:func:`follow`). The command centre can unlink a case
(``POST /api/v1/cases/{id}/unlink``: its tasks open as for a new report) or
link an open case by hand (``POST /api/v1/cases/{id}/link``: its open tasks are
set aside until it is unlinked).

Pure functions: the service reads the candidates and writes the result.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from govflow.engine.access.identity import Principal
from govflow.engine.cases.unit_of_work import CaseSnapshot, Change, Event, Outcome, UnitOfWork, event_rows, plan
from govflow.engine.model.errors import InvalidInput, InvalidTransition, NotFound
from govflow.engine.packs.loader import LoadedPack
from govflow.engine.store.db import CaseEvent, CaseRow

#: the status of a case linked to another one (no open task; it follows its main case)
LINKED = "linked"
WINDOW_HOURS = 72.0
RADIUS_M = 100.0


@dataclass(frozen=True)
class Rules:
    """How close a report must be to an open case to be linked to it."""

    window: dt.timedelta = dt.timedelta(hours=WINDOW_HOURS)
    radius_m: float = RADIUS_M
    enabled: bool = True

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> Rules:
        """The pack's ``settings.dispatch.duplicates`` (``false`` turns linking off); defaults otherwise."""
        raw = (settings.get("dispatch") or {}).get("duplicates") if isinstance(settings, Mapping) else None
        if raw is False:
            return cls(enabled=False)
        if not isinstance(raw, Mapping):
            return cls()
        hours, radius = raw.get("window_hours", WINDOW_HOURS), raw.get("radius_m", RADIUS_M)
        ok = all(isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in (hours, radius))
        return cls(dt.timedelta(hours=float(hours)), float(radius)) if ok else cls()


@dataclass(frozen=True)
class Candidate:
    """An open case a new report might duplicate."""

    id: Any
    lat: float | None
    lng: float | None
    address: str | None
    created_at: dt.datetime


@dataclass(frozen=True)
class Match:
    main: Any
    distance_m: float | None
    how: str

    def record(self) -> dict[str, Any]:
        """The data of the ``case.linked`` event."""
        out: dict[str, Any] = {"main": str(self.main), "how": self.how}
        if self.distance_m is not None:
            out["distance_m"] = self.distance_m
        return out


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000.0 * math.asin(min(1.0, math.sqrt(a)))


def _same_address(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    norm = str.maketrans("", "", " \t，,。.")
    return a.translate(norm) == b.translate(norm)


def find_main(
    lat: float | None, lng: float | None, address: str | None, candidates: Iterable[Candidate], rules: Rules
) -> Match | None:
    """The open case a report (already known to be of the candidates' matter, in their window) duplicates."""
    if not rules.enabled:
        return None
    best: tuple[float, dt.datetime, Match] | None = None
    for c in candidates:
        if lat is not None and lng is not None and c.lat is not None and c.lng is not None:
            d = distance_m(lat, lng, c.lat, c.lng)
            if d > rules.radius_m:
                continue
            match = Match(c.id, round(d, 1), f"same matter, {d:.0f} m away")
            key = (d, c.created_at, match)
        elif lat is None and c.lat is None and _same_address(address, c.address):
            key = (0.0, c.created_at, Match(c.id, None, "same matter, same address"))
        else:
            continue
        if best is None or key[:2] < best[:2]:
            best = key
    return best[2] if best else None


#: words by which a resident says the report is about another thing than one reported before
ANOTHER = ("另一处", "另一个", "另外一处", "另外一个", "又一处", "又一个", "又有一个", "另一根", "另一盏")


def says_another(text: str) -> bool:
    return any(m in text for m in ANOTHER)


def same_reporter(account: str, phone: str | None, other_account: str, other_phone: str | None) -> bool:
    """The same account, unless both reports give a phone and the phones differ (the hotline, an
    integrator, files the reports of many callers under one account)."""
    return account == other_account and (phone is None or other_phone is None or phone == other_phone)


# -- reads ------------------------------------------------------------------------------------
#: a report smart dispatch was unsure of may duplicate an open case of one of its best candidates
CANDIDATES = 2
CANDIDATE_P = 0.1


def matters_of(routing: Any) -> list[str]:
    """The matters a new report may duplicate an open case of: its own, else (unsure: it goes to the
    command centre) its best candidates — a report next to an open case of a matter it probably is."""
    if routing.matter is not None:
        return [routing.matter]
    return [c["matter"] for c in routing.candidates[:CANDIDATES] if c.get("p", 0) >= CANDIDATE_P]


def matters_of_record(data: Mapping[str, Any]) -> list[str]:
    """:func:`matters_of` of a routing as recorded (the data of a ``case.routed``/``case.unroutable`` event)."""
    if data.get("matter"):
        return [str(data["matter"])]
    return [str(c.get("matter")) for c in (data.get("candidates") or [])[:CANDIDATES] if c.get("p", 0) >= CANDIDATE_P]


def main_of(
    uow: UnitOfWork, pack: LoadedPack, new: Any, matters: Sequence[str], now: dt.datetime, reporter: str
) -> Match | None:
    """The open case of one of ``matters`` (:func:`matters_of`) a new report duplicates, or None.

    A reporter's own earlier case is never the main one (:func:`same_reporter`):
    someone who reports again knows what they reported, and a second report from
    them is another case. Nor is a report that says it is about another one
    (:func:`says_another`: 另一处, 又一个 …).
    """
    rules = Rules.of(pack.manifest.settings)
    if not matters or not rules.enabled or (new.lat is None and not new.address) or says_another(new.description):
        return None
    columns = (
        CaseRow.id,
        CaseRow.lat,
        CaseRow.lng,
        CaseRow.address,
        CaseRow.created_at,
        CaseRow.reported_by,
        CaseRow.reporter_phone,
    )
    open_cases = (
        CaseRow.district == pack.catalog.district,
        CaseRow.closed_at.is_(None),
        CaseRow.status != LINKED,
        CaseRow.created_at >= now - rules.window,
    )
    wanted = set(matters)
    with uow.reader.connect() as conn:
        rows: list[Any] = list(conn.execute(select(*columns).where(CaseRow.matter.in_(list(wanted)), *open_cases)))
        # open cases waiting for the command centre: of a matter when one of their best candidates is
        unsure = conn.execute(
            select(*columns, CaseEvent.data)
            .join(CaseEvent, CaseEvent.case_id == CaseRow.id)
            .where(CaseRow.matter.is_(None), CaseEvent.kind == "case.unroutable", *open_cases)
        ).all()
    rows += [r for r in unsure if wanted & set(matters_of_record(r.data))]
    others = (
        Candidate(r.id, r.lat, r.lng, r.address, r.created_at)
        for r in rows
        if not same_reporter(r.reported_by, r.reporter_phone, reporter, new.reporter_phone)
    )
    return find_main(new.lat, new.lng, new.address, others, rules)


def linked_to(conn: Any, case_id: uuid.UUID) -> str | None:
    """The main case a case is linked to now (its last link event), or None."""
    last = conn.execute(
        select(CaseEvent.kind, CaseEvent.data)
        .where(CaseEvent.case_id == case_id, CaseEvent.kind.in_(("case.linked", "case.unlinked")))
        .order_by(CaseEvent.seq.desc())
        .limit(1)
    ).first()
    return str(last.data.get("main")) if last is not None and last.kind == "case.linked" else None


def linked_cases(conn: Any, case: Any, *, including_closed: bool = False) -> list[str]:
    """The open cases linked to ``case`` now (its duplicates; closed ones too if asked)."""
    query = select(CaseRow.id).where(CaseRow.district == case.district, CaseRow.status == LINKED)
    if not including_closed:
        query = query.where(CaseRow.closed_at.is_(None))
    ids = conn.execute(query).scalars()
    main = str(case.id)
    return [str(i) for i in ids if linked_to(conn, i) == main]


# -- commands (the command centre's: Casbin's ``dispatch``) ---------------------------------------
def unlink(service: Any, principal: Principal, case_id: str) -> Outcome:
    """A linked case becomes a case of its own: its tasks open as they would have for a new report."""

    def decide(snapshot: CaseSnapshot) -> Change:
        case, pack = snapshot.row, snapshot.pack
        service.require_visible(principal, case, pack)
        power = service.authorize(principal, pack, case.owner_unit, "dispatch")
        if case.status != LINKED or case.closed_at is not None:
            raise InvalidTransition(
                "the case is not linked to an open case", case=case_id, status=case.status, closed=bool(case.closed_at)
            )
        return _unlinked(service, snapshot, principal, power, {})

    return service.uow.run(_case_id(case_id), decide)


def _unlinked(service: Any, snapshot: CaseSnapshot, actor: Principal, power: str | None, why: dict[str, Any]) -> Change:
    case, pack = snapshot.row, snapshot.pack
    with service.uow.reader.connect() as conn:
        main = linked_to(conn, case.id)
    workflow = pack.runtime.load(case.state, case.process_id)
    return plan(
        snapshot,
        workflow,
        actor=actor,
        power=power,
        now=service.clock.now(),
        events=[Event("case.unlinked", {"main": main, **why})],
    )


# -- the duplicates follow their main case --------------------------------------------------------
#: who closes or unlinks a duplicate when its main case ends (on the record as ``actor``)
FOLLOW_ACTOR = "system.duplicates"
log = logging.getLogger("govflow.duplicates")


def follow_main(service: Any) -> Callable[[Sequence[Mapping[str, Any]]], None]:
    """A listener of committed events: when a case closes, its duplicates follow (:func:`follow`)."""

    def listener(events: Sequence[Mapping[str, Any]]) -> None:
        for main_id in {e["case_id"] for e in events if e.get("kind") == "case.closed"}:
            try:
                follow(service, main_id)
            except Exception:  # the main case's command is committed: a follower left linked is logged
                log.exception("the duplicates of case %s could not follow it", main_id)

    return listener


def follow(service: Any, main_id: Any) -> list[Outcome]:
    """The duplicates of a case that has just closed: closed with it when it was settled (the reporter
    followed it: the same result), unlinked — cases of their own, tasks open — when it was withdrawn
    (its reporter's choice is not theirs)."""
    with service.uow.reader.connect() as conn:
        main = conn.execute(
            select(CaseRow.id, CaseRow.district, CaseRow.status, CaseRow.closed_at).where(CaseRow.id == main_id)
        ).first()
        if main is None or main.closed_at is None or main.status == LINKED:
            return []
        followers = linked_cases(conn, main, including_closed=True)
    withdrawn = main.status == "withdrawn"
    outcomes = []
    for follower in followers:

        def decide(snapshot: CaseSnapshot) -> Change:
            case = snapshot.row
            actor = Principal(FOLLOW_ACTOR, "duplicates", "system", case.district, None, ())
            if case.status != LINKED or case.closed_at is not None:
                raise _Settled
            if withdrawn:
                return _unlinked(service, snapshot, actor, None, {"why": "the main case was withdrawn"})
            now = service.clock.now()
            events = [Event("case.closed", {"stage": main.status, "with": str(main.id)})]
            rows = event_rows(case.id, case.event_seq, now, actor, None, events)
            values = {
                "closed_at": now,
                "updated_at": now,
                "next_due": None,
                "event_seq": case.event_seq + len(rows),
                "version": case.version + 1,
            }
            outcome = Outcome(case.id, case.status, case.version + 1, rows)
            return Change(case.id, case.version, values, rows, outcome=outcome, case_row=case)

        try:
            outcomes.append(service.uow.run(uuid.UUID(follower), decide))
        except _Settled:
            continue
    return outcomes


class _Settled(Exception):
    """A follower that was unlinked or closed meanwhile: nothing to do."""


def link(service: Any, principal: Principal, case_id: str, main_id: str) -> Outcome:
    """An open case linked by hand to the open case it duplicates: its open tasks are set aside."""
    try:
        main_uuid = uuid.UUID(str(main_id))
    except ValueError:
        raise InvalidInput("main is not a case id", errors=[{"loc": ["main"], "msg": "a case id"}]) from None

    def decide(snapshot: CaseSnapshot) -> Change:
        case, pack = snapshot.row, snapshot.pack
        service.require_visible(principal, case, pack)
        power = service.authorize(principal, pack, case.owner_unit, "dispatch")
        if case.closed_at is not None or case.status == LINKED:
            raise InvalidTransition(
                "only an open case that is not linked yet can be linked", case=case_id, status=case.status
            )
        if main_uuid == case.id:
            raise InvalidInput("a case cannot be linked to itself", errors=[{"loc": ["main"], "msg": "itself"}])
        try:
            main = service.uow.read_row(main_uuid)
            service.require_visible(principal, main, pack)
        except NotFound:
            raise InvalidInput("no such case to link to", errors=[{"loc": ["main"], "msg": "no such case"}]) from None
        if main.district != case.district or main.closed_at is not None or main.status == LINKED:
            raise InvalidInput(
                "the main case must be an open case of the same district, not linked itself",
                errors=[{"loc": ["main"], "msg": f"{main.status}, district {main.district}"}],
            )
        now = service.clock.now()
        events = [Event("case.linked", {"main": str(main.id), "how": "by hand"})]
        events += [Event("task.cancelled", {"task": t.name}) for t in snapshot.open_tasks.values()]
        events.append(Event("case.stage", {"stage": LINKED, "from": case.status}))
        rows = event_rows(case.id, case.event_seq, now, principal, power, events)
        values = {
            "status": LINKED,
            "next_due": None,
            "event_seq": case.event_seq + len(rows),
            "version": case.version + 1,
            "updated_at": now,
        }
        outcome = Outcome(case.id, LINKED, case.version + 1, rows)
        return Change(
            case.id, case.version, values, rows, [], list(snapshot.open_tasks), outcome=outcome, case_row=case
        )

    return service.uow.run(_case_id(case_id), decide)


def _case_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound("no such case", id=str(value)[:64]) from None


__all__ = [
    "LINKED",
    "RADIUS_M",
    "WINDOW_HOURS",
    "Candidate",
    "Match",
    "Rules",
    "distance_m",
    "find_main",
    "follow",
    "follow_main",
    "link",
    "linked_cases",
    "linked_to",
    "main_of",
    "matters_of",
    "matters_of_record",
    "same_reporter",
    "says_another",
    "unlink",
]
