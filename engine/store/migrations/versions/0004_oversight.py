"""Supervision: the rate counters, what the projection remembers of each case, early warnings.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29

Existing cases are projected from their event log by migration 0007 (the same
fold as ``govflow rates rebuild``, with the columns the projection has today), so
the projection is complete from the start.
"""

import sqlalchemy as sa
from alembic import op

from govflow.engine.store.db import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "oversight_cases",
        sa.Column("case_id", sa.Uuid, sa.ForeignKey("cases.id"), primary_key=True),
        sa.Column("district", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(64)),
        sa.Column("matter", sa.String(64)),
        sa.Column("handled", sa.Boolean, nullable=False),
        sa.Column("called", sa.Boolean, nullable=False),
        sa.Column("last_seq", sa.Integer, nullable=False),
    )
    op.create_table(
        "rate_counters",
        sa.Column("district", sa.String(64), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("unit", sa.String(64), primary_key=True),
        sa.Column("matter", sa.String(64), primary_key=True),
        sa.Column("metric", sa.String(96), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_rate_counters_district_day", "rate_counters", ["district", "day"])
    op.create_table(
        "warnings",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("district", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("unit", sa.String(64), nullable=False),
        sa.Column("matter", sa.String(64), nullable=False),
        sa.Column("place", sa.String(64), nullable=False),
        sa.Column("window_key", sa.String(64), nullable=False),
        sa.Column("raised_at", UTCDateTime, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=False),
        sa.UniqueConstraint("district", "kind", "unit", "matter", "place", "window_key", name="uq_warnings_once"),
    )
    op.create_index("ix_warnings_district_raised", "warnings", ["district", "raised_at"])
    op.create_index("ix_cases_district_created", "cases", ["district", "created_at"])
    _append_only("warnings")


def _append_only(table: str) -> None:
    """Warnings are on the record: the database refuses UPDATE and DELETE (as for case events)."""
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(
            f"CREATE FUNCTION {table}_append_only() RETURNS trigger AS $$ "
            f"BEGIN RAISE EXCEPTION '{table} is append-only'; END; $$ LANGUAGE plpgsql"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"
        )
    elif bind.dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS warnings_no_change ON warnings")
        op.execute("DROP FUNCTION IF EXISTS warnings_append_only()")
    op.drop_index("ix_cases_district_created", "cases")
    op.drop_index("ix_warnings_district_raised", "warnings")
    op.drop_table("warnings")
    op.drop_index("ix_rate_counters_district_day", "rate_counters")
    op.drop_table("rate_counters")
    op.drop_table("oversight_cases")
