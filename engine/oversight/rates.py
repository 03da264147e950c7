"""Reading the supervision figures: rates by level and window, the ranking, the board, scorecards.

Who may read what (Casbin, in the engine):

* ``read_rates`` in the district's domain (``<district>/*``: the command centre,
  the district supervisor) — every unit's figures;
* ``read_scorecard`` in a unit's own domain — that unit's own figures and its
  worst cases (a street sees its own detail, never another street's);
* ``read_ranking`` — the ranking (unit codes and figures only);
* the public board needs no principal: counts per stage per street, no
  personal data, no free text.

Windows are district-local days, ``from`` and ``to`` both included.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.engine import Engine

from govflow.engine.access.identity import Principal
from govflow.engine.model.errors import InvalidInput, NotFound, PermissionDenied
from govflow.engine.model.lifecycle import CHINESE, ORDER
from govflow.engine.oversight import projection
from govflow.engine.oversight import warnings as early
from govflow.engine.oversight.definitions import (
    BOARD_DAY,
    BOARD_PREFIX,
    RATE_BY_NAME,
    RATES,
    STEP_RATE_PREFIX,
    _instant,
    rate_value,
    step_rates,
)
from govflow.engine.packs.loader import LoadedPack
from govflow.engine.store.db import CaseEvent, CaseRow, CaseTask, EarlyWarning, RateCounter

LEVELS = ("street", "department", "matter", "district")
#: the longest window one query may cover
MAX_WINDOW_DAYS = 3660


@dataclass(frozen=True)
class Window:
    """District-local days, both ends included."""

    first: dt.date
    last: dt.date

    @classmethod
    def parse(cls, start: str | None, end: str | None, today: dt.date) -> Window:
        errors = []
        parsed: dict[str, dt.date] = {}
        for name, value, default in (("from", start, today - dt.timedelta(days=29)), ("to", end, today)):
            if value is None:
                parsed[name] = default
                continue
            try:
                parsed[name] = dt.date.fromisoformat(value)
            except (TypeError, ValueError):
                errors.append({"loc": [name], "msg": "a date YYYY-MM-DD"})
        if not errors and parsed["from"] > parsed["to"]:
            errors.append({"loc": ["from"], "msg": "must not be after 'to'"})
        if not errors and (parsed["to"] - parsed["from"]).days >= MAX_WINDOW_DAYS:
            errors.append({"loc": ["to"], "msg": f"a window of at most {MAX_WINDOW_DAYS} days"})
        if errors:
            raise InvalidInput("the window is invalid", errors=errors)
        return cls(parsed["from"], parsed["to"])


class Oversight:
    """The supervision read side of one process."""

    def __init__(
        self,
        *,
        db: Engine,
        packs: Any,
        access: Any,
        clock: Any,
        cases: Any = None,
        notify_warnings: Callable[[str, list[dict[str, Any]]], None] | None = None,
    ) -> None:
        self.db = db
        self.packs = packs
        self.access = access
        self.clock = clock
        self.cases = cases
        self.notify_warnings = notify_warnings or (lambda district, warnings: None)
        #: sums of past days by (district, group, first, last, generation): see :meth:`_counters`
        self._past: dict[tuple[Any, ...], dict[str, dict[str, int]]] = {}

    # -- authorization -------------------------------------------------------------
    def _pack(self, principal: Principal | None, district: str | None) -> LoadedPack:
        return self.packs.active(district or (principal.district if principal else None))

    def _allowed(self, principal: Principal, pack: LoadedPack, unit: str | None, action: str) -> bool:
        return bool(self.access.authorizer(pack, principal).allowed(principal.id, pack.catalog.domain_of(unit), action))

    def _today(self) -> dt.date:
        from govflow.engine.oversight.definitions import LOCAL_TZ

        return self.clock.now().astimezone(LOCAL_TZ).date()

    # -- counters -------------------------------------------------------------------
    def _counters(self, district: str, window: Window, group: str) -> dict[str, dict[str, int]]:
        """Summed counters by unit (or matter, or one '' row for the district).

        The days before today never change but by a rebuild (see ``projection.GENERATION``): their
        sums are kept per window and generation, so a year's window reads today's rows only."""
        today = self._today()
        past_last = min(window.last, today - dt.timedelta(days=1))
        out: dict[str, dict[str, int]] = defaultdict(dict)
        with self.db.connect() as conn:
            if window.first <= past_last:
                key = (district, group, window.first, past_last, projection.generation_on(conn))
                past = self._past.get(key)
                if past is None:
                    past = self._sums(conn, district, window.first, past_last, group)
                    if len(self._past) >= 256:
                        self._past.pop(next(iter(self._past)))
                    self._past[key] = past
                for unit, metrics in past.items():
                    out[unit].update(metrics)
            first_live = max(window.first, today)
            if first_live <= window.last:
                for unit, metrics in self._sums(conn, district, first_live, window.last, group).items():
                    for metric, value in metrics.items():
                        out[unit][metric] = out[unit].get(metric, 0) + value
        return out

    @staticmethod
    def _sums(conn: Any, district: str, first: dt.date, last: dt.date, group: str) -> dict[str, dict[str, int]]:
        column = {"matter": RateCounter.matter, "district": None}.get(group, RateCounter.unit)
        keys = [column] if column is not None else []
        query = (
            select(*keys, RateCounter.metric, func.sum(RateCounter.value).label("value"))
            .where(
                RateCounter.district == district,
                RateCounter.day >= first.isoformat(),
                RateCounter.day <= last.isoformat(),
            )
            .group_by(*keys, RateCounter.metric)
        )
        out: dict[str, dict[str, int]] = defaultdict(dict)
        for row in conn.execute(query):
            out[row[0] if column is not None else ""][row.metric] = int(row.value)
        return dict(out)

    @staticmethod
    def figures(counters: Mapping[str, int], level: str) -> dict[str, Any]:
        """Every rate meaningful at ``level`` (plus on-time per step) from summed counters."""
        rates = {
            r.name: rate_value(r, counters)
            for r in RATES
            if r.level in ("any", level) or level in ("matter", "district")
        }
        return {**rates, **step_rates(counters)}

    def _rows(self, pack: LoadedPack, level: str, window: Window) -> list[dict[str, Any]]:
        catalog = pack.catalog
        grouped = self._counters(catalog.district, window, level)
        rows = []
        if level in ("street", "department"):
            kinds = ("street", "command_centre") if level == "street" else ("department",)
            names = [u for u in catalog.units.values() if u.kind in kinds]
            for unit in names:
                rows.append({"unit": unit.code, "name": unit.name, **self.figures(grouped.get(unit.code, {}), level)})
        elif level == "matter":
            for code in sorted(k for k in grouped if k):
                matter = catalog.matters.get(code)
                rows.append(
                    {"matter": code, "name": matter.name if matter else code, **self.figures(grouped[code], level)}
                )
        else:
            rows.append({"district": catalog.district, **self.figures(grouped.get("", {}), level)})
        return rows

    # -- reads ----------------------------------------------------------------------
    def rates(
        self,
        principal: Principal,
        *,
        level: str,
        start: str | None = None,
        end: str | None = None,
        district: str | None = None,
    ) -> dict[str, Any]:
        """Rates per unit (or matter, or for the district) over a window."""
        if level not in LEVELS:
            raise InvalidInput("unknown level", errors=[{"loc": ["level"], "msg": f"one of {', '.join(LEVELS)}"}])
        pack = self._pack(principal, district)
        everything = self._allowed(principal, pack, None, "read_rates")
        own = principal.unit if principal.unit in pack.catalog.units else None
        if not everything and not (own and self._allowed(principal, pack, own, "read_scorecard")):
            raise PermissionDenied(f"{principal.id} may not read the rates of {pack.catalog.district}")
        window = Window.parse(start, end, self._today())
        rows = self._rows(pack, level, window)
        if not everything:  # a unit sees its own row only
            if level not in ("street", "department"):
                raise PermissionDenied(f"{principal.id} may read its own unit's rates only, not by {level}")
            rows = [r for r in rows if r.get("unit") == own]
        return {"district": pack.catalog.district, "level": level, **_window_out(window), "rows": rows}

    def ranking(
        self,
        principal: Principal,
        *,
        metric: str,
        level: str = "street",
        start: str | None = None,
        end: str | None = None,
        district: str | None = None,
    ) -> dict[str, Any]:
        """Units ranked by one figure (the "horse race"); units without data come last, unranked."""
        if level not in ("street", "department"):
            raise InvalidInput(
                "ranking is by street or department", errors=[{"loc": ["level"], "msg": "street or department"}]
            )
        rate = RATE_BY_NAME.get(metric)
        if rate is None and not metric.startswith(STEP_RATE_PREFIX):
            raise InvalidInput(
                "unknown metric",
                errors=[{"loc": ["metric"], "msg": f"one of {', '.join(RATE_BY_NAME)} or {STEP_RATE_PREFIX}STEP"}],
            )
        pack = self._pack(principal, district)
        if not self._allowed(
            principal, pack, principal.unit if principal.unit in pack.catalog.units else None, "read_ranking"
        ):
            raise PermissionDenied(f"{principal.id} may not read the ranking of {pack.catalog.district}")
        window = Window.parse(start, end, self._today())
        rows = [{"unit": r["unit"], "name": r["name"], "value": r.get(metric)} for r in self._rows(pack, level, window)]
        lower_is_better = rate is not None and (
            rate.kind == "count" or rate.name in ("report_in_minutes", "rejection_rate")
        )
        sign = 1 if lower_is_better else -1
        ranked = sorted((r for r in rows if r["value"] is not None), key=lambda r: (sign * r["value"], r["unit"]))
        position = 0
        previous: float | None = None
        for index, row in enumerate(ranked, start=1):
            if row["value"] != previous:
                position, previous = index, row["value"]
            row["rank"] = position
        unranked = [{**r, "rank": None} for r in rows if r["value"] is None]
        return {
            "district": pack.catalog.district,
            "metric": metric,
            "level": level,
            "better": "lower" if lower_is_better else "higher",
            **_window_out(window),
            "rows": ranked + unranked,
        }

    def trend(
        self,
        principal: Principal,
        *,
        metric: str,
        unit: str | None = None,
        matter: str | None = None,
        start: str | None = None,
        end: str | None = None,
        district: str | None = None,
    ) -> dict[str, Any]:
        """One figure day by day over a window, for a unit, a matter or the district (charts)."""
        rate = RATE_BY_NAME.get(metric)
        if rate is None:
            raise InvalidInput(
                "unknown metric", errors=[{"loc": ["metric"], "msg": f"one of {', '.join(RATE_BY_NAME)}"}]
            )
        pack = self._pack(principal, district)
        catalog = pack.catalog
        if unit is not None and unit not in catalog.units:
            raise NotFound("no such unit", unit=unit[:64])
        everything = self._allowed(principal, pack, None, "read_rates")
        own = unit is not None and principal.unit == unit and self._allowed(principal, pack, unit, "read_scorecard")
        if not (everything or own):
            raise PermissionDenied(f"{principal.id} may not read this trend in {catalog.district}")
        window = Window.parse(start, end, self._today())
        query = select(RateCounter.day, RateCounter.metric, func.sum(RateCounter.value)).where(
            RateCounter.district == catalog.district,
            RateCounter.day >= window.first.isoformat(),
            RateCounter.day <= window.last.isoformat(),
            RateCounter.metric.in_([rate.numerator, rate.denominator]),
        )
        if unit is not None:
            query = query.where(RateCounter.unit == unit)
        if matter is not None:
            query = query.where(RateCounter.matter == matter)
        by_day: dict[str, dict[str, int]] = defaultdict(dict)
        with self.db.connect() as conn:
            for day, name, value in conn.execute(query.group_by(RateCounter.day, RateCounter.metric)):
                by_day[day][name] = int(value)
        days = [window.first + dt.timedelta(days=i) for i in range((window.last - window.first).days + 1)]
        return {
            "district": catalog.district,
            "metric": metric,
            "unit": unit,
            "matter": matter,
            **_window_out(window),
            "points": [{"day": d.isoformat(), "value": rate_value(rate, by_day.get(d.isoformat(), {}))} for d in days],
        }

    def board(self, district: str | None = None) -> dict[str, Any]:
        """The public board: how many cases are at each stage, per street (live; no personal data).

        Read from the projection's ``board:STAGE`` counters (a few rows per unit, whatever the
        number of cases), which the fold keeps from the record like every other counter."""
        pack = self._pack(None, district)
        catalog = pack.catalog
        query = (
            select(RateCounter.unit, RateCounter.metric, func.sum(RateCounter.value).label("n"))
            .where(
                RateCounter.district == catalog.district,
                RateCounter.day == BOARD_DAY,
                RateCounter.metric.like(f"{BOARD_PREFIX}%"),
            )
            .group_by(RateCounter.unit, RateCounter.metric)
        )
        counts: dict[str, dict[str, int]] = defaultdict(dict)
        with self.db.connect() as conn:
            for row in conn.execute(query):
                counts[row.unit][row.metric.removeprefix(BOARD_PREFIX)] = int(row.n)
        stages = sorted(ORDER, key=ORDER.__getitem__)
        units = [u for u in catalog.units.values() if u.kind in ("street", "command_centre")]
        return {
            "district": catalog.district,
            "at": self.clock.now(),
            "stages": [{"stage": s, "name": CHINESE.get(s, s)} for s in stages],
            "rows": [
                {"unit": u.code, "name": u.name, "counts": {s: counts.get(u.code, {}).get(s, 0) for s in stages}}
                for u in units
            ],
        }

    def scorecard(
        self, principal: Principal, unit: str, *, start: str | None = None, end: str | None = None, worst: int = 10
    ) -> dict[str, Any]:
        """A unit's own figures and its worst cases (most overdue open tasks first)."""
        pack = self._pack(principal, None)
        catalog = pack.catalog
        if unit not in catalog.units:
            raise NotFound("no such unit", unit=unit[:64])
        if not (
            self._allowed(principal, pack, None, "read_rates")
            or (principal.unit == unit and self._allowed(principal, pack, unit, "read_scorecard"))
        ):
            raise PermissionDenied(f"{principal.id} may not read the scorecard of {unit}", unit=unit)
        window = Window.parse(start, end, self._today())
        level = "department" if catalog.units[unit].kind == "department" else "street"
        counters = self._counters(catalog.district, window, "unit").get(unit, {})
        now = self.clock.now()
        overdue = overdue_open_tasks(self.db, now, unit)[: max(1, min(worst, 50))]
        return {
            "unit": unit,
            "name": catalog.units[unit].name,
            "level": level,
            **_window_out(window),
            "figures": self.figures(counters, level),
            "counters": dict(sorted(counters.items())),
            "worst_cases": [
                {
                    "case_id": str(r.case_id),
                    "task": r.name,
                    "stage": r.stage,
                    "matter": r.matter,
                    "status": r.status,
                    "due_at": due,
                    "overdue_minutes": int((now - due).total_seconds() // 60),
                }
                for r, due in overdue
            ],
        }

    # -- early warnings and campaigns ---------------------------------------------------
    def scan_warnings(self, principal: Principal | None, district: str | None = None) -> list[dict[str, Any]]:
        """Look for bursts, rising matters and repeats now; record and notify the new ones.

        ``principal`` None: the operator (``govflow warnings scan``); else Casbin ``read_rates``.
        """
        pack = self._pack(principal, district)
        if principal is not None and not self._allowed(principal, pack, None, "read_rates"):
            raise PermissionDenied(f"{principal.id} may not scan for warnings in {pack.catalog.district}")
        catalog = pack.catalog
        streets = [u.code for u in catalog.units.values() if u.kind == "street"]
        raised = early.scan(
            self.db,
            catalog.district,
            self.clock.now(),
            streets,
            lambda rows: self.notify_warnings(catalog.district, [early.view(r) for r in rows]),
        )
        return [early.view(r) for r in raised]

    def warnings(self, principal: Principal, *, district: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The district's warnings, newest first (``read_rates``)."""
        pack = self._pack(principal, district)
        if not self._allowed(principal, pack, None, "read_rates"):
            raise PermissionDenied(f"{principal.id} may not read the warnings of {pack.catalog.district}")
        query = (
            select(EarlyWarning)
            .where(EarlyWarning.district == pack.catalog.district)
            .order_by(EarlyWarning.raised_at.desc(), EarlyWarning.id)
            .limit(max(1, min(limit, 500)))
        )
        with self.db.connect() as conn:
            return [early.view(r) for r in conn.execute(query)]

    def open_campaign(self, principal: Principal, warning_id: str) -> dict[str, Any]:
        """Open a campaign (专项治理) from a warning: a case at the command centre linking the related cases.

        The campaign case's record says which warning and cases (``campaign.opened``); each related
        case gets ``campaign.linked`` on its own record. Only once per warning (409 after).
        """
        import uuid as uuid_mod

        from govflow.engine.cases.service import NewCase, parse_uuid
        from govflow.engine.model.errors import Conflict

        wid = parse_uuid(warning_id, "warning")
        with self.db.connect() as conn:
            row = conn.execute(select(EarlyWarning).where(EarlyWarning.id == wid)).first()
        if row is None:
            raise NotFound("no such warning", warning=str(wid))
        pack = self._pack(principal, row.district)
        if not self._allowed(principal, pack, None, "open_campaign"):
            raise PermissionDenied(f"{principal.id} may not open campaigns in {row.district}")
        with self.db.connect() as conn:
            opened = conn.execute(
                select(func.count())
                .select_from(CaseRow)
                .where(
                    CaseRow.district == row.district,
                    CaseRow.channel == "campaign",
                    CaseRow.description.like(f"%#{wid}%"),
                )
            ).scalar_one()
        if opened:
            raise Conflict("a campaign was already opened from this warning", warning=str(wid))
        matter = pack.catalog.matters.get(row.matter)
        where = pack.catalog.units[row.unit].name if row.unit in pack.catalog.units else row.place or row.district
        cases = [c for c in row.evidence.get("cases", []) if c]
        description = (
            f"专项治理：{where} {matter.name if matter else row.matter}（预警 {row.kind}，"
            f"{row.evidence.get('observed')} 件，基线 {row.evidence.get('expected')}）#{wid}"
        )
        outcome = self.cases.report(
            principal,
            NewCase(
                channel="campaign",
                description=description,
                category=row.matter if matter else None,
                district=row.district,
            ),
            system=True,
        )
        campaign_id = outcome.case_id
        uow, now = self.cases.uow, self.clock.now()
        from govflow.engine.cases.unit_of_work import Event, plan_event

        power = f"open_campaign@{pack.catalog.domain_of(None)}"
        linked = []
        for case_id in cases:
            try:
                snapshot = uow.load(uuid_mod.UUID(case_id))
            except (ValueError, NotFound):
                continue
            uow.commit(
                plan_event(
                    snapshot,
                    actor=principal,
                    power=power,
                    now=now,
                    events=[Event("campaign.linked", {"campaign": str(campaign_id), "warning": str(wid)})],
                )
            )
            linked.append(case_id)
        snapshot = uow.load(campaign_id)
        uow.commit(
            plan_event(
                snapshot,
                actor=principal,
                power=power,
                now=now,
                events=[
                    Event(
                        "campaign.opened",
                        {"warning": str(wid), "kind": row.kind, "matter": row.matter, "cases": linked},
                    )
                ],
            )
        )
        return {"campaign": str(campaign_id), "warning": str(wid), "linked": linked}


def overdue_open_tasks(db: Engine, now: dt.datetime, unit: str | None = None) -> list[tuple[Any, dt.datetime]]:
    """Open tasks past their due time (of one unit, or all), most overdue first, with that due time.

    A task whose deadline timer has fired no longer has a pending due time on its row; its due
    time is the one recorded when it opened (``task.opened``), so it stays on the list until it
    is done."""
    query = (
        select(
            CaseTask.case_id,
            CaseTask.name,
            CaseTask.stage,
            CaseTask.unit_code,
            CaseTask.due_at,
            CaseTask.created_at,
            CaseRow.matter,
            CaseRow.status,
        )
        .join(CaseRow, CaseRow.id == CaseTask.case_id)
        .where(or_(CaseTask.due_at < now, CaseTask.due_at.is_(None)))
    )
    if unit is not None:
        query = query.where(CaseTask.unit_code == unit)
    with db.connect() as conn:
        rows = conn.execute(query).all()
        fired = sorted({r.case_id for r in rows if r.due_at is None}, key=str)
        opened: dict[tuple[Any, str, str, dt.datetime], dt.datetime] = {}
        for start in range(0, len(fired), 500):
            for event in conn.execute(
                select(CaseEvent.case_id, CaseEvent.at, CaseEvent.data).where(
                    CaseEvent.case_id.in_(fired[start : start + 500]), CaseEvent.kind == "task.opened"
                )
            ):
                data = event.data or {}
                due = _instant(data.get("due_at"))
                if due is not None:
                    opened[(event.case_id, str(data.get("task")), str(data.get("unit")), event.at)] = due
    out = []
    for r in rows:
        due = r.due_at if r.due_at is not None else opened.get((r.case_id, r.name, str(r.unit_code), r.created_at))
        if due is not None and due < now:
            out.append((r, due))
    return sorted(out, key=lambda pair: (pair[1], str(pair[0].case_id)))


def _window_out(window: Window) -> dict[str, str]:
    return {"from": window.first.isoformat(), "to": window.last.isoformat()}


__all__ = ["LEVELS", "Oversight", "Window", "overdue_open_tasks"]
