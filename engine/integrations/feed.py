"""The change feed (also the outbox): every committed case event, in commit order, without personal data.

Writing
-------
:class:`FeedProjector` is a projector of the unit of work: it runs inside the transaction of
every command and every timer batch, after the case rows are written, and appends one
``feed_events`` row per event. Positions come from the one-row table ``feed_head`` (an upsert: the statement also recreates the row)::

    INSERT INTO feed_head VALUES (1, :n)
        ON CONFLICT (id) DO UPDATE SET position = feed_head.position + :n RETURNING position

The row stays locked until the transaction ends, so a second committer waits there until the
first has committed (or rolled back) and then continues from its value. Positions are therefore
handed out in **commit order** and without gaps: a transaction holding positions ≤ N has always
committed before any transaction that holds a position > N could take one. A reader that has seen
position N can never later find a smaller one appear — the property a sequence or an
autoincrement id lacks on PostgreSQL, where values are taken before commit and a slow transaction
can commit a smaller id after a reader has moved past it. On SQLite writers are serialised by the
database anyway; the same statement serves both (on PostgreSQL the upsert and the insert of the
events are one statement, a data-modifying CTE: one round trip less per commit). The cost is that the last few statements of
concurrent commits (the feed insert and the commit itself) run one at a time; see
``docs/integrations.md`` for the alternatives weighed (an advisory lock with a sequence, a safe
horizon from ``pg_snapshot_xmin``).

Reading
-------
:class:`Feed` answers ``GET /api/v1/feed?after=CURSOR&limit=N``: the events of the cases the
caller may read (Casbin ``read_feed`` in the caller's own domain, then ``read_case`` per owner
unit at the time of the event; a reporter's own cases; a called department's cases), in position
order, after the cursor. The cursor is opaque to callers (base64 of a versioned position).

What an event shows
-------------------
:func:`public_event` keeps the case id, sequence, time, kind, district, owner unit and the
event's data, and removes personal data: the reporter's principal id becomes ``"reporter"``
wherever it appears, other citizens' ids ``"citizen"``; keys naming personal data (names, phones,
e-mail, attendees, comments, addresses) are dropped at any depth; and free text the reporter
wrote (a withdrawal reason, an evaluation's form) is left out. The case's reporter name and phone
never reach an event in the first place.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Text, and_, bindparam, cast, false, insert, or_, select, text
from sqlalchemy.engine import Connection, Engine

from govflow.engine.access.identity import Principal
from govflow.engine.model.clock import iso, to_utc
from govflow.engine.model.errors import InvalidInput, PermissionDenied
from govflow.engine.store.db import CaseParty, CaseRow, FeedEvent, FeedHead

if TYPE_CHECKING:
    from govflow.engine.cases.unit_of_work import Change

#: the feed is split by case into this many shards; a sink's stream per shard keeps per-case order
SHARDS = 16
#: page size of a feed read: default and most
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
#: keys that name personal data; dropped wherever they appear in an event's data
PERSONAL_KEYS = frozenset(
    {
        "name",
        "phone",
        "email",
        "first_name",
        "last_name",
        "reporter",
        "reporter_name",
        "reporter_phone",
        "attendee",
        "comment",
        "address",
        "account_id",
        "device_id",
    }
)
#: free text a reporter writes; left out of events the reporter (or another citizen) acted in
REPORTER_TEXT_KEYS = frozenset({"reason", "form"})
_CURSOR_PREFIX = "feed.v1."


def shard_of(case_id: uuid.UUID) -> int:
    """The shard of a case (stable: derived from its id)."""
    return case_id.int % SHARDS


def event_id(case_id: uuid.UUID | str, seq: int) -> str:
    """An event's identity for de-duplication: ``<case id>:<sequence>``."""
    return f"{case_id}:{seq}"


