"""/api/v1/cases/{id}/diagram: a case on the diagrams of the version it runs on."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ..deps import AppDep, CurrentPrincipal

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])


class DiagramFile(BaseModel):
    path: str
    xml: str


class ElementStates(BaseModel):
    completed: list[str] = Field(description="elements that have run")
    open: list[str] = Field(description="user tasks waiting for a person")
    waiting: list[str] = Field(description="running sub-processes, pending timers and signals")
    cancelled: list[str] = Field(description="elements left when an interrupting event fired")


class CaseDiagram(BaseModel):
    case_id: str
    pack: dict[str, str]
    process: str
    diagrams: list[DiagramFile] = Field(
        description="the case process's file first, then those of the processes it calls"
    )
    elements: ElementStates


@router.get("/{case_id}/diagram", response_model=CaseDiagram)
def case_diagram(case_id: str, app: AppDep, principal: CurrentPrincipal) -> dict:
    """Where the case stands on its diagram: completed elements, open tasks, waiting events.

    For whoever may read the case (its reporter, or ``read_case`` in its domain).
    """
    return app.queries.diagram(principal, case_id)
