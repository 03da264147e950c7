"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from govflow import __version__
from govflow.bootstrap import App

from . import docs, metrics, pages, problems
from .door import BodyLimit, CatchAll
from .observability import RequestContext
from .routes import (
    callouts,
    case_diagram,
    cases,
    feed,
    incidents,
    meta,
    open311,
    oversight,
    pack_tools,
    packs,
    tasks,
    webhooks,
)


def create_app(app: App, *, max_request_bytes: int = 1_000_000) -> FastAPI:
    api = FastAPI(
        title="govflow",
        version=__version__,
        description="Front-line governance workflows: report, dispatch, sign for, handle, call out, review, evaluate.",
        docs_url=None,  # served offline by docs.install (no CDN)
        redoc_url=None,
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
        open311.router,
        oversight.router,
        pack_tools.router,
        case_diagram.router,
        incidents.router,
    ):
        api.include_router(router)
    pages.install(api)  # the studio and any later page (web/), built at set-up, served offline
    metrics.install(api, app)  # /metrics, request latency, committed events
    docs.install(api)
    problems.document(api)  # every operation's problem responses in the OpenAPI document
    api.add_middleware(CatchAll)  # any unexpected exception: a 500 problem with an error id
    api.add_middleware(BodyLimit, limit=max_request_bytes)  # outside CatchAll: a 413 however the body is sent
    api.add_middleware(RequestContext)  # outermost: every response, a 413 too, carries X-Request-ID
    return api
