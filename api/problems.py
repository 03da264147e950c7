"""Errors to RFC 9457 problem details, in exactly one place.

The engine's error tree (``govflow.engine.model.errors``) is mapped by base class;
request validation errors and HTTP errors from the framework get the same shape.
Nothing else in ``govflow.api`` turns exceptions into responses.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from govflow.engine.model import errors as e

from .faults import log_fault

log = logging.getLogger("govflow.api")

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "urn:govflow:problem:"

#: (base class, HTTP status, problem type slug); the first matching base wins.
STATUS_BY_ERROR: list[tuple[type[e.GovflowError], int, str]] = [
    (e.FormValidationError, 422, "invalid-form"),
    (e.InvalidInput, 422, "invalid-input"),
    (e.NotFound, 404, "not-found"),
    (e.Unauthenticated, 401, "unauthenticated"),
    (e.PermissionDenied, 403, "forbidden"),
    (e.ConcurrentUpdate, 409, "concurrent-update"),
    (e.IdempotencyMismatch, 422, "idempotency-key-reused"),
    (e.InvalidTransition, 409, "invalid-transition"),
    (e.Conflict, 409, "conflict"),
    (e.PackError, 422, "invalid-pack"),
    (e.DiagramFailed, 409, "diagram-failed"),  # a user's command: nothing written, the element named
    (e.EngineFault, 500, "engine-fault"),
    (e.GovflowError, 500, "error"),
]


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    instance: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {"type": TYPE_BASE + slug, "title": title, "status": status, "detail": detail, "instance": instance}
    body.update({k: v for k, v in extra.items() if v not in (None, [], {})})
    out = dict(headers or {})
    if status == 401:
        out["WWW-Authenticate"] = "Bearer"
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=out or None)


def _govflow_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, e.GovflowError)
    for base, status, slug in STATUS_BY_ERROR:  # noqa: B007 (the match is used after the loop)
        if isinstance(exc, base):
            break
    extra: dict[str, Any] = {"context": exc.context}
    if status >= 500:  # logged under an opaque id the caller can quote, without personal data
        extra["error_id"] = log_fault(exc, request.scope)
    if isinstance(exc, e.InvalidInput):
        extra["errors"] = exc.errors
    if isinstance(exc, e.PackError):
        extra["issues"] = [issue.as_dict() for issue in exc.issues]
    return problem(status, slug, exc.title, exc.message, request.url.path, **extra)


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": list(err.get("loc", ())), "msg": err.get("msg", "")} for err in exc.errors()]
    return problem(
        422,
        "invalid-request",
        "Invalid request",
        "the request body or parameters are invalid",
        request.url.path,
        errors=errors,
    )


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:  # every method of the path, not only those of the first route that matched it
        headers["Allow"] = ", ".join(allowed_methods(request, headers.get("Allow")))
    return problem(
        exc.status_code, f"http-{exc.status_code}", str(exc.detail), str(exc.detail), request.url.path, headers=headers
    )


def allowed_methods(request: Request, given: str | None = None) -> list[str]:
    """The methods the app answers on the request's path (for ``Allow``).

    Starlette names only the methods of the first route that matched the path;
    the OpenAPI document knows every operation of it.
    """
    methods = {m.strip() for m in (given or "").split(",") if m.strip()}
    templates = getattr(request.app.state, "path_templates", None)
    if templates is None:
        templates = []
        for path, operations in request.app.openapi().get("paths", {}).items():
            pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path))
            templates.append((re.compile(pattern), {m.upper() for m in operations}))
        request.app.state.path_templates = templates
    documented = set().union(*[ops for pattern, ops in templates if pattern.fullmatch(request.url.path)])
    return sorted(documented or methods)


# -- the contract: every operation documents its problem responses ------------------------------
class Problem(BaseModel):
    """An RFC 9457 problem detail, as every error response of govflow is (``application/problem+json``)."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(description="urn:govflow:problem:<slug>")
    title: str
    status: int
    detail: str
    instance: str = Field(description="the request path")
    context: dict[str, Any] | None = Field(None, description="what the error is about (case, task, pack, …)")
    errors: list[dict[str, Any]] | None = Field(None, description="invalid fields: loc (where) and msg (why)")
    issues: list[dict[str, Any]] | None = Field(
        None, description="pack issues: file, line, element, message; pack names the base when the line is the base's"
    )
    error_id: str | None = Field(None, description="500: the id under which the error was logged")


#: status -> when govflow answers it; every operation documents those that can happen to it
PROBLEM_STATUSES = {
    400: "The body is not well-formed (e.g. JSON that does not parse).",
    401: "No bearer token, or one that is unknown or revoked.",
    403: "The caller may see the target but may not do this (the reason is in detail), or may not do this anywhere.",
    404: "No such target, or one the caller may not see: both are answered alike (see README, 403 or 404).",
    405: "The path does not answer this method (the Allow header lists those it does).",
    409: "The state moved under the caller: a concurrent update, a state that does not allow this, a conflict.",
    413: "The request body is larger than the server's limit (however it is sent).",
    422: "A field, parameter or form value is invalid (errors name each one), or a pack is invalid (issues).",
    500: "An unexpected error; error_id is the id under which it was logged.",
}


def document(app: FastAPI) -> None:
    """Make the OpenAPI document state the real error responses of every operation.

    Each operation gets the problem responses that can happen to it (401 and
    403 where a bearer token is needed, 409 for writes, the rest everywhere) as
    ``application/problem+json`` with the :class:`Problem` schema, replacing
    FastAPI's ``HTTPValidationError`` 422. Call after every route is included.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        for path in schema.get("paths", {}).values():
            for method, operation in path.items():
                if method not in ("get", "post", "put", "patch", "delete"):
                    continue
                statuses = {400, 404, 405, 413, 422, 500}
                if operation.get("security"):
                    statuses |= {401, 403}
                if method != "get":
                    statuses.add(409)
                responses = operation.setdefault("responses", {})
                for status in sorted(statuses):
                    documented = responses.get(str(status)) or {}
                    if "HTTPValidationError" in str(documented):
                        documented = {}
                    content = {  # a route's own error format (e.g. Open311's) stays beside the problem
                        **(documented.get("content") or {}),
                        PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}},
                    }
                    responses[str(status)] = {
                        **documented,
                        "description": documented.get("description") or PROBLEM_STATUSES[status],
                        "content": content,
                    }
                    if status == 405:
                        responses["405"]["headers"] = {
                            "Allow": {"description": "the methods the path answers", "schema": {"type": "string"}}
                        }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install(app: FastAPI) -> None:
    app.add_exception_handler(e.GovflowError, _govflow_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
