"""Shared set-up for the benchmarks: fresh databases, the reference pack, demo principals."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from govflow.bootstrap import App, build
from govflow.engine.access.identity import parse_principals, store_principals
from govflow.engine.packs.loader import LoadedPack, load_pack, read_folder
from govflow.engine.store.db import make_engine
from govflow.engine.store.migrate import upgrade
from govflow.plugins import PackPlugins, plugin_manager
from govflow.settings import REFERENCE_PACK

PG_URL = (
    os.environ.get("GOVFLOW_BENCH_DATABASE_URL")
    or os.environ.get("GOVFLOW_TEST_DATABASE_URL")
    or "postgresql://postgres@127.0.0.1:5432/test"
)


def fresh_database(kind: str) -> tuple[str, Engine]:
    """A new, migrated database: an SQLite file in a temp dir, or the PostgreSQL test database wiped."""
    if kind == "sqlite":
        url = f"sqlite:///{tempfile.mkdtemp(prefix='govflow-bench-')}/bench.sqlite3"
        engine = make_engine(url)
    else:
        url = PG_URL
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    upgrade(engine)
    return url, engine


def reference_pack() -> LoadedPack:
    return load_pack(read_folder(REFERENCE_PACK), calendar_factory=PackPlugins.acting(plugin_manager()).calendar)


def ready_app(engine: Engine, pack: LoadedPack, *, load_principals: bool = True, clock: Any = None) -> App:
    app = build("", db=engine, clock=clock)
    app.packs.deploy(pack, actor="bench", now=app.clock.now())
    if not load_principals:
        return app
    entries = parse_principals(
        (REFERENCE_PACK / "policies" / "demo-principals.yaml").read_text(encoding="utf-8"), [pack.catalog]
    )
    with Session(engine) as session, session.begin():
        store_principals(session, entries, app.clock.now())
    return app


def rate(n: int, fn: Callable[[int], object], *, repeat: int = 3) -> float:
    """Best-of-``repeat`` operations per second of ``fn(i)`` over ``n`` calls."""
    best = 0.0
    for r in range(repeat):
        start = time.perf_counter()
        for i in range(n):
            fn(r * n + i)
        best = max(best, n / (time.perf_counter() - start))
    return best


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def pack_root() -> Path:
    return REFERENCE_PACK
