"""Service metadata: health and who-am-i."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import AppDep, CurrentPrincipal

router = APIRouter(tags=["meta"])


@router.get("/healthz")
def healthz(app: AppDep) -> dict:
    return {"status": "ok", "districts": app.packs.districts()}


@router.get("/api/v1/me")
def me(principal: CurrentPrincipal) -> dict:
    return {"id": principal.id, "name": principal.name, "unit": principal.unit, "roles": list(principal.roles)}
