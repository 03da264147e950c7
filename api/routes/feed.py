"""/api/v1/feed: the change feed (every committed event the caller may read, in commit order)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from govflow.engine.integrations.feed import DEFAULT_LIMIT, MAX_LIMIT

from ..deps import AppDep, CurrentPrincipal

router = APIRouter(prefix="/api/v1/feed", tags=["integrations"])

#: problem responses of the integration routes (RFC 9457 bodies, see api/problems.py)
PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No or an unknown bearer token (problem details)"},
    403: {"description": "Casbin does not allow it (problem details)"},
    422: {"description": "Invalid parameters or body (problem details)"},
}


class FeedEventOut(BaseModel):
    """One committed event in its public form (no personal data)."""

    id: str = Field(description="the event's identity, `<case id>:<seq>`, for de-duplication")
    cursor: str = Field(description="resume after this event with `after=<cursor>`")
    case_id: str
    seq: int
    kind: str
    at: str
    district: str
    unit: str | None = Field(description="the case's owner unit when the event was committed")
    actor: str = Field(description="staff or system id; `reporter` or `citizen` for residents")
    actor_unit: str | None
    data: dict[str, Any]


class FeedPageOut(BaseModel):
    events: list[FeedEventOut]
    next: str = Field(description="the cursor to read on from (the same one when nothing new was committed)")
    has_more: bool = Field(description="more events are waiting after `next`")


@router.get("", response_model=FeedPageOut, responses=PROBLEMS)
def read_feed(
    app: AppDep,
    principal: CurrentPrincipal,
    after: Annotated[str | None, Query(max_length=64, description="an opaque cursor from a previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Response:
    """Events of the cases the caller may read, in commit order, after the cursor: no gaps, no duplicates."""
    # the stored events already have the documented shape: sent as stored, not re-validated (a page is 1,000)
    return Response(app.integrations.feed.read_json(principal, after, limit), media_type="application/json")
