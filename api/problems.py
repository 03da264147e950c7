"""Errors to RFC 9457 problem details, in exactly one place.

The engine's error tree (``govflow.engine.model.errors``) is mapped by base class;
request validation errors and HTTP errors from the framework get the same shape.
Nothing else in ``govflow.api`` turns exceptions into responses.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from govflow.engine.model import errors as e

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
    (e.EngineFault, 500, "engine-fault"),
    (e.GovflowError, 500, "error"),
]


def problem(status: int, slug: str, title: str, detail: str, instance: str, **extra: Any) -> JSONResponse:
    body = {"type": TYPE_BASE + slug, "title": title, "status": status, "detail": detail, "instance": instance}
    body.update({k: v for k, v in extra.items() if v not in (None, [], {})})
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _govflow_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, e.GovflowError)
    for base, status, slug in STATUS_BY_ERROR:  # noqa: B007 (the match is used after the loop)
        if isinstance(exc, base):
            break
    if status >= 500:
        log.error("engine fault on %s: %s", request.url.path, exc, exc_info=exc.__cause__ or exc)
    extra: dict[str, Any] = {"context": exc.context}
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
    return problem(exc.status_code, f"http-{exc.status_code}", str(exc.detail), str(exc.detail), request.url.path)


def install(app: FastAPI) -> None:
    app.add_exception_handler(e.GovflowError, _govflow_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
