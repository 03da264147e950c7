"""The supervision projection: counters kept in step with the record, and provably equal to it.

:func:`project` is a unit-of-work projector (``UnitOfWork.projectors``): inside
the transaction that appends a case's events it folds them
(:func:`~govflow.engine.oversight.definitions.fold`) from the case's remembered
context (``oversight_cases``) and adds the increments to ``rate_counters``. So a
counter never misses an event and never counts one twice: both commit or roll
back together.

:func:`recompute` folds the whole event log from scratch, case by case in
sequence order, with the same function; :func:`verify` compares it with the
tables and :func:`rebuild` replaces them (``govflow rates rebuild [--verify]``).
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import JSON, String, Uuid, bindparam, delete, or_, select, text, type_coerce
from sqlalchemy.engine import Connection, Engine

from govflow.engine.cases.unit_of_work import Change
from govflow.engine.oversight.definitions import (
    FOLDED_KINDS,
    FOLDED_PREFIXES,
    CaseContext,
    Increment,
    fold,
    fold_all,
)
from govflow.engine.store.db import CaseEvent, CaseRow, OversightCase, RateCounter

CounterKey = tuple[str, str, str, str, str]  # district, day, unit, matter, metric


def _context_row(ctx: CaseContext, case_id: Any, last_seq: int) -> dict[str, Any]:
    return {
        "case_id": case_id,
        "district": ctx.district,
        "owner": ctx.owner,
        "matter": ctx.matter,
        "handled": ctx.handled,
        "called": ctx.called,
        "stage": ctx.stage,
        "dues": [list(d) for d in ctx.dues],
        "last_seq": last_seq,
    }


#: the two statements the projector runs per commit, written once (the same SQL on SQLite and
#: PostgreSQL; no statement is built or compiled per command)
_ADD_COUNTERS = text(
    "INSERT INTO rate_counters (district, day, unit, matter, metric, value) "
    "VALUES (:district, :day, :unit, :matter, :metric, :value) "
    "ON CONFLICT (district, day, unit, matter, metric) DO UPDATE SET value = rate_counters.value + excluded.value"
)
_PUT_CONTEXT = text(
    "INSERT INTO oversight_cases (case_id, district, owner, matter, handled, called, stage, dues, last_seq) "
    "VALUES (:case_id, :district, :owner, :matter, :handled, :called, :stage, :dues, :last_seq) "
    "ON CONFLICT (case_id) DO UPDATE SET district = excluded.district, owner = excluded.owner, "
    "matter = excluded.matter, handled = excluded.handled, called = excluded.called, stage = excluded.stage, "
    "dues = excluded.dues, last_seq = excluded.last_seq"
).bindparams(bindparam("case_id", type_=Uuid()), bindparam("dues", type_=JSON()))


#: PostgreSQL: the counters and the context in one statement (one round trip per command); the
#: counter rows travel as one JSON text
_PUT_BOTH_PG = text(
    "WITH added AS (INSERT INTO rate_counters (district, day, unit, matter, metric, value) "
    "SELECT r.district, r.day, r.unit, r.matter, r.metric, r.value FROM json_to_recordset(CAST(:rows AS json)) "
    "AS r(district text, day text, unit text, matter text, metric text, value bigint) "
    "ON CONFLICT (district, day, unit, matter, metric) DO UPDATE SET value = rate_counters.value + excluded.value "
    "RETURNING 1) "
    "INSERT INTO oversight_cases (case_id, district, owner, matter, handled, called, stage, dues, last_seq) "
    "VALUES (:case_id, :district, :owner, :matter, :handled, :called, :stage, :dues, :last_seq) "
    "ON CONFLICT (case_id) DO UPDATE SET district = excluded.district, owner = excluded.owner, "
    "matter = excluded.matter, handled = excluded.handled, called = excluded.called, stage = excluded.stage, "
    "dues = excluded.dues, last_seq = excluded.last_seq"
).bindparams(bindparam("case_id", type_=Uuid()), bindparam("dues", type_=JSON()))


def _counter_rows(district: str, increments: Iterable[Increment]) -> list[dict[str, Any]]:
    summed: dict[CounterKey, int] = defaultdict(int)
    for inc in increments:
        summed[(district, inc.day, inc.unit, inc.matter, inc.metric)] += inc.value
    return [
        {"district": k[0], "day": k[1], "unit": k[2], "matter": k[3], "metric": k[4], "value": v}
        for k, v in sorted(summed.items())  # one order everywhere: concurrent writers never deadlock
        if v
    ]


def _add_counters(conn: Connection, district: str, increments: Iterable[Increment]) -> None:
    rows = _counter_rows(district, increments)
    if rows:
        conn.execute(_ADD_COUNTERS, rows)


#: what the projection remembers of one case (built once: no statement is built per command)
_CONTEXT = select(
    OversightCase.district,
    OversightCase.owner,
    OversightCase.matter,
    OversightCase.handled,
    OversightCase.called,
    OversightCase.stage,
    OversightCase.dues,
).where(OversightCase.case_id == bindparam("case_id"))


def project(conn: Connection, changes: Sequence[Change]) -> None:
    """Fold the events of ``changes`` into the counters, in the same transaction (a projector)."""
    for change in changes:
        if not change.events:
            continue
        known = None
        if change.read_version is not None:  # a new case has no context yet and no earlier events
            known = conn.execute(_CONTEXT, {"case_id": change.case_id}).first()
        if change.read_version is None:
            ctx = CaseContext(change.values["district"])
        elif known is not None:
            ctx = CaseContext(
                known.district,
                known.owner,
                known.matter,
                known.handled,
                known.called,
                known.stage,
                tuple(tuple(d) for d in known.dues or ()),
            )
        else:
            ctx = _context_before(conn, change)
        increments: list[Increment] = []
        for event in change.events:
            ctx, more = fold(ctx, event)
            increments += more
        context = _context_row(ctx, change.case_id, change.events[-1]["seq"])
        if conn.dialect.name == "postgresql":
            rows = json.dumps(_counter_rows(ctx.district, increments), ensure_ascii=False)
            conn.execute(_PUT_BOTH_PG, {**context, "rows": rows})
        else:
            _add_counters(conn, ctx.district, increments)
            conn.execute(_PUT_CONTEXT, context)


def _context_before(conn: Connection, change: Change) -> CaseContext:
    """A case the projection has not seen: new, or older than the projection (its earlier events
    were counted by the migration that created the tables; only its context is needed)."""
    district = change.values.get("district")
    if district is None:
        district = conn.execute(select(CaseRow.district).where(CaseRow.id == change.case_id)).scalar_one()
    first_new = change.events[0]["seq"]
    earlier = conn.execute(
        select(CaseEvent.at, CaseEvent.kind, CaseEvent.data)
        .where(CaseEvent.case_id == change.case_id, CaseEvent.seq < first_new)
        .order_by(CaseEvent.seq)
    ).all()
    ctx, _ = fold_all(district, [dict(r._mapping) for r in earlier])
    return ctx


@dataclass
class Recomputed:
    """The projection as a full recomputation from the event log gives it."""

    counters: dict[CounterKey, int] = field(default_factory=dict)
    contexts: dict[Any, dict[str, Any]] = field(default_factory=dict)
    events: int = 0


def recompute(db: Engine, *, batch: int = 5000) -> Recomputed:
    """Fold every case's events from scratch, in sequence order (streamed)."""
    with db.connect() as conn:
        return recompute_on(conn, batch=batch)


