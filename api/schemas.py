"""Request and response bodies of the REST API (pydantic v2)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from govflow.engine.cases.service import CHANNELS

Channel = Literal[CHANNELS]  # type: ignore[valid-type]


class Location(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lat: float | None = Field(None, ge=-90, le=90)
    lng: float | None = Field(None, ge=-180, le=180)
    address: str | None = Field(None, max_length=256)


class Reporter(BaseModel):
    """The reporter's contact details (personal data: masked for those who need not see them)."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=64)
    phone: str | None = Field(None, max_length=32, pattern=r"^[0-9+\- ]{3,32}$")


class CaseCreate(BaseModel):
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
    description: str = Field(min_length=1, max_length=4000)
    category: str | None = Field(None, max_length=64, description="a matter code, e.g. road.pothole")
    location: Location | None = None
    reporter: Reporter | None = None
    district: str | None = Field(None, max_length=64)


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
    due_at: dt.datetime | None
    created_at: dt.datetime


class InboxTask(TaskOut):
    case_status: str
    category: str | None
    owner_unit: str | None


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
    next_deadline: dt.datetime | None
    overdue_since: dt.datetime | None
    escalated_to: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    closed_at: dt.datetime | None
    version: int


class EventOut(BaseModel):
    seq: int
    at: dt.datetime
    kind: str
    actor: str
    actor_unit: str | None
    power: str | None
    data: dict[str, Any]


class TaskComplete(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data: dict[str, Any] = Field(default_factory=dict, description="form data, as the task's form expects")
    expected_version: int | None = Field(None, description="refuse with 409 unless the case is at this version")


class TaskCompleted(BaseModel):
    case_id: str
    status: str
    version: int


class Withdraw(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000)
