"""Supervision: the rate counters and what the projection remembers of each case.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29

Existing cases are projected from their event log right here (the same fold
as ``govflow rates rebuild``), so the projection is complete from the start.
"""

import sqlalchemy as sa
from alembic import op

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
    from govflow.engine.oversight.projection import rebuild_on

    rebuild_on(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_rate_counters_district_day", "rate_counters")
    op.drop_table("rate_counters")
    op.drop_table("oversight_cases")
