"""Request ids and one log line per request.

:class:`RequestContext` is the outermost middleware of the API. For every HTTP
request it

* takes the caller's ``X-Request-ID`` when it is a sane token (1–128 visible ASCII
  characters, no spaces), else makes a new one (32 hex digits);
* binds it to :data:`govflow.logs.request_id` while the request is served, so every
  record logged meanwhile (the engine's too) carries it;
* echoes it in the response's ``X-Request-ID`` header (problem responses included);
* logs one ``govflow.access`` line when the response is sent: method, path (no query
  string: it may hold personal data), status and duration.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from govflow.logs import request_id

HEADER = "X-Request-ID"
_HEADER_KEY = HEADER.lower().encode("latin-1")
_SANE = re.compile(rb"^[\x21-\x7e]{1,128}$")

access = logging.getLogger("govflow.access")


def new_request_id() -> str:
    return uuid.uuid4().hex


class RequestContext:
    """Request id in, request id out, one access line per request (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope.get("headers") or [] if k == _HEADER_KEY), None)
        rid = given.decode("ascii") if given is not None and _SANE.match(given) else new_request_id()
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != _HEADER_KEY]
                headers.append((_HEADER_KEY, rid.encode("ascii")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = round((time.perf_counter() - started) * 1000, 1)
            access.info(
                "%s %s %s %.1fms",
                scope.get("method"),
                scope.get("path"),
                status,
                elapsed,
                extra={"method": scope.get("method"), "path": scope.get("path"), "status": status, "ms": elapsed},
            )
            request_id.reset(token)