def encode_cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{position}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The position a cursor stands for (0 for none); InvalidInput for anything else."""
    if cursor is None or cursor == "":
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        text = ""
    number = text.removeprefix(_CURSOR_PREFIX)
    if not text.startswith(_CURSOR_PREFIX) or not number.isdigit() or len(number) > 18:
        raise InvalidInput(
            "not a feed cursor", errors=[{"loc": ["query", "after"], "msg": "use a cursor the feed handed out"}]
        )
    return int(number)


def _scrub(value: Any, reporter: str) -> Any:
    if isinstance(value, Mapping):
        return {k: _scrub(v, reporter) for k, v in value.items() if k not in PERSONAL_KEYS}
    if isinstance(value, list | tuple):
        return [_scrub(v, reporter) for v in value]
    if isinstance(value, str) and value == reporter:
        return "reporter"
    return value


def public_actor(actor: str, actor_unit: str | None, reporter: str) -> str:
    """Staff and systems by id; the reporter as ``reporter``; any other citizen as ``citizen``."""
    if actor == reporter:
        return "reporter"
    if actor_unit is None and not actor.startswith("system."):
        return "citizen"
    return actor


def public_event(event: Mapping[str, Any], *, district: str, unit: str | None, reporter: str) -> dict[str, Any]:
    """The form of an event that leaves govflow (feed, webhooks, brokers): no personal data."""
    actor = public_actor(event["actor"], event.get("actor_unit"), reporter)
    data = dict(event.get("data") or {})
    if actor in ("reporter", "citizen"):
        data = {k: v for k, v in data.items() if k not in REPORTER_TEXT_KEYS}
    at = event["at"]
    return {
        "id": event_id(event["case_id"], event["seq"]),
        "case_id": str(event["case_id"]),
        "seq": event["seq"],
        "kind": event["kind"],
        "at": iso(at) if isinstance(at, dt.datetime) else str(at),
        "district": district,
        "unit": unit,
        "actor": actor,
        "actor_unit": event.get("actor_unit"),
        "data": _scrub(data, reporter),
    }


#: the statements of every commit, built once (building SQLAlchemy expressions costs more than running them)
_CASES_OF = select(CaseRow.id, CaseRow.district, CaseRow.owner_unit, CaseRow.reported_by).where(
    CaseRow.id.in_(bindparam("ids", expanding=True))
)
_INSERT_EVENTS = insert(FeedEvent)
#: an upsert, so an emptied table (a test's truncation, a restored dump) starts again at 1; the same SQL
#: on PostgreSQL and SQLite (3.35+)
_TAKE = text(
    "INSERT INTO feed_head (id, position) VALUES (1, :n) "
    "ON CONFLICT (id) DO UPDATE SET position = feed_head.position + excluded.position RETURNING position"
)


#: PostgreSQL: the positions taken and the events inserted by one statement (the upsert of _TAKE in a
#: CTE; the rows as one JSON text, each with its offset ``o``): one round trip per commit instead of two
_TAKE_AND_INSERT_PG = text(
    "WITH head AS (INSERT INTO feed_head (id, position) VALUES (1, :n) "
    "ON CONFLICT (id) DO UPDATE SET position = feed_head.position + excluded.position RETURNING position) "
    "INSERT INTO feed_events (position, case_id, seq, at, kind, district, unit, reporter, shard, payload) "
    "SELECT head.position - :n + e.o, e.case_id, e.seq, e.at, e.kind, e.district, e.unit, e.reporter, e.shard, "
    "e.payload FROM head, json_to_recordset(CAST(:rows AS json)) AS e(o integer, case_id uuid, seq integer, "
    "at timestamptz, kind text, district text, unit text, reporter text, shard integer, payload json)"
)


def _as_json(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The parameters of :data:`_TAKE_AND_INSERT_PG` (one JSON text: a driver dumps arrays slowly)."""
    return {
        "n": len(rows),
        "rows": json.dumps(
            [
                {**r, "o": offset, "case_id": str(r["case_id"]), "at": to_utc(r["at"]).isoformat()}
                for offset, r in enumerate(rows, start=1)
            ]
        ),
    }


