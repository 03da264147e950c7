"""Supervision rates (监督考核), defined once, from the append-only record.

Every figure is computed from **counters**, and every counter from **one kind of
event** on a case's record — never typed in. :func:`fold` is the only place
that turns events into counter increments; the incremental projection (kept in
the same transaction as the events) and the full recomputation from the event
log both call it, event by event, in each case's sequence order, so they agree
by construction, and ``govflow rates rebuild --verify`` checks that they do.

A counter increment is attributed to a **unit** (the street that owns the case
at that moment, or the department the event names) and to the case's **matter**
at that moment, on the district's local **day** of the event.

Counters (``COUNTERS``; unit in brackets):

==========================  ======================================================================
received [owner]            ``case.routed``/``case.unroutable``; a ``case.dispatched`` to another
                            owner counts for the new owner
handled [owner]             the first ``case.stage`` → ``handling`` of a case (signed, being handled)
called [owner]              the first ``callout.made`` of a case
callouts [department]       ``callout.made``: one per department called; ``callout.upheld``: one
                            per department the command centre's ruling calls again
reported_in [department]    ``task.completed`` of the ``report_in`` role task
reported_in_on_time [dep.]  … completed no later than its ``due_at`` (or with no deadline)
report_in_seconds [dep.]    … seconds from the task's ``opened_at`` to its completion
rejected [department]       … with ``decision: reject``
no_response [department]    ``callout.no_response``: each department it names
closed [owner]              ``case.closed`` with stage ``evaluated``
withdrawn [owner]           ``case.closed`` with stage ``withdrawn``
reopened [owner]            ``case.reopened``: a return visit (回访) sent the case back to handling
done:STEP [task's unit]     ``task.completed`` of a task that had a deadline (STEP = its element id;
                            the deadline is the one ``task.opened`` gave it, even once its timer
                            has fired and the task's row no longer shows it)
on_time:STEP [task's unit]  … completed no later than its ``due_at``
signed [owner]              ``task.completed`` of a task in the ``dispatched`` stage by the owner
                            (签收, whatever the diagram calls the step)
signed_on_time [owner]      … no later than its ``due_at`` (or with no deadline)
overdue [owner]             ``deadline.overdue``
escalated [owner]           any recorded fact with ``escalate_to`` (overdue, supervision overdue,
                            no response, rejected call)
escalations_received [to]   … counted for the unit it names in ``escalate_to`` (the command centre,
                            or the city: 市级督办)
rating_sum:D / rating_count:D   ``rating.given``, dimension D, for its ``target`` unit:
                            satisfaction (citizen → owner street), report_in and disposal
                            (street → department), accuracy (department → street),
                            return_visit (the command centre's return visit → owner street)
satisfied [owner]           ``rating.given`` satisfaction with score ≥ 4 (满意)
resolved [owner]            ``rating.given`` satisfaction with score ≥ 3 (解决: not "unsolved")
==========================  ======================================================================

The **live board** is folded from the same record: a case stands at one (owner, stage) cell —
its owner from ``case.routed``/``case.unroutable``/``case.dispatched``, its stage from
``case.stage`` — and moving it adds -1 to the old cell and +1 to the new one, as counters
``board:STAGE`` of the owner on the day :data:`BOARD_DAY` with no matter. Their sums are the
counts per stage per street (``GET /api/v1/board``), provably those of the record like every
other counter.

Rates (``RATES``: numerator / denominator, both sums of counters over a window):
see the table in ``docs/supervision.md``, generated from :data:`RATES`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

#: the districts' local time (days of the rates are local days)
LOCAL_TZ = ZoneInfo("Asia/Shanghai")
SATISFIED_FROM = 4
RESOLVED_FROM = 3

COUNTERS = (
    "received",
    "handled",
    "called",
    "callouts",
    "reported_in",
    "reported_in_on_time",
    "report_in_seconds",
    "rejected",
    "no_response",
    "closed",
    "withdrawn",
    "reopened",
    "signed",
    "signed_on_time",
    "overdue",
    "escalated",
    "escalations_received",
    "satisfied",
    "resolved",
)
#: counters per step and per rating dimension carry a suffix: ``done:sign_for``, ``rating_sum:accuracy``
PREFIXED = ("done:", "on_time:", "rating_sum:", "rating_count:", "board:")
#: the "day" of the live board's counters (before every date: no window of rates includes it)
BOARD_DAY = ""
BOARD_PREFIX = "board:"
DIMENSIONS = ("satisfaction", "report_in", "disposal", "accuracy", "return_visit")


@dataclass(frozen=True)
class Rate:
    """A figure: ``numerator / denominator`` (× ``scale``), each the sum of counters over a window."""

    name: str
    chinese: str
    numerator: str
    denominator: str
    scale: float = 1.0
    kind: str = "ratio"  # ratio (0..1) | mean | count
    level: str = "any"  # street | department | any (the units it is meaningful for)


RATES: tuple[Rate, ...] = (
    Rate("call_rate", "呼叫率", "called", "handled", level="street"),
    Rate("response_rate", "响应率(报到)", "reported_in_on_time", "callouts", level="department"),
    Rate("report_in_minutes", "平均报到时长(分钟)", "report_in_seconds", "reported_in", 1 / 60, "mean", "department"),
    Rate("rejection_rate", "拒绝率", "rejected", "callouts", level="department"),
    Rate("no_response_count", "未报到次数", "no_response", "", kind="count", level="department"),
    Rate("completion_rate", "办结率", "closed", "received", level="street"),
    Rate("reopen_rate", "重办率", "reopened", "closed", level="street"),
    Rate("overdue_count", "超期次数", "overdue", "", kind="count"),
    Rate("escalated_count", "升级次数", "escalated", "", kind="count"),
    Rate("escalations_received_count", "接收升级次数", "escalations_received", "", kind="count"),
    Rate("satisfaction", "群众满意度(1-5)", "rating_sum:satisfaction", "rating_count:satisfaction", kind="mean"),
    Rate(
        "return_visit_satisfaction",
        "回访满意度(1-5)",
        "rating_sum:return_visit",
        "rating_count:return_visit",
        kind="mean",
        level="street",
    ),
    Rate(
        "call_accuracy",
        "呼叫准确度(部门评)",
        "rating_sum:accuracy",
        "rating_count:accuracy",
        kind="mean",
        level="street",
    ),
    Rate(
        "report_in_rating",
        "报到评价(街道评)",
        "rating_sum:report_in",
        "rating_count:report_in",
        kind="mean",
        level="department",
    ),
    Rate(
        "disposal_rating",
        "处置评价(街道评)",
        "rating_sum:disposal",
        "rating_count:disposal",
        kind="mean",
        level="department",
    ),
    Rate("bj_response_rate", "响应率(按时签收)", "signed_on_time", "signed", level="street"),
    Rate("bj_resolution_rate", "解决率", "resolved", "rating_count:satisfaction", level="street"),
    Rate("bj_satisfaction_rate", "满意率", "satisfied", "rating_count:satisfaction", level="street"),
)
RATE_BY_NAME = {r.name: r for r in RATES}
#: on-time rate of one step: ``on_time:STEP / done:STEP`` (STEP = the task's element id)
STEP_RATE_PREFIX = "on_time_rate:"


class CaseContext(NamedTuple):
    """What the fold needs to remember of a case between its events (``stage``: where the live
    board counts it, None before its first ``case.stage``)."""

    district: str
    owner: str | None = None
    matter: str | None = None
    handled: bool = False
    called: bool = False
    stage: str | None = None
    #: the due time each open task had when it opened (task, unit, ISO instant): a task whose
    #: deadline timer has fired no longer carries it, yet completing it is still late
    dues: tuple[tuple[str, str, str], ...] = ()


class Increment(NamedTuple):
    """One counter increment: +``value`` to ``metric`` of ``unit`` × ``matter`` on ``day``."""

    day: str
    unit: str
    matter: str
    metric: str
    value: int


@dataclass
class _Out:
    ctx: CaseContext
    increments: list[Increment] = field(default_factory=list)


def local_day(at: dt.datetime) -> str:
    """The district-local date of an instant (aware; naive is taken as UTC)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    # every time zone's offset is a whole number of quarter hours: one lookup per quarter hour
    return _quarter_day(int(at.timestamp()) // 900)


@lru_cache(maxsize=65536)
def _quarter_day(quarter: int) -> str:
    return dt.datetime.fromtimestamp(quarter * 900, LOCAL_TZ).date().isoformat()


def _instant(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, str) and value:
        return _parse_instant(value)
    return None


@lru_cache(maxsize=4096)  # the events of one command share their instant: parsed once
def _parse_instant(value: str) -> dt.datetime | None:
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


#: the only event kinds :func:`fold` reads (a full recomputation reads no others); any kind
#: starting with one of FOLDED_PREFIXES is read too
FOLDED_KINDS = (
    "case.routed",
    "case.unroutable",
    "case.dispatched",
    "case.stage",
    "case.closed",
    "case.reopened",
    "task.opened",
    "task.cancelled",
    "task.completed",
    "rating.given",
)
FOLDED_PREFIXES = ("deadline.", "callout.")


def fold(ctx: CaseContext, event: Mapping[str, Any]) -> tuple[CaseContext, list[Increment]]:
    """The counter increments one event makes, and the case context after it. Pure."""
    kind, data = event["kind"], event.get("data") or {}
    if kind == "task.opened":  # remembered, never counted (no time needed: the commonest kind goes fast)
        task, unit, due = data.get("task") or "", data.get("unit") or "", data.get("due_at")
        dues = tuple(d for d in ctx.dues if (d[0], d[1]) != (task, unit)) if ctx.dues else ()
        return ctx._replace(dues=(*dues, (task, unit, due)) if isinstance(due, str) and due else dues), []
    if kind == "task.cancelled":
        if ctx.dues:
            ctx = ctx._replace(dues=tuple(d for d in ctx.dues if d[0] != data.get("task")))
        return ctx, []
    if kind == "case.stage":  # the board's move, and the first time the case is being handled
        stage, moves = data.get("stage"), []
        if isinstance(stage, str) and stage and stage != ctx.stage:
            if ctx.stage is not None:
                moves.append(Increment(BOARD_DAY, ctx.owner or "", "", BOARD_PREFIX + ctx.stage, -1))
            moves.append(Increment(BOARD_DAY, ctx.owner or "", "", BOARD_PREFIX + stage, 1))
            ctx = ctx._replace(stage=stage)
        if stage == "handling" and not ctx.handled:
            ctx = ctx._replace(handled=True)
            at = _instant(event["at"])
            assert at is not None
            moves.append(Increment(local_day(at), ctx.owner or "", ctx.matter or "", "handled", 1))
        return ctx, moves
    at = _instant(event["at"])
    assert at is not None
    out = _Out(ctx)
    day = ""  # the event's local day, computed once something is counted on it

    def add(metric: str, unit: str | None, value: int = 1) -> None:
        nonlocal day
        if value:
            day = day or local_day(at)
            out.increments.append(Increment(day, unit or "", out.ctx.matter or "", metric, value))

    def move(owner: str | None, stage: str | None) -> None:
        """The live board: the case leaves its (owner, stage) cell for another one."""
        before = out.ctx
        if (before.owner, before.stage) != (owner, stage):
            if before.stage is not None:
                out.increments.append(Increment(BOARD_DAY, before.owner or "", "", BOARD_PREFIX + before.stage, -1))
            if stage is not None:
                out.increments.append(Increment(BOARD_DAY, owner or "", "", BOARD_PREFIX + stage, 1))

    if kind in ("case.routed", "case.unroutable"):
        move(data.get("owner"), out.ctx.stage)
        out.ctx = out.ctx._replace(owner=data.get("owner"), matter=data.get("matter"))
        add("received", out.ctx.owner)
    elif kind == "case.dispatched":
        moved = data.get("owner") != out.ctx.owner
        move(data.get("owner"), out.ctx.stage)
        out.ctx = out.ctx._replace(owner=data.get("owner"), matter=data.get("matter"))
        if moved:
            add("received", out.ctx.owner)
    elif kind == "callout.made":
        if not out.ctx.called:
            out.ctx = out.ctx._replace(called=True)
            add("called", out.ctx.owner)
        for department in data.get("departments") or []:
            add("callouts", department.get("unit"))
    elif kind == "task.completed":
        key = (data.get("task") or "", data.get("unit") or "")
        opened_due = next((d[2] for d in out.ctx.dues if (d[0], d[1]) == key), None)
        if opened_due is not None:
            out.ctx = out.ctx._replace(dues=tuple(d for d in out.ctx.dues if (d[0], d[1]) != key))
        _task_completed(out, data, at, add, opened_due)
    elif kind == "callout.upheld":  # the ruling renewed the call: each department is called again
        for department in data.get("departments") or []:
            add("callouts", department)
    elif kind == "callout.no_response":
        for department in data.get("departments") or []:
            add("no_response", department)
    elif kind == "case.closed":
        add("closed" if data.get("stage") == "evaluated" else "withdrawn", out.ctx.owner)
    elif kind == "case.reopened":
        add("reopened", out.ctx.owner)
    elif kind == "rating.given":
        dimension, score = data.get("dimension"), data.get("score")
        if dimension in DIMENSIONS and isinstance(score, int):
            add(f"rating_sum:{dimension}", data.get("target"), score)
            add(f"rating_count:{dimension}", data.get("target"))
            if dimension == "satisfaction":
                add("satisfied", data.get("target"), int(score >= SATISFIED_FROM))
                add("resolved", data.get("target"), int(score >= RESOLVED_FROM))
    if kind == "deadline.overdue":
        add("overdue", out.ctx.owner)
    if kind.startswith(("deadline.", "callout.")) and data.get("escalate_to"):
        add("escalated", out.ctx.owner)
        add("escalations_received", data["escalate_to"])
    return out.ctx, out.increments


def _task_completed(out: _Out, data: Mapping[str, Any], at: dt.datetime, add: Any, opened_due: str | None) -> None:
    # the task's due time as it opened, when its row no longer had one (its deadline had fired)
    due = _instant(data.get("due_at")) or _instant(opened_due)
    on_time = due is None or at <= due
    unit = data.get("unit") or out.ctx.owner
    if due is not None and data.get("task"):
        add(f"done:{data['task']}", unit)
        add(f"on_time:{data['task']}", unit, int(on_time))
    if data.get("role") == "report_in":
        add("reported_in", unit)
        add("reported_in_on_time", unit, int(on_time))
        opened = _instant(data.get("opened_at"))
        if opened is not None:
            add("report_in_seconds", unit, max(0, int((at - opened).total_seconds())))
        if (data.get("form") or {}).get("decision") == "reject":
            add("rejected", unit)
    if data.get("stage") == "dispatched" and unit == out.ctx.owner:
        add("signed", unit)
        add("signed_on_time", unit, int(on_time))


def fold_all(district: str, events: Iterable[Mapping[str, Any]]) -> tuple[CaseContext, list[Increment]]:
    """Every increment of one case's events (in sequence order) and its final context."""
    ctx = CaseContext(district)
    increments: list[Increment] = []
    for event in events:
        ctx, more = fold(ctx, event)
        increments += more
    return ctx, increments


def rate_value(rate: Rate, counters: Mapping[str, int]) -> float | None:
    """The value of a rate from summed counters (None when its denominator is zero)."""
    numerator = counters.get(rate.numerator, 0)
    if rate.kind == "count":
        return float(numerator)
    denominator = counters.get(rate.denominator, 0)
    if not denominator:
        return None
    return numerator / denominator * rate.scale


def step_rates(counters: Mapping[str, int]) -> dict[str, float | None]:
    """On-time rate per step: ``on_time:STEP / done:STEP``."""
    steps = sorted(k.split(":", 1)[1] for k in counters if k.startswith("done:"))
    return {
        f"{STEP_RATE_PREFIX}{step}": (counters.get(f"on_time:{step}", 0) / counters[f"done:{step}"])
        if counters.get(f"done:{step}")
        else None
        for step in steps
    }


__all__ = [
    "BOARD_DAY",
    "BOARD_PREFIX",
    "COUNTERS",
    "LOCAL_TZ",
    "RATES",
    "RATE_BY_NAME",
    "CaseContext",
    "Increment",
    "Rate",
    "fold",
    "fold_all",
    "local_day",
    "rate_value",
    "step_rates",
]
