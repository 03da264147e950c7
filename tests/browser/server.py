"""A govflow API process for browser tests and benchmarks: the real app (pages included) on a
free port, in a thread, over a fresh SQLite file, with the reference pack deployed and the demo
principals loaded; the system clock, so deadlines are the ones a user would see."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from sqlalchemy.orm import Session

from govflow.api.app import create_app
from govflow.bootstrap import App, build
from govflow.engine.access.identity import parse_principals, store_principals
from govflow.engine.packs.loader import read_folder
from govflow.engine.store.db import make_engine
from govflow.engine.store.migrate import upgrade
from govflow.settings import REFERENCE_PACK

#: how Debian's Chromium runs headless here (no sandbox in containers; no background traffic on a closed network)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


@dataclass
class Served:
    url: str
    app: App


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve(folder: Path) -> Iterator[Served]:
    """The API on 127.0.0.1 (a free port) over ``folder/govflow.sqlite3``; stopped afterwards."""
    engine = make_engine(f"sqlite:///{folder / 'govflow.sqlite3'}")
    upgrade(engine)
    app = build("", db=engine)
    pack = app.packs.compile(read_folder(REFERENCE_PACK))
    app.packs.deploy(pack, actor="tests", now=app.clock.now())
    principals = (REFERENCE_PACK / "policies" / "demo-principals.yaml").read_text(encoding="utf-8")
    with Session(engine) as session, session.begin():
        store_principals(session, parse_principals(principals, [pack.catalog]), app.clock.now())
    port = free_port()
    config = uvicorn.Config(create_app(app), host="127.0.0.1", port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="govflow-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield Served(f"http://127.0.0.1:{port}", app)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()
