"""Service metadata: liveness, readiness and who-am-i.

``/healthz`` answers as long as the process serves HTTP (liveness: restart it if not);
``/readyz`` answers 200 only when the process can do its work (readiness: send it
traffic): the database is reachable, its schema is the one this govflow needs, and
every district's active pack is loaded. A load balancer or orchestrator polls both
(docs/production.md).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from govflow import __version__

from ..deps import AppDep, CurrentPrincipal

router = APIRouter(tags=["meta"])


class Health(BaseModel):
    status: str
    version: str


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]
    districts: list[str]


@router.get("/healthz", response_model=Health)
def healthz() -> dict[str, Any]:
    """Liveness: the process serves HTTP (touches nothing else)."""
    return {"status": "ok", "version": __version__}


@router.get(
    "/readyz", response_model=Readiness, responses={503: {"model": Readiness, "description": "not ready: see checks"}}
)
def readyz(app: AppDep) -> JSONResponse:
    """Readiness: database reachable, schema current, every district's active pack loaded."""
    from govflow.engine.store.migrate import status

    checks: dict[str, str] = {}
    districts: list[str] = []
    try:
        with app.db.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    if checks["database"] == "ok":
        try:
            schema = status(app.db)
            checks["schema"] = "ok" if schema.is_current else schema.describe()
        except Exception as exc:
            checks["schema"] = f"unknown: {type(exc).__name__}"
        try:
            districts = app.packs.districts()
            for district in districts:
                app.packs.active(district)
            checks["packs"] = "ok" if districts else "no district has an active pack"
        except Exception as exc:
            checks["packs"] = f"not loaded: {type(exc).__name__}: {exc}"
    ready = all(v == "ok" for v in checks.values()) and len(checks) == 3
    body = {"status": "ready" if ready else "not ready", "checks": checks, "districts": districts}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/api/v1/me")
def me(principal: CurrentPrincipal) -> dict:
    return {"id": principal.id, "name": principal.name, "unit": principal.unit, "roles": list(principal.roles)}
