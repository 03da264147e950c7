"""Working time: deadlines in minutes, working hours or working days.

A :class:`WorkCalendar` says which days are working days (the built-in plugin
uses China's statutory holidays and adjusted working days 调休, plus a pack's
local closures). :class:`WorkingTime` adds working time to an instant in the
district's time zone and office hours (pack ``settings.working_hours``):

* ``minutes``: plain elapsed time (a 10-minute sign-for limit runs at night too);
* ``working_hours``: counted only inside office hours on working days;
* ``working_days``: N × the length of a working day of office hours, so from
  inside office hours it lands at the same clock time N working days later,
  and from outside them at the end of the Nth working day.

:class:`DeadlinePolicy` reads ``settings.deadlines`` (tier → step → limit) and
gives the due time and the reminder time (``reminder_at`` of the limit, 0.75 by
default) of a step. Diagrams reach it through the sandbox functions
``due(step, tier)`` and ``remind(step, tier)`` in timer expressions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from govflow.engine.model.errors import EngineFault, PackIssue

UNITS = ("minutes", "working_hours", "working_days")
from govflow.engine.model.limits import TIERS  # noqa: E402  (one definition: limits)

DEFAULT_HOURS = (("08:30", "12:00"), ("14:30", "17:30"))


class WorkCalendar(Protocol):
    """Which days are working days."""

    def is_workday(self, day: dt.date) -> bool: ...


class WeekdayCalendar:
    """Monday to Friday, no holidays: the fallback when no plugin answers."""

    def is_workday(self, day: dt.date) -> bool:
        return day.weekday() < 5


@dataclass(frozen=True)
class Limit:
    amount: float
    unit: str

    def __str__(self) -> str:
        return f"{self.amount:g} {self.unit.replace('_', ' ')}"


@dataclass
class WorkingTime:
    calendar: WorkCalendar
    tz: dt.tzinfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    periods: tuple[tuple[dt.time, dt.time], ...] = ()

    def __post_init__(self) -> None:
        if not self.periods:
            self.periods = tuple((dt.time.fromisoformat(a), dt.time.fromisoformat(b)) for a, b in DEFAULT_HOURS)

    @property
    def minutes_per_day(self) -> float:
        return sum((_minutes(b) - _minutes(a)) for a, b in self.periods)

    def add(self, start: dt.datetime, limit: Limit) -> dt.datetime:
        """``start`` plus ``limit`` (aware UTC in, aware UTC out)."""
        if limit.unit == "minutes":
            return start + dt.timedelta(minutes=limit.amount)
        minutes = limit.amount * (60 if limit.unit == "working_hours" else self.minutes_per_day)
        return self.add_working_minutes(start, minutes)

    def add_working_minutes(self, start: dt.datetime, minutes: float) -> dt.datetime:
        local = start.astimezone(self.tz)
        remaining = dt.timedelta(minutes=minutes)
        day = local.date()
        for _ in range(3700):  # bounded: ten years of days
            if self.calendar.is_workday(day):
                for begin, end in self.periods:
                    period_start = dt.datetime.combine(day, begin, self.tz)
                    period_end = dt.datetime.combine(day, end, self.tz)
                    if local >= period_end:
                        continue
                    cursor = max(local, period_start)
                    available = period_end - cursor
                    if remaining <= available:
                        return (cursor + remaining).astimezone(dt.UTC)
                    remaining -= available
                    local = period_end
            day += dt.timedelta(days=1)
            local = max(local, dt.datetime.combine(day, dt.time(0), self.tz))
        raise EngineFault("no working time found within ten years (check the calendar)")


def _minutes(value: dt.time) -> float:
    return value.hour * 60 + value.minute + value.second / 60


@dataclass
class DeadlinePolicy:
    """Limits per tier and step, from pack settings, on a district's working time."""

    limits: dict[str, dict[str, Limit]]
    working_time: WorkingTime
    reminder_at: float = 0.75

    def limit(self, step: str, tier: str | None) -> Limit:
        tier = tier if tier in self.limits else "complex"
        try:
            return self.limits[tier][step]
        except KeyError:
            raise EngineFault(f"the pack sets no {step!r} deadline for tier {tier!r} (settings.deadlines)") from None

    def due(self, step: str, tier: str | None, now: dt.datetime) -> dt.datetime:
        return self.working_time.add(now, self.limit(step, tier))

    def remind(self, step: str, tier: str | None, now: dt.datetime) -> dt.datetime:
        limit = self.limit(step, tier)
        return self.working_time.add(now, Limit(limit.amount * self.reminder_at, limit.unit))


def parse_deadline_settings(
    settings: Mapping[str, Any], calendar: WorkCalendar, filename: str = "pack.yaml"
) -> tuple[DeadlinePolicy | None, list[PackIssue]]:
    """Read ``settings.timezone``, ``working_hours``, ``deadlines`` and ``reminder_at``."""
    issues: list[PackIssue] = []
    try:
        tz = ZoneInfo(str(settings.get("timezone", "Asia/Shanghai")))
    except Exception:
        issues.append(PackIssue(filename, f"settings.timezone {settings.get('timezone')!r} is not a known time zone"))
        tz = ZoneInfo("Asia/Shanghai")
    periods: list[tuple[dt.time, dt.time]] = []
    for index, pair in enumerate(settings.get("working_hours") or DEFAULT_HOURS):
        try:
            begin, end = (dt.time.fromisoformat(str(v)) for v in pair)
            if end <= begin or (periods and begin < periods[-1][1]):
                raise ValueError
            periods.append((begin, end))
        except (TypeError, ValueError):
            issues.append(
                PackIssue(filename, f'settings.working_hours[{index}] must be an increasing ["HH:MM", "HH:MM"] pair')
            )
    limits: dict[str, dict[str, Limit]] = {}
    raw = settings.get("deadlines") or {}
    if not isinstance(raw, Mapping):
        issues.append(PackIssue(filename, "settings.deadlines must map tiers to steps"))
        raw = {}
    for tier, steps in raw.items():
        if tier not in TIERS:
            issues.append(PackIssue(filename, f"settings.deadlines: unknown tier {tier!r} (tiers: {', '.join(TIERS)})"))
            continue
        limits[tier] = {}
        for step, value in (steps or {}).items():
            amount = value.get("amount") if isinstance(value, Mapping) else None
            unit = value.get("unit") if isinstance(value, Mapping) else None
            if not isinstance(amount, (int, float)) or amount <= 0 or unit not in UNITS:
                issues.append(
                    PackIssue(
                        filename,
                        f"settings.deadlines.{tier}.{step}: needs a positive amount and a unit in {', '.join(UNITS)}",
                    )
                )
                continue
            limits[tier][str(step)] = Limit(float(amount), str(unit))
    reminder_at = settings.get("reminder_at", 0.75)
    if not isinstance(reminder_at, (int, float)) or not 0 < reminder_at < 1:
        issues.append(PackIssue(filename, "settings.reminder_at must be a fraction between 0 and 1"))
        reminder_at = 0.75
    if issues:
        return None, issues
    return DeadlinePolicy(limits, WorkingTime(calendar, tz, tuple(periods)), float(reminder_at)), []
