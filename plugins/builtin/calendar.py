"""Built-in working-day calendar: China's statutory holidays and adjusted working days.

Uses the ``chinese-calendar`` package (法定节假日 and 调休 working weekends).
A pack may add local closures (``settings.closures: [2026-11-02, …]``) and
extra working days (``settings.extra_workdays``). For a year the package does
not cover yet, Monday–Friday are working days and a warning is logged once.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import chinese_calendar

from govflow.plugins import hookimpl

log = logging.getLogger(__name__)


class ChineseWorkCalendar:
    def __init__(self, closures: set[dt.date], extra_workdays: set[dt.date]) -> None:
        self.closures, self.extra_workdays = closures, extra_workdays
        self._warned: set[int] = set()

    def is_workday(self, day: dt.date) -> bool:
        if day in self.closures:
            return False
        if day in self.extra_workdays:
            return True
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            if day.year not in self._warned:
                self._warned.add(day.year)
                log.warning("chinese-calendar has no data for %s; counting Monday-Friday as working days", day.year)
            return day.weekday() < 5


def _dates(values: Any) -> set[dt.date]:
    out = set()
    for value in values or []:
        out.add(value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)))
    return out


@hookimpl(trylast=True)
def govflow_calendar(district: str, settings: dict[str, Any]) -> ChineseWorkCalendar:
    return ChineseWorkCalendar(_dates(settings.get("closures")), _dates(settings.get("extra_workdays")))
