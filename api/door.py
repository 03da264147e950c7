"""The API's door: what every request passes before and after the routes.

* :class:`BodyLimit` refuses a body over the limit with a 413 problem however it
  is sent: a ``Content-Length`` over the limit at once, a chunked body once more
  than the limit has arrived (before the app runs), a body longer than its
  declared length as soon as it overflows (the app then sees a disconnected
  client and whatever it answers is dropped). No route (JSON, zip, form, or one
  that reads no body) can turn the refusal into a 400 or a 500.
* :class:`CatchAll` turns any exception that escapes the routes and the
  problem handlers into a ``500 application/problem+json`` with an opaque
  ``error_id``; the same id is logged with the exception's type and its frames
  (:func:`govflow.api.faults.log_fault`), never with what the caller sent.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import problems
from .faults import log_fault


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with a 413 problem, however they are sent.

    A declared ``Content-Length`` is checked before the app runs (and the body is
    still counted as it arrives). A body without one (chunked) is read up to the
    limit before the app runs, so every route answers 413 alike, those that never
    read their body included; at most ``limit`` bytes are held per request.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = [v for k, v in scope.get("headers") or [] if k == b"content-length"]
        if declared and (len(declared) > 1 or not declared[0].isdigit() or int(declared[0]) > self.limit):
            await self._too_large(scope, send)
            return
        if not declared:
            await self._buffered(scope, receive, send)
            return
        seen = 0
        refused = False

        async def limited() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:  # more than declared: refuse, and the app sees the client gone
                refused = True
                await self._too_large(scope, send)
                return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        try:
            await self.app(scope, limited, guarded_send)
        except Exception:
            if not refused:
                raise

    async def _buffered(self, scope: Scope, receive: Receive, send: Send) -> None:
        messages: list[Message] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                messages.append(message)
                break
            seen += len(message.get("body", b""))
            if seen > self.limit:
                await self._too_large(scope, send)
                return
            messages.append(message)
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, send: Send) -> None:
        response = problems.problem(
            413, "too-large", "Request too large", f"the request body exceeds {self.limit} bytes", scope.get("path", "")
        )
        response.headers["Connection"] = "close"

        async def nothing() -> Message:
            return {"type": "http.disconnect"}

        await response(scope, nothing, send)


class CatchAll:
    """Any unexpected exception becomes a 500 problem with an ``error_id`` that is also in the log."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            error_id = log_fault(exc, scope)
            if started:
                return  # too late for a problem: the response is on its way; the log has the id
            response = problems.problem(
                500,
                "internal-error",
                "Internal error",
                f"an unexpected error occurred; quote error id {error_id} to the operators",
                scope.get("path", ""),
                error_id=error_id,
            )
            await response(scope, receive, send)
