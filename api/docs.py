"""``/docs`` (Swagger UI) and ``/redoc`` served offline: every asset from this process.

A district's network may have no route to the internet. FastAPI's default pages load
Swagger UI and ReDoc from a public CDN, their favicon from FastAPI's site and ReDoc's
fonts from Google; here the scripts, style sheet and favicon come from the
``fastapi-offline`` package (installed from PyPI, never copied into this repository),
mounted at :data:`STATIC`, and ReDoc uses the system fonts.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

#: where the documentation pages' assets are served
STATIC = "/static-docs"
ASSETS = Path(fastapi_offline.__file__).parent / "static"


def install(api: FastAPI) -> None:
    """Serve /docs and /redoc from local assets (create the app with ``docs_url=None, redoc_url=None``)."""
    api.mount(STATIC, StaticFiles(directory=ASSETS), name="static-docs")
    openapi_url = api.openapi_url or "/openapi.json"

    @api.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{api.title} — API",
            swagger_js_url=f"{STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC}/favicon.png",
        )

    @api.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url,
            title=f"{api.title} — API",
            redoc_js_url=f"{STATIC}/redoc.standalone.js",
            redoc_favicon_url=f"{STATIC}/favicon.png",
            with_google_fonts=False,
        )
