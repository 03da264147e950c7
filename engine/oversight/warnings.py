"""Early warning (预警研判): recurring, rising and bursting problems, before residents complain.

:func:`scan` looks at the district's own record and raises a warning when what
it sees is improbable under the district's own baseline:

* **burst** — one street × matter in the last ``BURST_HOURS`` hours (e.g. after
  a storm): ``P(X ≥ observed)`` under a Poisson law whose rate is that street ×
  matter's mean over the previous ``BASELINE_DAYS`` days, scaled to the window,
  below ``BURST_P`` with at least ``BURST_MIN`` reports;
* **rising** — one street × matter in the current week (the last 7 local days)
  against the mean of the ``BASELINE_WEEKS`` weeks before: Poisson tail below
  ``RISING_P`` with at least ``RISING_MIN`` reports;
* **repeat** — reports of one matter at the same place (a grid cell of about
  100 m) within ``REPEAT_DAYS`` days, at least ``REPEAT_MIN`` of them.

Baselines are floored (``MIN_RATE``) so a street × matter that never had a case
does not warn on its first two. Every warning is appended to ``warnings`` (never
updated; one per kind, unit, matter, place and window) with its evidence — the
counts, the baseline, the probability and the cases — and handed to the
``govflow_warnings`` notification hook. The command centre may open a
**campaign** (专项治理) from a warning: a case at the command centre whose record
links the related cases, each of which gets ``campaign.linked`` on its own record.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from govflow.engine.oversight.definitions import LOCAL_TZ
from govflow.engine.store.db import CaseRow, EarlyWarning, RateCounter

BURST_HOURS = 24
BASELINE_DAYS = 28
BURST_P = 0.001
BURST_MIN = 5
BASELINE_WEEKS = 8
RISING_P = 0.01
RISING_MIN = 4
REPEAT_DAYS = 30
REPEAT_MIN = 3
GRID_DEGREES = 0.001  # about 111 m north–south, 100 m east–west at Fuzhou's latitude
MIN_RATE = 0.5 / 7  # a floor of half a case a week


def poisson_tail(observed: int, rate: float) -> float:
    """P(X ≥ observed) for X ~ Poisson(rate)."""
    if observed <= 0:
        return 1.0
    term = math.exp(-rate)
    below = term
    for i in range(1, observed):
        term *= rate / i
        below += term
    return max(0.0, 1.0 - below)


@dataclass(frozen=True)
class Found:
    kind: str
    unit: str
    matter: str
    place: str
    window_start: dt.datetime
    window_end: dt.datetime
    observed: int
    expected: float
    p_value: float | None
    cases: list[str]


def _day(at: dt.datetime) -> dt.date:
    return at.astimezone(LOCAL_TZ).date()


def _received_by_day(db: Engine, district: str, first: dt.date, last: dt.date) -> dict[tuple[str, str], dict[str, int]]:
    query = (
        select(RateCounter.unit, RateCounter.matter, RateCounter.day, func.sum(RateCounter.value))
        .where(
            RateCounter.district == district,
            RateCounter.metric == "received",
            RateCounter.day >= first.isoformat(),
            RateCounter.day <= last.isoformat(),
            RateCounter.matter != "",
        )
        .group_by(RateCounter.unit, RateCounter.matter, RateCounter.day)
    )
    out: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    with db.connect() as conn:
        for unit, matter, day, value in conn.execute(query):
            out[(unit, matter)][day] = int(value)
    return out


def _recent_cases(db: Engine, district: str, since: dt.datetime) -> list[Any]:
    query = select(CaseRow.id, CaseRow.owner_unit, CaseRow.matter, CaseRow.lat, CaseRow.lng, CaseRow.created_at).where(
        CaseRow.district == district, CaseRow.created_at >= since, CaseRow.matter.is_not(None)
    )
    with db.connect() as conn:
        return list(conn.execute(query).all())


def detect(db: Engine, district: str, now: dt.datetime, streets: Sequence[str]) -> list[Found]:
    """Every warning the record supports now (pure reading; :func:`scan` records them)."""
    found: list[Found] = []
    today = _day(now)
    street_set = set(streets)
    # -- burst: the last BURST_HOURS against the previous BASELINE_DAYS days --------------------
    since = now - dt.timedelta(hours=BURST_HOURS)
    recent = _recent_cases(db, district, now - dt.timedelta(days=max(REPEAT_DAYS, 1)))
    in_window: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for case in recent:
        if case.created_at >= since and case.owner_unit in street_set:
            in_window[(case.owner_unit, case.matter)].append(case)
    history = _received_by_day(db, district, today - dt.timedelta(days=BASELINE_DAYS + 1), today)
    window_days = {(today - dt.timedelta(days=d)).isoformat() for d in range(2)}
    for (unit, matter), cases in in_window.items():
        past = sum(v for day, v in history.get((unit, matter), {}).items() if day not in window_days)
        rate = max(past / BASELINE_DAYS, MIN_RATE) * BURST_HOURS / 24
        p = poisson_tail(len(cases), rate)
        if len(cases) >= BURST_MIN and p < BURST_P:
            found.append(
                Found("burst", unit, matter, "", since, now, len(cases), rate, p, sorted(str(c.id) for c in cases))
            )
    # -- rising: this week against the BASELINE_WEEKS weeks before ------------------------------
    week_start = today - dt.timedelta(days=6)
    weekly = _received_by_day(db, district, week_start - dt.timedelta(weeks=BASELINE_WEEKS), today)
    for (unit, matter), days in weekly.items():
        if unit not in street_set:
            continue
        current = sum(v for day, v in days.items() if day >= week_start.isoformat())
        before = sum(v for day, v in days.items() if day < week_start.isoformat())
        rate = max(before / BASELINE_WEEKS, MIN_RATE * 7)
        p = poisson_tail(current, rate)
        if current >= RISING_MIN and p < RISING_P:
            start = dt.datetime.combine(week_start, dt.time(), LOCAL_TZ).astimezone(dt.UTC)
            cases = sorted(
                str(c.id)
                for c in recent
                if c.owner_unit == unit and c.matter == matter and _day(c.created_at) >= week_start
            )
            found.append(Found("rising", unit, matter, "", start, now, current, rate, p, cases))
    # -- repeat: the same matter at the same place ----------------------------------------------
    cells: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for case in recent:
        if case.lat is not None and case.lng is not None:
            cell = f"{round(case.lat / GRID_DEGREES)}:{round(case.lng / GRID_DEGREES)}"
            cells[(case.matter, cell)].append(case)
    for (matter, cell), cases in cells.items():
        if len(cases) >= REPEAT_MIN:
            owners = sorted({c.owner_unit or "" for c in cases})
            first = min(c.created_at for c in cases)
            found.append(
                Found(
                    "repeat",
                    owners[0] if len(owners) == 1 else "",
                    matter,
                    cell,
                    first,
                    now,
                    len(cases),
                    0.0,
                    None,
                    sorted(str(c.id) for c in cases),
                )
            )
    return found


def _window_key(found: Found) -> str:
    """The window a warning is about, coarse enough that a rescan does not raise it again."""
    if found.kind == "burst":
        return found.window_end.astimezone(LOCAL_TZ).strftime("%Y-%m-%d")
    if found.kind == "rising":
        return _day(found.window_start).isoformat()
    return found.cases[0]  # repeat: keyed by the first case of the cluster


def scan(
    db: Engine, district: str, now: dt.datetime, streets: Sequence[str], notify: Callable[[list[dict[str, Any]]], None]
) -> list[dict[str, Any]]:
    """Record every new warning (one per kind, unit, matter, place and window) and notify; returns them."""
    raised: list[dict[str, Any]] = []
    for item in detect(db, district, now, streets):
        row = {
            "id": uuid.uuid4(),
            "district": district,
            "kind": item.kind,
            "unit": item.unit,
            "matter": item.matter,
            "place": item.place,
            "window_key": _window_key(item),
            "raised_at": now,
            "evidence": {
                "window_start": item.window_start.isoformat(),
                "window_end": item.window_end.isoformat(),
                "observed": item.observed,
                "expected": round(item.expected, 4),
                "p_value": item.p_value,
                "cases": item.cases,
            },
        }
        try:
            with db.begin() as conn:
                conn.execute(insert(EarlyWarning), row)
        except IntegrityError:
            continue  # raised before for this window
        raised.append(row)
    if raised:
        notify(raised)
    return raised


def view(row: Any) -> dict[str, Any]:
    """A warning as the API shows it (no personal data: case ids, counts, codes)."""
    data = dict(row._mapping) if hasattr(row, "_mapping") else dict(row)
    return {
        "id": str(data["id"]),
        "district": data["district"],
        "kind": data["kind"],
        "unit": data["unit"] or None,
        "matter": data["matter"],
        "place": data["place"] or None,
        "raised_at": data["raised_at"],
        "evidence": data["evidence"],
    }


__all__ = ["Found", "detect", "poisson_tail", "scan", "view"]
