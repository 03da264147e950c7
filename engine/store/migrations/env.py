"""Alembic environment for govflow (migrations live inside the package).

Run through ``govflow db upgrade`` (or :func:`govflow.engine.store.migrate.upgrade`),
which passes the database URL or an open connection in ``config.attributes``.
"""

from alembic import context
from sqlalchemy import pool

from govflow.engine.store.db import Base, make_engine

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("govflow migrations need a database URL or an open connection")
    engine = make_engine(url, poolclass=pool.NullPool)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("govflow migrations run online only")
run_migrations_online()
