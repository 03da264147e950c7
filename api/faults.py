"""Unexpected errors in the log: an opaque id, the exception's type and frames, no personal data.

The message of an exception is logged only when it is one of govflow's own
(:class:`~govflow.engine.model.errors.GovflowError`), whose messages never quote
what a caller sent. Messages of database drivers, validators and libraries can
(a reporter's name, phone or description in a failed statement's parameters or
a validation error's input), so only their type, and a database error's
SQLSTATE, are logged.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from govflow.engine.model.errors import GovflowError
from govflow.redaction import describe_exception

log = logging.getLogger("govflow.api")


def log_fault(exc: BaseException, scope: Any = None) -> str:
    """Log an unexpected exception under a new opaque id (returned); no personal data reaches the log.

    The record has the id, the method and path (never the query string), the
    exception's type and its stack frames (file, line, function); the message
    only for govflow's own errors, whose messages never quote callers' text.
    """
    error_id = uuid.uuid4().hex
    scope = scope or {}
    log.error(
        "error %s on %s %s: %s\n%s",
        error_id,
        scope.get("method", "-"),
        scope.get("path", "-"),
        _describe(exc),
        describe_exception(exc),
        extra={"error_id": error_id},
    )
    return error_id


def _describe(exc: BaseException) -> str:
    name = f"{type(exc).__module__}.{type(exc).__qualname__}"
    if isinstance(exc, GovflowError):
        return f"{name}: {exc.message}"
    code = getattr(getattr(exc, "orig", None), "sqlstate", None) or getattr(exc, "sqlstate", None)
    return f"{name}" + (f" (SQLSTATE {code})" if code else "") + " (message withheld: it may quote personal data)"