@dataclass(frozen=True)
class _Case:
    district: str
    owner_unit: str | None
    reported_by: str


class FeedProjector:
    """Appends the committed events to the feed inside the commit's transaction (see module doc).

    ``on_append`` callables are told (after the rows are written, before the commit) that new
    positions exist — the in-process delivery loop uses it to wake up early.
    """

    def __init__(self) -> None:
        self.on_append: list[Callable[[], None]] = []

    def __call__(self, conn: Connection, changes: Sequence[Change]) -> None:
        events = [e for change in changes for e in change.events]
        if not events:
            return
        # a new case's change carries its row; others are read back (the row as this transaction wrote it)
        cases: dict[Any, Any] = {
            c.case_id: _Case(c.values["district"], c.values.get("owner_unit"), c.values["reported_by"])
            for c in changes
            if c.read_version is None
        }
        for c in changes:  # a command's change carries the row it read (district and reporter never change)
            read = c.case_row
            if c.case_id not in cases and read is not None and hasattr(read, "owner_unit"):
                cases[c.case_id] = _Case(read.district, c.values.get("owner_unit", read.owner_unit), read.reported_by)
        missing = [cid for cid in dict.fromkeys(e["case_id"] for e in events) if cid not in cases]
        if missing:
            cases.update({row.id: row for row in conn.execute(_CASES_OF, {"ids": missing})})
        rows = []
        for event in events:
            case = cases[event["case_id"]]
            rows.append(
                {
                    "case_id": event["case_id"],
                    "seq": event["seq"],
                    "at": event["at"],
                    "kind": event["kind"],
                    "district": case.district,
                    "unit": case.owner_unit,
                    "reporter": case.reported_by,
                    "shard": shard_of(event["case_id"]),
                    "payload": public_event(
                        event, district=case.district, unit=case.owner_unit, reporter=case.reported_by
                    ),
                }
            )
        # last: from here to the commit, other committers wait on this row (commit order)
        if conn.dialect.name == "postgresql":
            conn.execute(_TAKE_AND_INSERT_PG, _as_json(rows))  # one round trip for both
            for wake in self.on_append:
                wake()
            return
        last = take_positions(conn, len(rows))
        first = last - len(rows) + 1
        for offset, row in enumerate(rows):
            row["position"] = first + offset
        conn.execute(_INSERT_EVENTS, rows)
        for wake in self.on_append:
            wake()


def take_positions(conn: Connection, count: int) -> int:
    """Take ``count`` positions; returns the last. Locks the head row until the transaction ends."""
    return int(conn.execute(_TAKE, {"n": count}).scalar_one())


def head(conn: Connection) -> int:
    """The last position handed out; every position up to it is committed or never will be."""
    return int(conn.execute(select(FeedHead.position).where(FeedHead.id == 1)).scalar() or 0)


@dataclass(frozen=True)
class Visibility:
    """Which feed rows a principal may read: whole districts, some units of districts, own reports, parties."""

    principal: str
    districts: frozenset[str] = frozenset()
    units: Mapping[str, frozenset[str]] = field(default_factory=dict)
    party_unit: str | None = None

    def condition(self) -> Any:
        clauses: list[Any] = [FeedEvent.reporter == self.principal]
        if self.districts:
            clauses.append(FeedEvent.district.in_(sorted(self.districts)))
        for district, units in sorted(self.units.items()):
            if units:
                clauses.append(and_(FeedEvent.district == district, FeedEvent.unit.in_(sorted(units))))
        if self.party_unit:
            clauses.append(
                FeedEvent.case_id.in_(select(CaseParty.case_id).where(CaseParty.unit_code == self.party_unit))
            )
        return or_(*clauses) if clauses else false()


