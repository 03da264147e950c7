"""Health and readiness (issue 15.4): ``/healthz`` says the process runs; ``/readyz`` answers 200
only when the database is reachable, the schema is current and every district's pack is loaded,
else 503 naming the check that failed (what a load balancer or an orchestrator reads)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import text

from govflow.api.app import create_app
from govflow.bootstrap import build
from govflow.engine.store.db import make_engine


def ready(app) -> tuple[int, dict]:
    with TestClient(create_app(app)) as client:
        assert client.get("/healthz").status_code == 200
        response = client.get("/readyz")
        return response.status_code, response.json()


def test_a_serving_process_is_ready(govflow):
    assert ready(govflow) == (
        200,
        {"status": "ready", "checks": {"database": "ok", "schema": "ok", "packs": "ok"}, "districts": ["gulou"]},
    )


def test_no_active_pack_is_not_ready(database, clock):
    code, body = ready(build("", db=database, clock=clock))
    assert code == 503 and body["status"] == "not ready"
    assert body["checks"]["packs"] == "no district has an active pack"


def test_a_schema_behind_the_code_is_not_ready(govflow):
    with govflow.db.begin() as conn:
        head = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        code, body = ready(govflow)
    finally:  # the PostgreSQL test database is shared by the session's tests
        with govflow.db.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head})
    assert code == 503
    assert body["checks"]["schema"] == f"the schema is at 0001; this govflow needs {head}"


def test_an_unreachable_database_is_not_ready(tmp_path, clock):
    gone = make_engine(f"sqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'db.sqlite3'}")
    code, body = ready(build("", db=gone, clock=clock))
    assert code == 503
    assert body["checks"] == {"database": "unreachable: OperationalError"}
