"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from govflow import __version__
from govflow.bootstrap import App

from . import metrics, pages, problems
from .observability import RequestContext
from .routes import callouts, case_diagram, cases, feed, meta, oversight, pack_tools, packs, tasks, webhooks


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with a 413 problem, before they are parsed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._too_large(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problems.problem(
            413, "too-large", "Request too large", f"the request body exceeds {self.limit} bytes", scope.get("path", "")
        )
        await response(scope, receive, send)


class _TooLarge(Exception):
    """Raised inside the body stream once more than the limit has arrived."""


def create_app(app: App, *, max_request_bytes: int = 1_000_000) -> FastAPI:
    api = FastAPI(
        title="govflow",
        version=__version__,
        description="Front-line governance workflows: report, dispatch, sign for, handle, call out, review, evaluate.",
    )
    api.state.govflow = app
    problems.install(api)
    for router in (
        meta.router,
        cases.router,
        tasks.router,
        callouts.router,
        packs.router,
        feed.router,
        webhooks.router,
        oversight.router,
        pack_tools.router,
        case_diagram.router,
    ):
        api.include_router(router)
    pages.install(api)  # the studio and any later page (web/), built at set-up, served offline
    metrics.install(api, app)  # /metrics, request latency, committed events
    api.add_middleware(BodyLimit, limit=max_request_bytes)
    api.add_middleware(RequestContext)  # outermost: every response, a 413 too, carries X-Request-ID
    return api
