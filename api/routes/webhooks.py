"""/api/v1/webhooks: integrators' endpoints, their delivery log and dead letters (engine/integrations)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, status
from pydantic import BaseModel, ConfigDict, Field

from govflow.engine.integrations.webhooks import DESCRIPTION_MAX, KINDS_MAX, URL_MAX

from ..deps import AppDep, CurrentPrincipal
from .feed import PROBLEMS

router = APIRouter(prefix="/api/v1/webhooks", tags=["integrations"])
NOT_FOUND: dict[int | str, dict[str, Any]] = {**PROBLEMS, 404: {"description": "No such webhook (problem details)"}}


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=URL_MAX, description="http or https; public addresses only")
    district: str | None = Field(None, max_length=64, description="default: the caller's district")
    kinds: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=KINDS_MAX, description="event kinds or `prefix.*`; none: every kind"
    )
    secret: str | None = Field(
        None, max_length=128, description="`whsec_` + base64 of 24-64 bytes; left out, govflow makes one"
    )
    description: str | None = Field(None, max_length=DESCRIPTION_MAX)


class WebhookOut(BaseModel):
    id: str
    url: str
    district: str
    kinds: list[str]
    description: str | None
    owner: str
    active: bool
    created_at: dt.datetime
    disabled_at: dt.datetime | None


class WebhookCreated(WebhookOut):
    secret: str = Field(description="shown once: verify the `webhook-signature` header with it")


class StreamRetry(BaseModel):
    shard: int
    attempts: int
    next_attempt_at: dt.datetime | None
    error: str | None


class WebhookStatus(WebhookOut):
    behind: int = Field(description="shards of the feed with events not yet delivered")
    retrying: list[StreamRetry]
    dead_letters: dict[str, int] = Field(description="dead letters by status: parked, replay, delivered")


class DeliveryOut(BaseModel):
    event_id: str
    outcome: str = Field(description="delivered, failed, dead, held or redelivered")
    status_code: int | None
    error: str | None
    duration_ms: float
    at: dt.datetime


class DeadLetterOut(BaseModel):
    id: int
    event_id: str
    kind: str
    case_id: str
    status: str = Field(description="parked, replay (asked for) or delivered (after a replay)")
    reason: str
    attempts: int
    parked_at: dt.datetime
    replay_requested_at: dt.datetime | None
    delivered_at: dt.datetime | None


class Replay(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[int] | None = Field(None, max_length=1000, description="only these dead letters (default: all parked)")


class ReplayOut(BaseModel):
    replaying: int


@router.post("", status_code=status.HTTP_201_CREATED, response_model=WebhookCreated, responses=PROBLEMS)
def register_webhook(body: WebhookCreate, app: AppDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Register an endpoint: signed POSTs of the district's events the caller may read, from now on."""
    return app.integrations.webhooks.register(
        principal,
        url=body.url,
        district=body.district,
        kinds=body.kinds,
        secret=body.secret,
        description=body.description,
    )


@router.get("", response_model=list[WebhookOut], responses=PROBLEMS)
def list_webhooks(app: AppDep, principal: CurrentPrincipal) -> list[dict[str, Any]]:
    """The caller's endpoints (and, for an operator, every endpoint of the district)."""
    return app.integrations.webhooks.endpoints(principal)


@router.get("/{webhook_id}", response_model=WebhookStatus, responses=NOT_FOUND)
def webhook_status(webhook_id: str, app: AppDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """An endpoint and how its delivery stands: shards behind, retries scheduled, dead letters."""
    return app.integrations.webhooks.status(principal, webhook_id)


@router.delete("/{webhook_id}", response_model=WebhookOut, responses=NOT_FOUND)
def disable_webhook(webhook_id: str, app: AppDep, principal: CurrentPrincipal) -> dict[str, Any]:
    """Stop delivering to the endpoint (its log and dead letters stay)."""
    return app.integrations.webhooks.disable(principal, webhook_id)


@router.get("/{webhook_id}/deliveries", response_model=list[DeliveryOut], responses=NOT_FOUND)
def webhook_deliveries(
    webhook_id: str, app: AppDep, principal: CurrentPrincipal, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, Any]]:
    """The delivery log, newest first: every attempt with its outcome, HTTP status and duration."""
    return app.integrations.webhooks.deliveries(principal, webhook_id, limit)


@router.get("/{webhook_id}/dead-letters", response_model=list[DeadLetterOut], responses=NOT_FOUND)
def webhook_dead_letters(
    webhook_id: str, app: AppDep, principal: CurrentPrincipal, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, Any]]:
    """Events the endpoint could not take (and those of the same cases held behind them)."""
    return app.integrations.webhooks.dead_letters(principal, webhook_id, limit)


@router.post("/{webhook_id}/dead-letters/replay", response_model=ReplayOut, responses=NOT_FOUND)
def replay_dead_letters(webhook_id: str, body: Replay, app: AppDep, principal: CurrentPrincipal) -> dict[str, int]:
    """Deliver parked dead letters again, in order, before anything new (the owner, or an operator)."""
    return {"replaying": app.integrations.webhooks.replay(principal, webhook_id, body.ids)}