@dataclass(frozen=True)
class FeedPage:
    events: list[dict[str, Any]]
    next: str
    has_more: bool


class Feed:
    """Reads of the change feed, as a principal may see it (see module doc)."""

    def __init__(self, db: Engine, packs: Any, access: Any) -> None:
        self.db, self.packs, self.access = db, packs, access

    def visibility(
        self, principal: Principal, *, action: str = "read_feed", districts: Iterable[str] | None = None
    ) -> Visibility:
        """What ``principal`` may read; PermissionDenied when ``action`` is allowed in no district."""
        whole: set[str] = set()
        some: dict[str, frozenset[str]] = {}
        allowed_anywhere = False
        for district in districts if districts is not None else self.packs.districts():
            pack = self.packs.active(district)
            catalog = pack.catalog
            authz = self.access.authorizer(pack, principal)
            home = catalog.domain_of(principal.unit if principal.unit in catalog.units else None)
            if not authz.allowed(principal.id, home, action):
                continue
            allowed_anywhere = True
            units = frozenset(
                u for u in catalog.units if authz.allowed(principal.id, catalog.domain_of(u), "read_case")
            )
            if units == frozenset(catalog.units):
                whole.add(district)
            elif units:
                some[district] = units
        if not allowed_anywhere:
            raise PermissionDenied(f"{principal.id} may not {action.replace('_', ' ')}", principal=principal.id)
        return Visibility(principal.id, frozenset(whole), some, principal.unit)

    def _rows(self, principal: Principal, after: str | None, limit: int, payload: Any) -> tuple[list[Any], bool, int]:
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidInput(
                f"limit must be 1 to {MAX_LIMIT}", errors=[{"loc": ["query", "limit"], "msg": f"1 to {MAX_LIMIT}"}]
            )
        position = decode_cursor(after)
        condition = self.visibility(principal).condition()
        query = (
            select(FeedEvent.position, payload.label("payload"))
            .where(FeedEvent.position > position, condition)
            .order_by(FeedEvent.position)
            .limit(limit + 1)
        )
        with self.db.connect() as conn:
            rows = conn.execute(query).all()
        return list(rows[:limit]), len(rows) > limit, position

    def read(self, principal: Principal, after: str | None = None, limit: int = DEFAULT_LIMIT) -> FeedPage:
        """The caller's events after ``after``, oldest first, at most ``limit`` (1 to 1000)."""
        rows, more, position = self._rows(principal, after, limit, FeedEvent.payload)
        events = [{**row.payload, "cursor": encode_cursor(row.position)} for row in rows]
        return FeedPage(events, encode_cursor(rows[-1].position) if rows else encode_cursor(position), more)

    def read_json(self, principal: Principal, after: str | None = None, limit: int = DEFAULT_LIMIT) -> bytes:
        """The same page as :meth:`read`, as the JSON the API sends: the stored payloads are spliced in
        as they are (no parse, no re-serialisation: a page is up to 1,000 events)."""
        rows, more, position = self._rows(principal, after, limit, cast(FeedEvent.payload, Text))
        parts = []
        for row in rows:
            text_ = row.payload.rstrip()
            if not text_.endswith("}"):  # pragma: no cover - a payload is always a JSON object
                raise ValueError(f"feed position {row.position} holds no JSON object")
            parts.append(f'{text_[:-1]},"cursor":"{encode_cursor(row.position)}"}}')
        following = encode_cursor(rows[-1].position) if rows else encode_cursor(position)
        body = '{"events":[' + ",".join(parts) + f'],"next":"{following}","has_more":{"true" if more else "false"}}}'
        return body.encode()


__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "PERSONAL_KEYS",
    "SHARDS",
    "Feed",
    "FeedPage",
    "FeedProjector",
    "Visibility",
    "decode_cursor",
    "encode_cursor",
    "event_id",
    "head",
    "public_actor",
    "public_event",
    "shard_of",
    "take_positions",
]
