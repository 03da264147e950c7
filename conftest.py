"""Shared fixtures: a real database (SQLite, and PostgreSQL when
GOVFLOW_TEST_DATABASE_URL is set), the reference pack, demo principals, a
manual clock, and the real API through Starlette's TestClient."""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from govflow.api.app import create_app
from govflow.bootstrap import App, build
from govflow.engine.access.identity import parse_principals, store_principals
from govflow.engine.model.clock import ManualClock
from govflow.engine.packs.loader import LoadedPack, load_pack, read_folder
from govflow.engine.store.db import Base, make_engine
from govflow.engine.store.migrate import upgrade
from govflow.plugins import PackPlugins, hookimpl, plugin_manager
from govflow.settings import REFERENCE_PACK

PG_URL = os.environ.get("GOVFLOW_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
DEMO_PRINCIPALS = REFERENCE_PACK / "policies" / "demo-principals.yaml"
#: Monday 28 September 2026, 09:00 Beijing time: the eve of the National Day holiday.
START = dt.datetime(2026, 9, 28, 1, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _logging_left_as_found():
    """A test may not leave log handlers or a level on the root logger (e.g. by running
    `govflow serve` in-process, whose logging set-up writes to that test's captured stderr):
    every later test would log into a closed stream. Undone here, and the test fails."""
    root = logging.getLogger()
    handlers, level = set(root.handlers), root.level
    yield
    leaked = [h for h in root.handlers if h not in handlers and not type(h).__module__.startswith("_pytest")]
    for handler in leaked:
        root.removeHandler(handler)
    left_level = logging.getLevelName(root.level) if root.level != level else None
    root.setLevel(level)
    assert not leaked and not left_level, f"the test left on the root logger: {leaked or f'level {left_level}'}"


@pytest.fixture(scope="session")
def reference_files() -> dict[str, bytes]:
    return read_folder(REFERENCE_PACK)


def plugin_calendar(manifest):
    return PackPlugins.acting(plugin_manager()).calendar(manifest)


@pytest.fixture(scope="session")
def reference_pack(reference_files) -> LoadedPack:
    return load_pack(reference_files, calendar_factory=plugin_calendar)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("db") / "template.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_engine():
    if not PG_URL:
        pytest.skip("GOVFLOW_TEST_DATABASE_URL is not set")
    engine = make_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def database(request, tmp_path, sqlite_template):
    if request.param == "sqlite":
        path = tmp_path / "govflow.sqlite3"
        shutil.copy(sqlite_template, path)
        engine = make_engine(f"sqlite:///{path}")
        yield engine
        engine.dispose()
        return
    engine = request.getfixturevalue("pg_engine")
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield engine


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def demo_entries(reference_pack):
    return parse_principals(DEMO_PRINCIPALS.read_text(encoding="utf-8"), [reference_pack.catalog])


class Notifications:
    """A plugin that hears every committed event, as a district's notifier would."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.warnings: list[dict] = []

    @hookimpl
    def govflow_case_events(self, events):
        self.events.extend(events)

    @hookimpl
    def govflow_warnings(self, warnings):
        self.warnings.extend(warnings)


@pytest.fixture
def notifications() -> Notifications:
    return Notifications()


@pytest.fixture
def govflow(database, clock, reference_pack, demo_entries, notifications) -> App:
    app = build("", db=database, clock=clock, extra_plugins=[notifications])
    app.packs.deploy(reference_pack, actor="tests", now=clock.now())
    with Session(database) as session, session.begin():
        store_principals(session, demo_entries, clock.now())
    return app


@pytest.fixture
def principals(demo_entries):
    return {p.id: p for p, _ in demo_entries}


@pytest.fixture(scope="session")
def tokens() -> dict[str, str]:
    data = yaml.safe_load(DEMO_PRINCIPALS.read_text(encoding="utf-8"))
    return {p["id"]: p["token"] for p in data["principals"]}


@pytest.fixture
def client(govflow) -> TestClient:
    with TestClient(create_app(govflow)) as test_client:
        yield test_client


class Api:
    """A thin helper for tests: requests as a named demo principal."""

    def __init__(self, client: TestClient, tokens: dict[str, str]) -> None:
        # a copy: scenarios add the tokens of the districts they deploy, and must not leak them
        # into the session's demo tokens (and so into whichever test runs next)
        self.client, self.tokens = client, dict(tokens)

    def headers(self, who: str | None, **extra: str) -> dict[str, str]:
        headers = dict(extra)
        if who:
            headers["Authorization"] = f"Bearer {self.tokens.get(who, who)}"
        return headers

    def get(self, who: str | None, url: str, **kw):
        return self.client.get(url, headers=self.headers(who), **kw)

    def post(self, who: str | None, url: str, json=None, headers: dict[str, str] | None = None, **kw):
        return self.client.post(url, json=json, headers=self.headers(who, **(headers or {})), **kw)

    def report(self, who: str, **body):
        body.setdefault("channel", "app")
        return self.post(who, "/api/v1/cases", json=body)

    def inbox(self, who: str, case_id: str | None = None) -> list[dict]:
        response = self.get(who, "/api/v1/tasks")
        assert response.status_code == 200, response.text
        return [t for t in response.json() if case_id is None or t["case_id"] == case_id]

    def complete(self, who: str, task_id: str, **data):
        return self.post(who, f"/api/v1/tasks/{task_id}/complete", json={"data": data})


@pytest.fixture
def api(client, tokens) -> Api:
    return Api(client, tokens)
