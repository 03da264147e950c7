"""Scenario defaults from a district's own history (``govflow simulate --from-history``).

Read from the cases and the event record of the district (the last ``days`` days before its
newest case): reports per day, by local hour and weekday; the matter, street and channel mix;
the share of reports without a location; each department's share of rejected calls and its
report-in delays; the residents' ratings and the share who never rated, how many residents report and the share
who withdraw; the call-outs' mutual evaluations; the time each step's
tasks stayed open (an upper bound of the work: it includes the wait in the queue).
The result is a raw scenario: the scenario file's own values stand over it.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from govflow.engine.model.errors import NotFound
from govflow.engine.simulation.scenario import MAX_REPORTERS
from govflow.engine.store.db import CaseEvent, CaseRow

WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _instant(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return _utc(dt.datetime.fromisoformat(value.replace("Z", "+00:00")))


def _lognormal(minutes: list[float]) -> dict[str, Any] | None:
    if len(minutes) < 2:
        return None
    mean = statistics.fmean(minutes)
    if mean <= 0:
        return None
    return {"dist": "lognormal", "mean": round(mean, 2), "sd": round(statistics.stdev(minutes), 2)}


def history_defaults(db: Engine, district: str, tz: dt.tzinfo, *, days: int = 90) -> dict[str, Any]:
    """A raw scenario from the district's record; NotFound when it has no case yet."""
    with db.connect() as conn:
        newest = conn.execute(
            select(CaseRow.created_at).where(CaseRow.district == district).order_by(CaseRow.created_at.desc()).limit(1)
        ).scalar()
        if newest is None:
            raise NotFound(f"district {district!r} has no case in this database: no history to start from")
        since = _utc(newest) - dt.timedelta(days=days)
        cases = conn.execute(
            select(
                CaseRow.id,
                CaseRow.created_at,
                CaseRow.matter,
                CaseRow.owner_unit,
                CaseRow.channel,
                CaseRow.lat,
                CaseRow.reported_by,
            )
            .where(CaseRow.district == district, CaseRow.created_at >= since)
            .order_by(CaseRow.created_at)
        ).all()
        events = conn.execute(
            select(CaseEvent.case_id, CaseEvent.at, CaseEvent.kind, CaseEvent.data)
            .join(CaseRow, CaseRow.id == CaseEvent.case_id)
            .where(
                CaseRow.district == district,
                CaseRow.created_at >= since,
                CaseEvent.kind.in_(("task.completed", "rating.given", "case.routed", "case.withdrawn")),
            )
            .order_by(CaseEvent.case_id, CaseEvent.seq)
        ).all()
    local = [_utc(c.created_at).astimezone(tz) for c in cases]
    span = max(1, (local[-1].date() - local[0].date()).days + 1)
    hours = Counter(t.hour for t in local)
    weekdays = Counter(t.weekday() for t in local)
    weeks = max(1.0, span / 7)
    per_weekday = [weekdays.get(d, 0) / weeks for d in range(7)]
    mean_day = statistics.fmean(per_weekday) or 1.0
    streets = Counter(c.owner_unit for c in cases if c.owner_unit)
    raw: dict[str, Any] = {
        "arrivals": {
            "per_day": round(len(cases) / span, 2),
            "hour_of_day": [hours.get(h, 0) for h in range(24)],
            "day_of_week": {WEEKDAY_NAMES[d]: round(per_weekday[d] / mean_day, 3) for d in range(7)},
            "channels": dict(Counter(c.channel for c in cases)),
            "unlocated": round(sum(1 for c in cases if c.lat is None) / len(cases), 4),
        },
        "matters": dict(Counter(c.matter for c in cases if c.matter)),
        "streets": dict(streets),
    }
    if sum(hours.values()) == 0:
        del raw["arrivals"]["hour_of_day"]
    steps: dict[str, list[float]] = defaultdict(list)
    delays: dict[str, list[float]] = defaultdict(list)
    rejected: Counter[str] = Counter()
    answered: Counter[str] = Counter()
    ratings: Counter[int] = Counter()
    mutual: dict[str, Counter[int]] = defaultdict(Counter)  # the call-outs' mutual evaluations
    withdrawn = 0
    for event in events:
        data = event.data or {}
        withdrawn += event.kind == "case.withdrawn"
        if event.kind == "rating.given" and data.get("dimension") == "satisfaction":
            ratings[int(data.get("score", 0))] += 1
        elif event.kind == "rating.given" and data.get("dimension") in ("report_in", "disposal", "accuracy"):
            mutual[data["dimension"]][int(data.get("score", 0))] += 1
        if event.kind != "task.completed":
            continue
        opened, at = _instant(data.get("opened_at")), _utc(event.at)
        minutes = (at - opened).total_seconds() / 60 if opened else None
        if data.get("role") == "report_in" and data.get("unit"):
            answered[data["unit"]] += 1
            rejected[data["unit"]] += int((data.get("form") or {}).get("decision") == "reject")
            if minutes is not None:
                delays[data["unit"]].append(minutes)
        elif minutes is not None and data.get("task"):
            steps[data["task"]].append(minutes)
    handling = {step: d for step, values in sorted(steps.items()) if (d := _lognormal(values))}
    if handling:
        raw["handling"] = {"steps": handling}
    units = {}
    for unit in sorted(answered):
        entry: dict[str, Any] = {"reject": round(rejected[unit] / answered[unit], 4)}
        if delay := _lognormal(delays[unit]):
            entry["report_in_delay"] = delay
        units[unit] = entry
    if units:
        raw["departments"] = {"units": units}
    residents: dict[str, Any] = {
        "reporters": max(1, min(MAX_REPORTERS, len({c.reported_by for c in cases if c.reported_by}))),
        "withdraw": round(withdrawn / len(cases), 4),
    }
    if ratings:
        residents["ratings"] = {s: n for s, n in sorted(ratings.items()) if 1 <= s <= 5}
    raw["residents"] = residents
    evaluations = {
        dimension: {s: n for s, n in sorted(scores.items()) if 1 <= s <= 5}
        for dimension, scores in sorted(mutual.items())
        if any(1 <= s <= 5 for s in scores)
    }
    if evaluations:
        raw["evaluations"] = evaluations
    return raw


__all__ = ["history_defaults"]
