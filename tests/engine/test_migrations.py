"""Alembic migrations and the SQLAlchemy models describe the same schema."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from govflow.engine.store.db import Base
from govflow.engine.store.migrate import downgrade, upgrade


def test_migrations_match_the_models(database):
    with database.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_downgrade_and_upgrade_round_trip(database):
    downgrade(database, "base")
    upgrade(database)
    with database.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
