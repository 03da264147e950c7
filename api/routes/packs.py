"""/api/v1/packs: deploy, list, inspect, download, activate and roll back process packs.

Deploying takes the pack as a zip in the request body (``Content-Type:
application/zip``), bounded by the server's request limit and by the archive
rules of :func:`govflow.engine.packs.loader.read_zip` (size, file count, no path that
escapes the pack folder). Authorization: :mod:`govflow.engine.packs.admin`.
"""

from __future__ import annotations

import mimetypes
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, Field

from govflow.engine.model.clock import iso
from govflow.engine.model.errors import InvalidInput, NotFound
from govflow.engine.packs import admin as pack_admin

from ..deps import AppDep, CurrentPrincipal
from ..schemas import CODE_MAX, Input

router = APIRouter(prefix="/api/v1/packs", tags=["packs"])

_TYPES = {
    ".bpmn": "application/xml",
    ".dmn": "application/xml",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".geojson": "application/geo+json",
    ".csv": "text/csv",
    ".conf": "text/plain",
    ".json": "application/json",
}


class VersionOut(BaseModel):
    name: str
    version: str
    district: str
    content_hash: str
    active: bool
    deployed_at: str
    deployed_by: str


class Deployed(BaseModel):
    name: str
    version: str
    district: str
    content_hash: str
    active: bool
    created: bool


class Rollback(Input):
    district: str = Field(max_length=CODE_MAX)


def _out(info) -> VersionOut:
    return VersionOut(
        name=info.name,
        version=info.version,
        district=info.district,
        content_hash=info.content_hash,
        active=info.active,
        deployed_at=iso(info.deployed_at),
        deployed_by=info.deployed_by,
    )


@router.get("", response_model=list[VersionOut])
def list_packs(app: AppDep, principal: CurrentPrincipal) -> list[VersionOut]:
    """Deployed versions of the districts whose packs the caller may read (oldest first)."""
    return [_out(v) for v in app.pack_admin.visible_versions(principal)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=Deployed,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def deploy_pack(
    request: Request,
    app: AppDep,
    principal: CurrentPrincipal,
    response: Response,
    activate: Annotated[bool, Query(description="make it the district's active version")] = True,
    if_latest: Annotated[
        str | None,
        Query(
            max_length=32,
            description="store a new version only while this is the pack's newest deployed version "
            "(409 if another version was deployed since)",
        ),
    ] = None,
) -> Deployed:
    """Deploy a pack (a zip of its folder); validated completely before anything is stored.

    An invalid pack is refused with 422 and ``issues`` (file, line, element, message).
    Re-deploying the same version with the same content is a no-op (200).
    """
    if request.headers.get("content-type", "").split(";")[0].strip() not in (
        "application/zip",
        "application/octet-stream",
    ):
        raise InvalidInput(
            "send the pack as a zip with Content-Type: application/zip",
            errors=[{"loc": ["header", "content-type"], "msg": "expected application/zip"}],
        )
    body = await request.body()
    pack, created = app.pack_admin.deploy_archive(
        principal, body, now=app.clock.now(), activate=activate, if_latest=if_latest
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    m = pack.manifest
    response.headers["Location"] = f"/api/v1/packs/{m.name}/{m.version}"
    return Deployed(
        name=m.name,
        version=m.version,
        district=m.district,
        content_hash=pack.content_hash,
        active=any(v.active for v in app.packs.versions(m.district) if v.name == m.name and v.version == m.version),
        created=created,
    )


@router.post("/rollback", response_model=VersionOut)
def rollback(body: Rollback, app: AppDep, principal: CurrentPrincipal) -> VersionOut:
    """Re-activate the district's previously deployed version (running cases are not touched)."""
    pack = app.pack_admin.rollback(principal, body.district)
    return _out(next(v for v in app.packs.versions(body.district) if (v.name, v.version) == pack.key))


@router.get("/{name}/{version}")
def show_pack(name: str, version: str, app: AppDep, principal: CurrentPrincipal) -> dict:
    """The effective pack: manifest, merged settings, base, every file with its origin."""
    return pack_admin.describe(app.pack_admin.read_version(principal, name, version))


@router.post("/{name}/{version}/activate", response_model=VersionOut)
def activate_pack(name: str, version: str, app: AppDep, principal: CurrentPrincipal) -> VersionOut:
    """Make this version the district's active one (new cases start on it)."""
    pack = app.pack_admin.activate(principal, name, version)
    return _out(next(v for v in app.packs.versions(pack.manifest.district) if (v.name, v.version) == pack.key))


@router.get("/{name}/{version}/archive", response_class=Response)
def download_archive(name: str, version: str, app: AppDep, principal: CurrentPrincipal) -> Response:
    """The version's zip (the effective pack, as its cases run it)."""
    app.pack_admin.read_version(principal, name, version)
    return Response(
        app.packs.archive(name, version),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}-{version}.zip"'},
    )


@router.get("/{name}/{version}/files/{path:path}", response_class=Response)
def download_file(name: str, version: str, path: str, app: AppDep, principal: CurrentPrincipal) -> Response:
    """One file of the version, e.g. a diagram for the modeler to open."""
    pack = app.pack_admin.read_version(principal, name, version)
    content = pack.files.get(path)
    if content is None:
        raise NotFound(f"pack {name} {version} has no file {path!r}", pack=name, version=version)
    suffix = "." + path.rsplit(".", 1)[-1] if "." in path else ""
    return Response(
        content, media_type=_TYPES.get(suffix) or mimetypes.guess_type(path)[0] or "application/octet-stream"
    )
