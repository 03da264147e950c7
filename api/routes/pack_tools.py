"""/api/v1/packs: validate a pack without deploying it, the caller's pack permissions, and the
vocabulary of the engine–diagram contract — for editors such as the studio (``/studio/``).

Validation is the same as deploying (``POST /api/v1/packs``) minus storing: the same zip, the
same composition over a base, the same checks, each issue with file, line, element and the
words ``govflow pack validate`` prints. It needs the same Casbin action as deploying
(``deploy_pack`` in the pack's district), checked before the pack is compiled.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from govflow.engine.model.errors import InvalidInput, NotFound
from govflow.engine.model.yaml_text import load_yaml
from govflow.engine.packs.admin import describe
from govflow.engine.packs.vocabulary import vocabulary

from ..deps import AppDep, CurrentPrincipal

router = APIRouter(prefix="/api/v1/packs", tags=["packs"])

_ZIP_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
    }
}


class IssueOut(BaseModel):
    file: str
    message: str
    line: int | None = None
    element: str | None = None
    pack: str | None = Field(
        None, description="the base pack (name and version) when the file and line are the base's, not the pack's own"
    )
    text: str = Field(description="the issue as `govflow pack validate` prints it: file:line [element]: message")


class ValidationOut(BaseModel):
    valid: bool
    message: str
    issues: list[IssueOut]
    pack: dict | None = Field(None, description="the effective pack (as GET /api/v1/packs/{name}/{version}) when valid")


class PackPermissions(BaseModel):
    district: str
    actions: list[str] = Field(
        description="pack actions the caller holds there: read_packs, deploy_pack, activate_pack"
    )


async def zip_body(request: Request) -> bytes:
    """The request body, which must be a zip (``application/zip`` or ``application/octet-stream``)."""
    if request.headers.get("content-type", "").split(";")[0].strip() not in (
        "application/zip",
        "application/octet-stream",
    ):
        raise InvalidInput(
            "send the pack as a zip with Content-Type: application/zip",
            errors=[{"loc": ["header", "content-type"], "msg": "expected application/zip"}],
        )
    return await request.body()


@router.post("/validate", response_model=ValidationOut, openapi_extra=_ZIP_BODY)
async def validate_pack(request: Request, app: AppDep, principal: CurrentPrincipal) -> ValidationOut:
    """Validate a pack (a zip, as for deploying) and store nothing.

    200 with ``valid`` and every issue (file, line, element, message); 403 without
    ``deploy_pack`` in the pack's district; 422 when the body is not a readable zip.
    """
    body = await zip_body(request)
    # compiling takes a few hundred milliseconds of CPU: off the event loop, so other requests go on
    result = await run_in_threadpool(app.pack_admin.validate_archive, principal, body)
    return ValidationOut(
        valid=result.valid,
        message=result.message,
        issues=[IssueOut(**issue.as_dict(), text=str(issue)) for issue in result.issues],
        pack=describe(result.pack) if result.pack is not None else None,
    )


@router.get("/permissions", response_model=list[PackPermissions])
def pack_permissions(app: AppDep, principal: CurrentPrincipal) -> list[PackPermissions]:
    """The pack actions the caller holds in each district (decided by Casbin, as every action is)."""
    return [PackPermissions(district=d, actions=a) for d, a in app.pack_admin.permissions(principal).items()]


@router.get("/vocabulary")
def pack_vocabulary(principal: CurrentPrincipal) -> dict:
    """What diagrams and packs may say: stages, assignees, record kinds, roles and where they
    go, case variables, tiers, deadline units, the sandbox's rules (``govflow.engine.packs.vocabulary``)."""
    return vocabulary()


@router.get("/{name}/{version}/data/{path:path}")
def pack_data(name: str, version: str, path: str, app: AppDep, principal: CurrentPrincipal) -> object:
    """A YAML or JSON file of a version (catalog, forms, responsibility list…) parsed, as JSON:
    for clients that do not parse YAML. Read as ``GET …/files/{path}`` is (``read_packs``)."""
    pack = app.pack_admin.read_version(principal, name, version)
    content = pack.files.get(path)
    if content is None or not path.endswith((".yaml", ".yml", ".json", ".geojson")):
        raise NotFound(f"pack {name} {version} has no YAML or JSON file {path!r}", pack=name, version=version)
    text = content.decode("utf-8")
    return json.loads(text) if path.endswith((".json", ".geojson")) else load_yaml(text)