def recompute_on(conn: Connection, *, batch: int = 5000) -> Recomputed:
    """:func:`recompute` on an open connection (e.g. inside a schema migration).

    Streams the folded kinds of events case by case; ids, instants and data come as the driver
    gives them (the fold reads ISO strings and JSON text as well as objects), so a million events
    cost the fold and little else.
    """
    out = Recomputed()
    counters: dict[CounterKey, int] = defaultdict(int)
    read = or_(CaseEvent.kind.in_(FOLDED_KINDS), *(CaseEvent.kind.like(f"{p}%") for p in FOLDED_PREFIXES))
    # each case's district and last sequence, read apart: joining them to every event costs more
    cases = {
        case_id: (district, seq)
        for case_id, district, seq in conn.execute(
            select(type_coerce(CaseRow.id, String), CaseRow.district, CaseRow.event_seq)
        )
    }
    query = (
        select(
            type_coerce(CaseEvent.case_id, String),
            type_coerce(CaseEvent.at, String),
            CaseEvent.kind,
            type_coerce(CaseEvent.data, String),
        )
        .where(read)  # only what the fold reads
        .order_by(CaseEvent.case_id, CaseEvent.seq)
        .execution_options(yield_per=batch)
    )
    current: Any = None
    ctx: CaseContext | None = None
    last_seq = 0
    district = ""
    contexts: list[tuple[Any, CaseContext, int]] = []
    events = 0
    loads = json.loads
    for case_id, at, kind, data in conn.execute(query):
        if case_id != current:
            if ctx is not None:
                contexts.append((current, ctx, last_seq))
            district, last_seq = cases[case_id]  # the projector remembers the case's last sequence
            current, ctx = case_id, CaseContext(district)
        assert ctx is not None
        ctx, increments = fold(
            ctx, {"kind": kind, "at": at, "data": loads(data) if isinstance(data, str | bytes) else data}
        )
        events += 1
        for day, unit, matter, metric, value in increments:
            counters[(district, day, unit, matter, metric)] += value
    if ctx is not None:
        contexts.append((current, ctx, last_seq))
    out.events = events
    for case_id, context, seq in contexts:
        key = case_id if isinstance(case_id, uuid.UUID) else uuid.UUID(str(case_id))
        out.contexts[key] = _context_row(context, key, seq)
    out.counters = {k: v for k, v in counters.items() if v}
    return out


