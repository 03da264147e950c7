"""Request and response bodies of the REST API (pydantic v2).

Limits and vocabularies the engine checks are imported from the engine, which owns
them (:mod:`govflow.engine.model.limits`, the call-out rating dimensions): the
OpenAPI document states exactly what the engine enforces, and a change is made in
one place. Limits without an engine counterpart (lengths of codes, names, phone
numbers, addresses) are the API's own.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer, field_validator

from govflow.engine.cases.callouts import DIMENSIONS
from govflow.engine.model.clock import iso
from govflow.engine.model.limits import (
    CHANNELS,
    COMMENT_MAX,
    DESCRIPTION_MAX,
    INTEGER_MAX,
    LAT_MAX,
    LAT_MIN,
    LNG_MAX,
    LNG_MIN,
    MAX_DEPARTMENTS,
    MEETING_PLACE_MAX,
    PART_MAX,
    REASON_MAX,
    SCORE_MAX,
    SCORE_MIN,
    data_errors,
)

#: Every instant the API returns: RFC 3339 in UTC with ``Z`` (``2026-09-28T01:00:00.000000Z``),
#: the one timestamp format of govflow (the engine's ``iso``), whatever zone a value was stored in.
Timestamp = Annotated[dt.datetime, PlainSerializer(iso, return_type=str, when_used="json")]

#: the API's own limit for codes (units, matters, districts), and their shape
CODE_MAX = 64
CODE_PATTERN = r"^[a-z][a-z0-9_.-]*$"
#: the largest offset a list may be paged to
OFFSET_MAX = 1_000_000


class Input(BaseModel):
    """Base of every request body: unknown fields are refused, and no text (nested data included)
    may hold a control character or nest too deep (the engine's rule: ``limits.data_errors``)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        errors = data_errors(value, [])
        if errors:
            raise ValueError(errors[0]["msg"])
        return value


Channel = Literal[CHANNELS]  # type: ignore[valid-type]
#: every rating dimension, whichever the direction (the engine checks the direction's own)
RATING_DIMENSIONS = tuple(dict.fromkeys(d for dims in DIMENSIONS.values() for d in dims))
Dimension = Literal[RATING_DIMENSIONS]  # type: ignore[valid-type]


class Location(Input):
    model_config = ConfigDict(extra="forbid")
    lat: float | None = Field(None, ge=LAT_MIN, le=LAT_MAX)
    lng: float | None = Field(None, ge=LNG_MIN, le=LNG_MAX)
    address: str | None = Field(None, max_length=256)


class Reporter(Input):
    """The reporter's contact details (personal data: masked for those who need not see them)."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=64)
    phone: str | None = Field(None, max_length=32, pattern=r"^[0-9+\- ]{3,32}$")


class CaseCreate(Input):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "channel": "app",
                    "description": "东街口有个井盖没了，晚上很危险",
                    "location": {"lat": 26.0865, "lng": 119.3025, "address": "东街口"},
                    "reporter": {"name": "张伟", "phone": "13812345678"},
                }
            ]
        },
    )
    channel: Channel
    description: str = Field(min_length=1, max_length=DESCRIPTION_MAX)
    category: str | None = Field(None, max_length=CODE_MAX, description="a matter code, e.g. road.pothole")
    location: Location | None = None
    reporter: Reporter | None = None
    district: str | None = Field(None, max_length=CODE_MAX)


class CaseCreated(BaseModel):
    id: str
    status: str
    version: int
    replayed: bool = False


class TaskOut(BaseModel):
    id: str
    case_id: str
    name: str
    title: str
    stage: str
    action: str
    unit: str | None
    role: str | None
    assignee: str | None
    due_at: Timestamp | None
    created_at: Timestamp


class InboxTask(TaskOut):
    case_status: str
    category: str | None
    owner_unit: str | None
    candidates: list[dict[str, Any]] = Field(
        default_factory=list, description="a case without a matter: the matters smart dispatch weighed (p)"
    )


class ReporterOut(BaseModel):
    name: str | None
    phone: str | None
    masked: bool


class PackRef(BaseModel):
    name: str
    version: str


class CaseOut(BaseModel):
    id: str
    status: str
    status_name: str
    district: str
    owner_unit: str | None
    category: str | None
    channel: str
    description: str
    location: Location
    reporter: ReporterOut
    reported_by: str
    pack: PackRef
    open_tasks: list[TaskOut]
    next_deadline: Timestamp | None
    overdue_since: Timestamp | None
    escalated_to: str | None
    routing: dict[str, Any] | None = Field(
        None, description="how smart dispatch routed the report: matter, owner, how, candidates (p), evidence"
    )
    linked_to: str | None = Field(None, description="the main case this duplicate follows (status linked)")
    linked_to_status: str | None = Field(None, description="the main case's stage, which the reporter follows")
    duplicates: list[str] = Field(default_factory=list, description="the open duplicates linked to this case")
    created_at: Timestamp
    updated_at: Timestamp
    closed_at: Timestamp | None
    version: int


class EventOut(BaseModel):
    seq: int
    at: Timestamp
    kind: str
    actor: str
    actor_unit: str | None
    power: str | None
    data: dict[str, Any]


class TaskComplete(Input):
    model_config = ConfigDict(extra="forbid")
    data: dict[str, Any] = Field(default_factory=dict, description="form data, as the task's form expects")
    expected_version: int | None = Field(
        None, ge=1, le=INTEGER_MAX, description="refuse with 409 unless the case is at this version"
    )


class TaskCompleted(BaseModel):
    case_id: str
    status: str
    version: int


class LinkIn(Input):
    model_config = ConfigDict(extra="forbid")
    main: str = Field(min_length=1, max_length=64, description="the id of the open case this one duplicates")


class Withdraw(Input):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=REASON_MAX)


# -- call-outs, delegations, ratings (呼叫·报到·会商·评价) ------------------------------------


class CallOutIn(Input):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "departments": ["gulou.cgj", "gulou.zjj"],
                    "reason": "井盖缺失需城管与住建联合处置",
                    "meeting_at": "2026-09-28T15:00:00+08:00",
                    "meeting_place": "东街口",
                }
            ]
        },
    )
    departments: list[str] = Field(min_length=1, max_length=MAX_DEPARTMENTS)
    reason: str = Field(min_length=1, max_length=REASON_MAX)
    meeting_at: AwareDatetime | None = None
    meeting_place: str | None = Field(None, max_length=MEETING_PLACE_MAX)
    main: str | None = Field(
        None, description="the department with main responsibility (default: the list's main, if called)"
    )


class ContributionIn(Input):
    model_config = ConfigDict(extra="forbid")
    part: str = Field(min_length=1, max_length=PART_MAX, description="what this cooperating department does (配合)")


class DelegationIn(Input):
    model_config = ConfigDict(extra="forbid")
    street: str = Field(max_length=CODE_MAX)
    department: str = Field(max_length=CODE_MAX)
    matter_pattern: str = Field("*", max_length=CODE_MAX, description="a matter code, a group like road.*, or *")
    expires_at: AwareDatetime
    reason: str = Field(min_length=1, max_length=REASON_MAX)
    district: str | None = Field(None, max_length=CODE_MAX)


class DelegationOut(BaseModel):
    id: int
    district: str
    street: str
    department: str
    matter_pattern: str
    reason: str
    granted_by: str
    granted_at: Timestamp
    expires_at: Timestamp
    active: bool | None = None


class RatingIn(Input):
    model_config = ConfigDict(extra="forbid")
    target: str = Field(max_length=CODE_MAX, description="the rated unit")
    dimension: Dimension
    score: int = Field(ge=SCORE_MIN, le=SCORE_MAX)
    comment: str | None = Field(None, max_length=COMMENT_MAX)


class RatingOut(BaseModel):
    direction: str
    rater_party: str
    rater: str
    target: str
    dimension: str
    score: int
    comment: str | None
    at: Timestamp


class Responsibility(BaseModel):
    district: str
    matter: str
    street: str | None
    main: str
    cooperating: list[str]
    matched_entry: str
    why: str
    time_limit: dict | None
