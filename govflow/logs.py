"""Logging for govflow processes: one JSON object per line, each with the request id.

``govflow serve`` and ``govflow worker`` call :func:`configure` once. The format is
``json`` (one object per line: ``ts`` in RFC 3339 UTC, ``level``, ``logger``,
``msg``, ``request_id`` when a request is being served, any ``extra`` fields,
``exc`` with the traceback), or ``text`` for a person at a terminal; ``auto``
(the default) picks ``text`` when standard error is a terminal, else ``json``.

The request id lives in a context variable: the API's middleware
(:mod:`govflow.api.observability`) sets it from the ``X-Request-ID`` header (or a
new one) for the duration of a request, and every record logged meanwhile, in
the engine too, carries it.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import sys
from typing import Any

from govflow.redaction import Redacting

#: the id of the request being served (None outside a request)
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("govflow_request_id", default=None)

#: attributes every LogRecord has; anything else was passed with ``extra=`` and is logged as a field
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}
FORMATS = ("auto", "json", "text")


def rfc3339(at: dt.datetime) -> str:
    """An aware instant as RFC 3339 in UTC with ``Z`` (the one timestamp format of govflow)."""
    text = at.astimezone(dt.UTC).isoformat(timespec="microseconds" if at.microsecond else "seconds")
    return text.replace("+00:00", "Z")


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record (``record.request_id``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": rfc3339(dt.datetime.fromtimestamp(record.created, dt.UTC)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid:
            entry["request_id"] = rid
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in ("request_id", "color_message") and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(rid)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        record.rid = f" [{rid}]" if rid else ""
        return super().format(record)


def resolve_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if fmt == "auto":
        return "text" if sys.stderr.isatty() else "json"
    return fmt


def configure(fmt: str = "auto", level: int = logging.INFO) -> str:
    """Send every logger (uvicorn's too) through one stderr handler in ``fmt``; returns the format used."""
    fmt = resolve_format(fmt)
    handler = logging.StreamHandler(sys.stderr)
    # no reporter data in any log line: SQL parameters, exception messages, phone numbers (govflow.redaction)
    handler.setFormatter(Redacting(JsonFormatter() if fmt == "json" else TextFormatter()))
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # the API logs one line per request itself (with its request id); uvicorn's own access log is off
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("spiff").setLevel(logging.WARNING)  # per-task state changes are on the case record
    return fmt
