"""Working time over China's calendar: holidays, adjusted working days, office hours."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from govflow.engine.model.calendar import Limit, WeekdayCalendar, WorkingTime, parse_deadline_settings
from govflow.plugins.builtin.calendar import ChineseWorkCalendar

BJ = ZoneInfo("Asia/Shanghai")


def at(y, mo, d, h=10, mi=0):
    return dt.datetime(y, mo, d, h, mi, tzinfo=BJ)


@pytest.fixture
def time() -> WorkingTime:
    return WorkingTime(ChineseWorkCalendar(set(), set()), BJ)


@pytest.mark.parametrize(
    ("start", "limit", "expected"),
    [
        (at(2026, 9, 28), Limit(1, "working_days"), at(2026, 9, 29)),  # an ordinary day
        (at(2026, 9, 30), Limit(2, "working_days"), at(2026, 10, 9)),  # over the National Day holiday
        (at(2026, 9, 30), Limit(3, "working_days"), at(2026, 10, 10)),  # Saturday 10 October is a 调休 working day
        (at(2026, 10, 10), Limit(1, "working_days"), at(2026, 10, 12)),  # Sunday is not
        (
            at(2026, 10, 3),
            Limit(1, "working_days"),
            at(2026, 10, 8, 17, 30),
        ),  # from a holiday: end of the next working day
        (at(2026, 9, 28, 11, 30), Limit(1, "working_hours"), at(2026, 9, 28, 15, 0)),  # across the lunch break
        (at(2026, 9, 30, 17, 0), Limit(1, "working_hours"), at(2026, 10, 8, 9, 0)),  # across the holiday
        (at(2026, 10, 2, 23, 55), Limit(10, "minutes"), at(2026, 10, 3, 0, 5)),  # minutes run on holidays too
    ],
)
def test_working_time(time, start, limit, expected):
    assert time.add(start.astimezone(dt.UTC), limit) == expected


def test_local_closures_and_extra_workdays():
    closed = WorkingTime(ChineseWorkCalendar({dt.date(2026, 9, 29)}, set()), BJ)
    assert closed.add(at(2026, 9, 28), Limit(1, "working_days")) == at(2026, 9, 30)
    opened = WorkingTime(ChineseWorkCalendar(set(), {dt.date(2026, 10, 3)}), BJ)
    assert opened.add(at(2026, 9, 30), Limit(1, "working_days")) == at(2026, 10, 3)


def test_a_year_the_calendar_does_not_know_falls_back_to_weekdays():
    calendar = ChineseWorkCalendar(set(), set())
    assert calendar.is_workday(dt.date(2040, 1, 2)) is True  # a Monday
    assert calendar.is_workday(dt.date(2040, 1, 7)) is False  # a Saturday


def test_deadline_policy_from_settings():
    settings = {
        "deadlines": {
            "simple": {"sign_for": {"amount": 10, "unit": "minutes"}, "handle": {"amount": 1, "unit": "working_days"}}
        },
        "working_hours": [["09:00", "12:00"], ["13:00", "17:00"]],
        "reminder_at": 0.5,
    }
    policy, issues = parse_deadline_settings(settings, WeekdayCalendar())
    assert issues == []
    start = at(2026, 11, 23, 9, 0).astimezone(dt.UTC)  # Monday
    assert policy.due("sign_for", "simple", start) == at(2026, 11, 23, 9, 10)
    # a whole working day from the opening hour ends with that day (the same working instant as Tuesday 09:00)
    assert policy.due("handle", "simple", start) == at(2026, 11, 23, 17, 0)
    assert policy.due("handle", "simple", start + dt.timedelta(hours=1)) == at(2026, 11, 24, 10, 0)
    assert policy.remind("handle", "simple", start) == at(2026, 11, 23, 13, 30)  # half of a 7-hour day, lunch excluded


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"deadlines": {"urgent": {}}}, "unknown tier 'urgent'"),
        (
            {"deadlines": {"simple": {"handle": {"amount": 1, "unit": "fortnights"}}}},
            "settings.deadlines.simple.handle",
        ),
        ({"deadlines": {"simple": {"handle": {"amount": -1, "unit": "minutes"}}}}, "positive amount"),
        ({"working_hours": [["12:00", "09:00"]]}, "settings.working_hours[0]"),
        ({"timezone": "Mars/Olympus"}, "not a known time zone"),
        ({"reminder_at": 2}, "reminder_at"),
    ],
)
def test_bad_deadline_settings_are_refused(settings, message):
    policy, issues = parse_deadline_settings(settings, WeekdayCalendar())
    assert policy is None
    assert any(message in issue.message and issue.file == "pack.yaml" for issue in issues), issues
