"""Supervise and assess (监督考核): rates, the ranking, the public board, a unit's scorecard.

Every figure is computed from the append-only record (``engine/oversight``); the
formulas are in ``docs/supervision.md``. Windows are district-local days, both
ends included (default: the last 30 days).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from ..deps import AppDep, CurrentPrincipal

router = APIRouter(tags=["supervision"])

DateQuery = Annotated[str | None, Query(max_length=10, pattern=r"^\d{4}-\d{2}-\d{2}$", description="YYYY-MM-DD")]
CodeQuery = Annotated[str | None, Query(max_length=64)]


@router.get("/api/v1/rates")
def rates(
    app: AppDep,
    principal: CurrentPrincipal,
    level: Annotated[str, Query(pattern="^(street|department|matter|district)$")] = "street",
    from_: Annotated[str | None, Query(alias="from", max_length=10, pattern=r"^\d{4}-\d{2}-\d{2}$")] = None,
    to: DateQuery = None,
    district: CodeQuery = None,
) -> dict[str, Any]:
    """Rates per street, department, matter or for the district over a window (呼叫率, 响应率, 办结率 …).

    The command centre and the district see every unit; a street or department sees its own row.
    """
    return app.oversight.rates(principal, level=level, start=from_, end=to, district=district)


@router.get("/api/v1/rates/ranking")
def ranking(
    app: AppDep,
    principal: CurrentPrincipal,
    metric: Annotated[str, Query(max_length=96)] = "completion_rate",
    level: Annotated[str, Query(pattern="^(street|department)$")] = "street",
    from_: Annotated[str | None, Query(alias="from", max_length=10, pattern=r"^\d{4}-\d{2}-\d{2}$")] = None,
    to: DateQuery = None,
    district: CodeQuery = None,
) -> dict[str, Any]:
    """The "horse race" (赛马): units ranked by one figure; units without data are listed unranked."""
    return app.oversight.ranking(principal, metric=metric, level=level, start=from_, end=to, district=district)


@router.get("/api/v1/rates/trend")
def trend(
    app: AppDep,
    principal: CurrentPrincipal,
    metric: Annotated[str, Query(max_length=96)] = "completion_rate",
    unit: CodeQuery = None,
    matter: CodeQuery = None,
    from_: Annotated[str | None, Query(alias="from", max_length=10, pattern=r"^\d{4}-\d{2}-\d{2}$")] = None,
    to: DateQuery = None,
    district: CodeQuery = None,
) -> dict[str, Any]:
    """One figure day by day (for trend charts): of a unit, a matter, or the district."""
    return app.oversight.trend(
        principal, metric=metric, unit=unit, matter=matter, start=from_, end=to, district=district
    )


@router.get("/api/v1/board")
def board(app: AppDep, district: CodeQuery = None) -> dict[str, Any]:
    """The public board (公示): cases per stage per street, live. No personal data, no free text; no sign-in."""
    return app.oversight.board(district)


@router.get("/api/v1/units/{unit}/scorecard")
def scorecard(
    unit: str,
    app: AppDep,
    principal: CurrentPrincipal,
    from_: Annotated[str | None, Query(alias="from", max_length=10, pattern=r"^\d{4}-\d{2}-\d{2}$")] = None,
    to: DateQuery = None,
) -> dict[str, Any]:
    """A unit's own figures and its worst cases (most overdue open tasks first): its staff, or the district."""
    return app.oversight.scorecard(principal, unit[:64], start=from_, end=to)


@router.get("/api/v1/warnings")
def warnings(
    app: AppDep,
    principal: CurrentPrincipal,
    district: CodeQuery = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict[str, Any]]:
    """Early warnings (预警研判) with their evidence, newest first (the command centre, the district)."""
    return app.oversight.warnings(principal, district=district, limit=limit)


@router.post("/api/v1/warnings/scan")
def scan_warnings(app: AppDep, principal: CurrentPrincipal, district: CodeQuery = None) -> list[dict[str, Any]]:
    """Look for bursts, rising matters and repeated reports at one place now; returns the new warnings."""
    return app.oversight.scan_warnings(principal, district)


@router.post("/api/v1/warnings/{warning_id}/campaign", status_code=201)
def open_campaign(warning_id: str, app: AppDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Open a campaign (专项治理) from a warning: a command-centre case linking the related cases."""
    return app.oversight.open_campaign(principal, warning_id[:64])
