"""Schema migrations (Alembic), run by ``govflow db upgrade`` and by tests.

:func:`status` says where a database stands (no schema yet, behind, current);
:func:`upgrade` brings it to the newest revision and returns where it started
and where it ended, so the CLI can say what it did; ``/readyz`` reports a
database whose schema is not current as not ready.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

_SCRIPTS = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@functools.cache
def head() -> str | None:
    """The newest revision this govflow knows (the schema it needs)."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current(engine: Engine) -> str | None:
    """The revision the database is at (None: no govflow schema yet)."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database's schema stands against this govflow's migrations."""

    current: str | None
    head: str | None

    @property
    def is_current(self) -> bool:
        return self.current == self.head

    @property
    def is_empty(self) -> bool:
        return self.current is None

    def describe(self) -> str:
        if self.is_empty:
            return "the database has no govflow schema"
        if self.is_current:
            return f"the schema is current ({self.current})"
        return f"the schema is at {self.current}; this govflow needs {self.head}"


def status(engine: Engine) -> SchemaStatus:
    return SchemaStatus(current(engine), head())


def upgrade(engine: Engine, revision: str = "head") -> SchemaStatus:
    """Bring the database behind ``engine`` up to ``revision``.

    Returns where it started (``current``) and where it ended (``head``): equal when
    there was nothing to do, ``current`` None when the schema was created.
    """
    before = current(engine)
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return SchemaStatus(before, current(engine))


def downgrade(engine: Engine, revision: str) -> None:
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
