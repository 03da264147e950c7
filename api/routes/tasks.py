"""/api/v1/tasks: the caller's inbox and task completion."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ..deps import AppDep, CurrentPrincipal
from ..schemas import OFFSET_MAX, InboxTask, TaskComplete, TaskCompleted

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])


@router.get("", response_model=list[InboxTask])
def inbox(
    app: AppDep,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=OFFSET_MAX)] = 0,
) -> list[dict]:
    """Open tasks of the caller's unit and role, and tasks assigned to the caller."""
    return app.queries.inbox(principal, limit=limit, offset=offset)


@router.post("/{task_id}/complete", response_model=TaskCompleted)
def complete_task(task_id: str, body: TaskComplete, app: AppDep, principal: CurrentPrincipal) -> TaskCompleted:
    """Complete a task with its form data (validated against the task's form)."""
    outcome = app.cases.complete_task(principal, task_id, body.data, expected_version=body.expected_version)
    return TaskCompleted(case_id=str(outcome.case_id), status=outcome.status, version=outcome.version)
