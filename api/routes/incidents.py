"""/api/v1/incidents and case migration: what operators do when the engine could not run a case.

* ``GET /api/v1/incidents``: open (or resolved) incidents of the caller's district;
* ``POST /api/v1/incidents/{id}/retry``: run the case again now, after fixing the cause (409
  naming the element if it fails again; the incident stays open with one more attempt);
* ``POST /api/v1/packs/{name}/migrations``: move running cases to another version of their pack
  (e.g. one that fixes a broken diagram), through the unit of work, as ``govflow pack migrate``.

Casbin decides (``manage_incidents``, ``migrate_cases``) in the caller's district before anything
about the target is read: a caller who may not act learns nothing of it.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from govflow.engine.cases import incidents
from govflow.engine.cases.migration import migrate
from govflow.engine.cases.timers import retry_incident
from govflow.engine.model.errors import NotFound, PermissionDenied

from ..deps import AppDep, CurrentPrincipal

router = APIRouter(tags=["operations"])


class IncidentOut(BaseModel):
    id: int
    case_id: str
    district: str
    source: str = Field(description="what ran the case: timer (or worker)")
    element: str | None = Field(description="the diagram element that failed, when known")
    error: str
    status: str = Field(description="open | resolved")
    attempts: int
    opened_at: dt.datetime
    failed_at: dt.datetime
    retry_at: dt.datetime | None = Field(description="when the engine tries again by itself")
    resolved_at: dt.datetime | None
    resolved_by: str | None


class MigrationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str = Field(min_length=1, max_length=64, description="the version the cases run on now")
    target: str = Field(min_length=1, max_length=64, description="the version to move them to")
    cases: list[Annotated[str, Field(max_length=64)]] | None = Field(None, max_length=1000)
    dry_run: bool = False


class MigrationOut(BaseModel):
    source: str
    target: str
    dry_run: bool
    migrated: list[str]
    refused: dict[str, list[str]]
    conflicts: list[str]


def _district(principal: Any) -> str:
    if principal.district is None:
        raise PermissionDenied(f"{principal.id} acts in no district", principal=principal.id)
    return str(principal.district)


@router.get("/api/v1/incidents", response_model=list[IncidentOut])
def list_incidents(
    app: AppDep,
    principal: CurrentPrincipal,
    status: Annotated[str, Query(pattern="^(open|resolved|all)$")] = "open",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[Any]:
    district = _district(principal)
    app.pack_admin.authorize(principal, district, "manage_incidents")
    found = incidents.list_incidents(
        app.db, status=None if status == "all" else status, district=district, limit=limit, offset=offset
    )
    return [IncidentOut(**f.__dict__) for f in found]


@router.post("/api/v1/incidents/{incident_id}/retry", response_model=IncidentOut)
def retry(app: AppDep, principal: CurrentPrincipal, incident_id: Annotated[int, Path(ge=1, le=2**62)]) -> Any:
    district = _district(principal)
    app.pack_admin.authorize(principal, district, "manage_incidents")
    if incidents.get_incident(app.db, incident_id).district != district:
        raise NotFound("no such incident", incident=incident_id)
    done = retry_incident(app.cases, incident_id, actor=principal.id)
    return IncidentOut(**done.__dict__)


@router.post("/api/v1/packs/{name}/migrations", response_model=MigrationOut)
def migrate_cases(app: AppDep, principal: CurrentPrincipal, name: str, body: MigrationIn) -> Any:
    district = _district(principal)
    app.pack_admin.authorize(principal, district, "migrate_cases")
    source = app.packs.get(name, body.source)
    if source.manifest.district != district:
        raise NotFound("no such pack version", pack=name, version=body.source)
    report = migrate(
        app.cases.uow,
        app.packs,
        name,
        body.source,
        body.target,
        actor=principal.id,
        now=app.clock.now(),
        case_ids=body.cases,
        dry_run=body.dry_run,
    )
    return MigrationOut(**report.__dict__)
