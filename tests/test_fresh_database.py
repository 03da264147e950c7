"""A fresh database (issue 15): ``pack deploy`` / ``pack list`` never crash on it. An SQLite file is
given its schema on first use (and says so); a PostgreSQL database without the schema is refused
in one line naming what to run."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import text

from govflow.engine.store.db import make_engine
from govflow.settings import REFERENCE_PACK
from tests.test_cli import run

PG_URL = os.environ.get("GOVFLOW_TEST_DATABASE_URL")


def test_a_fresh_sqlite_file_gets_its_schema_on_first_use(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    listed = run("pack", "list", "--database-url", url)
    assert (listed.exit_code, listed.stdout) == (0, "")
    assert listed.stderr.startswith("created the database schema (") and url in listed.stderr
    deployed = run("pack", "deploy", REFERENCE_PACK, "--database-url", url)
    assert deployed.exit_code == 0, deployed.output
    assert "reference" in run("pack", "list", "--database-url", url).stdout


@pytest.mark.skipif(not PG_URL, reason="GOVFLOW_TEST_DATABASE_URL is not set")
def test_a_postgresql_database_without_the_schema_is_refused_in_one_line():
    schema = "govflow_fresh_test"
    engine = make_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}options=-csearch_path%3D{schema}"
    try:
        for args in (("pack", "list"), ("pack", "deploy", REFERENCE_PACK)):
            result = run(*args, "--database-url", url)
            assert result.exit_code == 1 and "Traceback" not in result.output
            [line] = result.stderr.strip().splitlines()
            assert line.startswith("refused: the database has no govflow schema (postgresql://"), line
            assert line.endswith("): run `govflow db upgrade` first"), line
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        engine.dispose()
