"""Call-outs (呼叫), delegated powers, the responsibility list, and ratings (评价)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from govflow.engine.cases.callouts import CallOut
from govflow.engine.model.errors import InvalidInput, NotFound

from ..deps import AppDep, CurrentPrincipal
from ..schemas import (
    CODE_MAX,
    CODE_PATTERN,
    CallOutIn,
    ContributionIn,
    DelegationIn,
    DelegationOut,
    RatingIn,
    RatingOut,
    Responsibility,
    TaskCompleted,
)

router = APIRouter(tags=["call-outs"])


@router.post("/api/v1/cases/{case_id}/call-outs", response_model=TaskCompleted, status_code=status.HTTP_201_CREATED)
def call_out(case_id: str, body: CallOutIn, app: AppDep, principal: CurrentPrincipal) -> TaskCompleted:
    """Call out departments (一键呼叫); each gets a report-in (报到) task. Refused with the exact reason when no power allows it."""
    outcome = app.callouts.call_out(
        principal, case_id, CallOut(body.departments, body.reason, body.meeting_at, body.meeting_place, body.main)
    )
    return TaskCompleted(case_id=str(outcome.case_id), status=outcome.status, version=outcome.version)


@router.post("/api/v1/cases/{case_id}/contributions", status_code=status.HTTP_201_CREATED)
def contribute(case_id: str, body: ContributionIn, app: AppDep, principal: CurrentPrincipal) -> dict:
    """A cooperating department adds its part to the joint disposal (it does not block the main department)."""
    return app.callouts.contribute(principal, case_id, body.part)


def may_delegate(app: AppDep, principal: CurrentPrincipal) -> None:
    """Authorization before the body is validated: a caller who may not delegate learns nothing from field errors."""
    app.callouts.may_delegate(principal)


@router.post(
    "/api/v1/delegations",
    response_model=DelegationOut,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(may_delegate)],
)
def delegate(body: DelegationIn, app: AppDep, principal: CurrentPrincipal) -> dict:
    """A district supervisor delegates a call-out power to a street, for a department, until an expiry."""
    return app.callouts.delegate(
        principal,
        district=body.district,
        street=body.street,
        department=body.department,
        matter_pattern=body.matter_pattern,
        expires_at=body.expires_at,
        reason=body.reason,
    )


@router.get("/api/v1/delegations", response_model=list[DelegationOut])
def delegations(
    app: AppDep,
    principal: CurrentPrincipal,
    district: Annotated[str | None, Query(max_length=CODE_MAX, pattern=CODE_PATTERN)] = None,
) -> list[dict]:
    return app.callouts.delegations(principal, district)


@router.post("/api/v1/cases/{case_id}/ratings", response_model=RatingOut, status_code=status.HTTP_201_CREATED)
def rate(case_id: str, body: RatingIn, app: AppDep, principal: CurrentPrincipal) -> dict:
    """The street rates a called department (report_in, disposal); a department rates the call (accuracy)."""
    return app.callouts.rate(
        principal, case_id, target=body.target, dimension=body.dimension, score=body.score, comment=body.comment
    )


@router.get("/api/v1/cases/{case_id}/ratings", response_model=list[RatingOut])
def ratings(case_id: str, app: AppDep, principal: CurrentPrincipal) -> list[dict]:
    """A case's ratings, for those who may read the case (they hold no personal data)."""
    return app.callouts.ratings(principal, case_id)


@router.get("/api/v1/responsibility", response_model=Responsibility)
def responsibility(
    app: AppDep,
    principal: CurrentPrincipal,
    matter: Annotated[str, Query(max_length=CODE_MAX, pattern=CODE_PATTERN)],
    street: Annotated[str | None, Query(max_length=CODE_MAX, pattern=CODE_PATTERN)] = None,
    district: Annotated[str | None, Query(max_length=CODE_MAX, pattern=CODE_PATTERN)] = None,
) -> dict:
    """Who is main (主体责任) and who cooperates (配合责任) for a matter, and which entry says so."""
    pack = app.packs.active(district or principal.district)
    if matter not in pack.catalog.matters:
        raise InvalidInput(
            f"{matter!r} is not a matter of {pack.catalog.district}",
            errors=[{"loc": ["matter"], "msg": "unknown matter"}],
        )
    if street is not None and (pack.catalog.unit(street) is None or pack.catalog.units[street].kind != "street"):
        raise InvalidInput(
            f"{street!r} is not a street of {pack.catalog.district}",
            errors=[{"loc": ["street"], "msg": "unknown street"}],
        )
    found = pack.responsibility.lookup(matter) if pack.responsibility else None
    if found is None:
        raise NotFound(f"no responsibility entry covers {matter}")
    entry = found.entry
    exact = not entry.is_pattern
    why = (f"exact entry for {matter}" if exact else f"group entry {entry.matter} (no exact entry for {matter})") + (
        f", line {entry.line}" if entry.line else ""
    )
    return {
        "district": pack.catalog.district,
        "matter": matter,
        "street": street,
        "main": found.main,
        "cooperating": list(found.cooperating),
        "matched_entry": entry.matter,
        "why": why,
        "time_limit": {"amount": entry.time_limit.amount, "unit": entry.time_limit.unit} if entry.time_limit else None,
    }