def stored(db: Engine) -> Recomputed:
    """The projection as the tables hold it."""
    out = Recomputed()
    with db.connect() as conn:
        for r in conn.execute(select(RateCounter).where(RateCounter.district != GENERATION["district"])):
            if r.value:
                out.counters[(r.district, r.day, r.unit, r.matter, r.metric)] = r.value
        for c in conn.execute(select(OversightCase)):
            out.contexts[c.case_id] = dict(c._mapping)
    return out


@dataclass
class Verification:
    """Differences between the stored projection and a full recomputation (empty: equal)."""

    events: int
    counters: int
    counter_differences: list[tuple[CounterKey, int, int]]
    context_differences: list[Any]

    @property
    def equal(self) -> bool:
        return not self.counter_differences and not self.context_differences


def compare(expected: Recomputed, actual: Recomputed) -> Verification:
    keys = sorted(set(expected.counters) | set(actual.counters))
    counter_diff = [
        (k, expected.counters.get(k, 0), actual.counters.get(k, 0))
        for k in keys
        if expected.counters.get(k, 0) != actual.counters.get(k, 0)
    ]
    context_diff = [
        case_id
        for case_id in sorted(set(expected.contexts) | set(actual.contexts), key=str)
        if expected.contexts.get(case_id) != actual.contexts.get(case_id)
    ]
    return Verification(expected.events, len(expected.counters), counter_diff, context_diff)


def verify(db: Engine) -> Verification:
    """Recompute from the event log and compare with the stored projection."""
    return compare(recompute(db), stored(db))


def rebuild(db: Engine) -> Recomputed:
    """Replace the projection by a full recomputation from the event log (one transaction)."""
    with db.begin() as conn:
        return rebuild_on(conn)


#: the projection's generation: a row of no district that every rebuild moves on. Counters of a past
#: day never change otherwise (every increment lands on the day of its event, and events are
#: appended when they happen), so readers may keep sums of past days until the generation moves.
GENERATION = {"district": "", "day": "", "unit": "", "matter": "", "metric": "generation"}


def generation_on(conn: Connection) -> int:
    """The projection's generation (0 before its first rebuild)."""
    value = conn.execute(
        select(RateCounter.value).where(*(getattr(RateCounter, k) == v for k, v in GENERATION.items()))
    ).scalar()
    return int(value or 0)


def rebuild_on(conn: Connection) -> Recomputed:
    """:func:`rebuild` on an open transaction (the schema migration that adds the tables uses it)."""
    fresh = recompute_on(conn)
    generation = generation_on(conn)
    conn.execute(delete(RateCounter))
    conn.execute(delete(OversightCase))
    conn.execute(_INSERT_COUNTERS, [{**GENERATION, "value": generation + 1}])
    rows = [
        {"district": k[0], "day": k[1], "unit": k[2], "matter": k[3], "metric": k[4], "value": v}
        for k, v in sorted(fresh.counters.items())
    ]
    contexts = list(fresh.contexts.values())
    if conn.dialect.name == "postgresql":  # 10,000 rows as one JSON text: one statement, one round trip
        for statement, table in ((_COPY_COUNTERS_PG, rows), (_COPY_CONTEXTS_PG, contexts)):
            for start in range(0, len(table), 10000):
                chunk = json.dumps(table[start : start + 10000], ensure_ascii=False, default=str)
                conn.execute(statement, {"rows": chunk})
    else:  # one statement executed for many rows (executemany)
        for statement, table in ((_INSERT_COUNTERS, rows), (_PUT_CONTEXT, contexts)):
            for start in range(0, len(table), 10000):
                conn.execute(statement, table[start : start + 10000])
    return fresh


_INSERT_COUNTERS = text(
    "INSERT INTO rate_counters (district, day, unit, matter, metric, value) "
    "VALUES (:district, :day, :unit, :matter, :metric, :value)"
)
_COPY_COUNTERS_PG = text(
    "INSERT INTO rate_counters (district, day, unit, matter, metric, value) "
    "SELECT r.district, r.day, r.unit, r.matter, r.metric, r.value FROM json_to_recordset(CAST(:rows AS json)) "
    "AS r(district text, day text, unit text, matter text, metric text, value bigint)"
)
_COPY_CONTEXTS_PG = text(
    "INSERT INTO oversight_cases (case_id, district, owner, matter, handled, called, stage, dues, last_seq) "
    "SELECT r.case_id, r.district, r.owner, r.matter, r.handled, r.called, r.stage, r.dues, r.last_seq "
    "FROM json_to_recordset(CAST(:rows AS json)) AS r(case_id uuid, district text, owner text, matter text, "
    "handled boolean, called boolean, stage text, dues json, last_seq integer)"
)


def as_mapping(rows: Iterable[Any]) -> Mapping[str, int]:
    return {r.metric: int(r.value) for r in rows}


__all__ = [
    "GENERATION",
    "Recomputed",
    "Verification",
    "compare",
    "generation_on",
    "project",
    "rebuild",
    "recompute",
    "stored",
    "verify",
]
