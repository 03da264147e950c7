"""/api/v1/cases: report, read, timeline, withdraw, link and unlink duplicates."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response, status

from govflow.engine.cases.service import NewCase

from ..deps import AppDep, CurrentPrincipal
from ..schemas import CaseCreate, CaseCreated, CaseOut, EventOut, LinkIn, TaskCompleted, Withdraw

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CaseCreated,
    responses={
        200: {"model": CaseCreated, "description": "A retry with the same Idempotency-Key: the case it created"}
    },
)
def create_case(
    body: CaseCreate,
    app: AppDep,
    principal: CurrentPrincipal,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=128, min_length=1, pattern=r"^[\x21-\x7e]+$")] = None,
) -> CaseCreated:
    """Report a case (上报). A retry with the same ``Idempotency-Key`` returns the same case."""
    loc = body.location
    reporter = body.reporter
    outcome = app.cases.report(
        principal,
        NewCase(
            channel=body.channel,
            description=body.description,
            category=body.category,
            lat=loc.lat if loc else None,
            lng=loc.lng if loc else None,
            address=loc.address if loc else None,
            reporter_name=reporter.name if reporter else None,
            reporter_phone=reporter.phone if reporter else None,
            district=body.district,
        ),
        idempotency_key=idempotency_key,
    )
    if outcome.replayed:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/api/v1/cases/{outcome.case_id}"
    return CaseCreated(
        id=str(outcome.case_id), status=outcome.status, version=outcome.version, replayed=outcome.replayed
    )


@router.get("/{case_id}", response_model=CaseOut)
def get_case(case_id: str, app: AppDep, principal: CurrentPrincipal) -> dict:
    """A case: status, owner, category, open tasks, deadlines; personal data masked unless allowed."""
    return app.queries.case(principal, case_id)


@router.get("/{case_id}/events", response_model=list[EventOut])
def case_events(case_id: str, app: AppDep, principal: CurrentPrincipal) -> list[dict]:
    """The case's timeline: who did what, when, under which power."""
    return app.queries.events(principal, case_id)


@router.post("/{case_id}/withdraw", response_model=TaskCompleted)
def withdraw_case(case_id: str, body: Withdraw, app: AppDep, principal: CurrentPrincipal) -> TaskCompleted:
    """The reporter withdraws the case (撤回), possible until the result is submitted."""
    outcome = app.cases.withdraw(principal, case_id, body.reason)
    return TaskCompleted(case_id=str(outcome.case_id), status=outcome.status, version=outcome.version)


@router.post("/{case_id}/link", response_model=TaskCompleted)
def link_case(case_id: str, body: LinkIn, app: AppDep, principal: CurrentPrincipal) -> TaskCompleted:
    """The command centre links an open case to the open case it duplicates (重复件): its tasks are set aside."""
    outcome = app.cases.link(principal, case_id, body.main)
    return TaskCompleted(case_id=str(outcome.case_id), status=outcome.status, version=outcome.version)


@router.post("/{case_id}/unlink", response_model=TaskCompleted)
def unlink_case(case_id: str, app: AppDep, principal: CurrentPrincipal) -> TaskCompleted:
    """The command centre unlinks a duplicate: its tasks open as for a new report."""
    outcome = app.cases.unlink(principal, case_id)
    return TaskCompleted(case_id=str(outcome.case_id), status=outcome.status, version=outcome.version)
