"""The web pages the API process serves (the studio at ``/studio/``, and any later page).

Pages are built at set-up from npm packages by ``scripts/setup`` (``web/build.mjs``, esbuild)
into ``web/dist/<page>/``; the sources live in ``web/<page>/`` and nothing built is committed.
Each page is served from its built folder at ``/<page>/``. A page whose folder is not built
(no Node.js at set-up) answers 503 with how to build it, and the API works without it.

The folder comes from ``GOVFLOW_WEB_DIST`` (an installed wheel has no checkout to build in),
else the checkout's ``web/dist``. Every page response carries a Content-Security-Policy that
allows nothing from another origin: the pages must work offline on a district network, and
the policy makes sure they do.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

_CHECKOUT = Path(__file__).resolve().parent.parent
#: where a page's sources live in a checkout: web/<page>/index.html
SOURCES = _CHECKOUT / "web"

#: nothing from another origin; bpmn-js/dmn-js style elements inline and use data: images
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
    "font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


def dist_folder() -> Path:
    """The folder holding the built pages (``GOVFLOW_WEB_DIST`` or the checkout's ``web/dist``)."""
    configured = os.environ.get("GOVFLOW_WEB_DIST")
    return Path(configured) if configured else SOURCES / "dist"


def page_names(dist: Path) -> list[str]:
    """Pages with sources in the checkout (web/<page>/index.html) or a built folder."""
    names = set()
    if SOURCES.is_dir():
        names |= {p.parent.name for p in SOURCES.glob("*/index.html") if p.parent.name not in ("dist", "node_modules")}
    if dist.is_dir():
        names |= {p.parent.name for p in dist.glob("*/index.html")}
    return sorted(n for n in names if not n.startswith("."))  # .<page>.building: a build in progress


class PageFiles:
    """One page's built folder as static files, or a 503 page saying how to build it."""

    def __init__(self, name: str, folder: Path) -> None:
        self.name, self.folder = name, folder
        self._files: StaticFiles | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (self.folder / "index.html").is_file():
            response = HTMLResponse(_not_built(self.name, self.folder), status_code=503, headers=_headers())
            await response(scope, receive, send)
            return
        if self._files is None:
            self._files = StaticFiles(directory=self.folder, html=True)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                path = scope.get("path", "")
                cache = (
                    "public, max-age=31536000, immutable" if "/chunks/" in path or "/assets/" in path else "no-cache"
                )
                headers += [(k.lower().encode(), v.encode()) for k, v in _headers(cache).items()]
                message = {**message, "headers": headers}
            await send(message)

        await self._files(scope, receive, with_headers)


def _headers(cache: str = "no-store") -> dict[str, str]:
    return {
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": cache,
    }


def _not_built(name: str, folder: Path) -> str:
    return (
        '<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>govflow</title>'
        f"<h1>页面 /{html.escape(name)}/ 尚未构建 · The {html.escape(name)} page is not built</h1>"
        "<p>前端资源由 <code>scripts/setup</code> 在安装时用 Node.js 与 npm 构建。"
        "请安装 Node.js（18 或更新）与 npm 后重新运行 <code>scripts/setup</code>。</p>"
        "<p>The page's assets are built at set-up by <code>scripts/setup</code> with Node.js and npm "
        "(<code>npm ci</code>, then <code>node web/build.mjs</code>). Install Node.js 18+ and npm and run "
        f"<code>scripts/setup</code> again. Expected folder: <code>{html.escape(str(folder))}</code>.</p>"
    )


def install(api: FastAPI, dist: Path | None = None) -> list[str]:
    """Serve every page at ``/<page>/`` (``/<page>`` redirects there); returns the page names."""
    dist = dist or dist_folder()
    names = page_names(dist)
    for name in names:
        api.add_api_route(f"/{name}", _redirect_to(f"/{name}/"), methods=["GET"], include_in_schema=False)
        api.mount(f"/{name}", PageFiles(name, dist / name), name=f"page-{name}")
    return names


def _redirect_to(target: str):
    def redirect() -> RedirectResponse:
        return RedirectResponse(target, status_code=308)

    return redirect


__all__ = ["CSP", "PageFiles", "dist_folder", "install", "page_names"]
