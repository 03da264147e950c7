"""A district's past cases, for smart dispatch's "matching against historical cases".

Past cases are those whose matter was confirmed by the people who worked them:
closed cases that were not withdrawn and carry a matter. :class:`CaseHistory`
reads the most recent :attr:`CaseHistory.LIMIT` of them per district — never the
whole history — and keeps that snapshot for :attr:`CaseHistory.TTL`. The
dispatch plugin builds its scorer once per :class:`PastCases` snapshot (and
pack version), so the cost of a refresh is bounded too: about a second of one
core for a full snapshot, once per district every TTL.
Only the description and the matter are read — never personal data.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.engine import Engine

from govflow.engine.model.clock import Clock
from govflow.engine.store.db import CaseRow


@dataclass(frozen=True)
class PastCase:
    """A past case as dispatch sees it: what was reported and which matter it turned out to be."""

    description: str
    matter: str


@dataclass(eq=False)
class PastCases:
    """The past cases of one district at one moment (identity-hashed: a cache key for indexes)."""

    district: str
    cases: tuple[PastCase, ...]
    loaded_at: dt.datetime | None = None
    meta: dict[str, object] = field(default_factory=dict)


class CaseHistory:
    """Past cases per district, read from the case table and cached."""

    #: the most recent closed cases read per district (bounds memory and the dispatch scorer's build time)
    LIMIT = 5_000
    #: how long a snapshot is used before it is read again
    TTL = dt.timedelta(minutes=10)

    def __init__(self, db: Engine, clock: Clock) -> None:
        self._db = db
        self._clock = clock
        self._cache: dict[str, PastCases] = {}
        self._lock = threading.Lock()

    def past_cases(self, district: str) -> PastCases:
        """The district's closed, not withdrawn cases with a matter (most recent first)."""
        now = self._clock.now()
        hit = self._cache.get(district)
        if hit is not None and hit.loaded_at is not None and now - hit.loaded_at < self.TTL:
            return hit
        query = (
            select(CaseRow.description, CaseRow.matter)
            .where(
                CaseRow.district == district,
                CaseRow.closed_at.is_not(None),
                CaseRow.matter.is_not(None),
                CaseRow.status != "withdrawn",
            )
            .order_by(CaseRow.closed_at.desc())
            .limit(self.LIMIT)
        )
        with self._db.connect() as conn:
            cases = tuple(PastCase(row.description, row.matter) for row in conn.execute(query))
        fresh = PastCases(district, cases, now)
        with self._lock:
            self._cache[district] = fresh
        return fresh

    def forget(self, district: str | None = None) -> None:
        """Drop cached past cases (all districts, or one) so the next look-up reads them again."""
        with self._lock:
            if district is None:
                self._cache.clear()
            else:
                self._cache.pop(district, None)


class StaticHistory:
    """Fixed past cases (for offline evaluation such as ``bench/bench_dispatch.py``)."""

    def __init__(self, district: str, cases: list[PastCase]) -> None:
        self._past = PastCases(district, tuple(cases))

    def past_cases(self, district: str) -> PastCases:
        return self._past if district == self._past.district else PastCases(district, ())


@dataclass(frozen=True)
class Correction:
    """A report whose matter a person decided (the command centre's dispatch task): a labelled example."""

    case_id: str
    description: str
    matter: str
    at: dt.datetime


def dispatch_corrections(db: Engine, district: str, limit: int = 50_000) -> list[Correction]:
    """The district's reports the command centre dispatched or re-categorised by hand (``case.dispatched``
    events with a matter), the latest decision per case, oldest first. Only descriptions and matters."""
    from govflow.engine.store.db import CaseEvent

    query = (
        select(CaseEvent.case_id, CaseEvent.data, CaseEvent.at, CaseRow.description)
        .join(CaseRow, CaseRow.id == CaseEvent.case_id)
        .where(CaseRow.district == district, CaseEvent.kind == "case.dispatched")
        .order_by(CaseEvent.at, CaseEvent.seq)
        .limit(limit)
    )
    latest: dict[str, Correction] = {}
    with db.connect() as conn:
        for row in conn.execute(query):
            matter = (row.data or {}).get("matter")
            if matter:
                latest[str(row.case_id)] = Correction(str(row.case_id), row.description, str(matter), row.at)
    return sorted(latest.values(), key=lambda c: c.at)
