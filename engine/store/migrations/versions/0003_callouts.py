"""Call-outs: delegated call-out powers, the parties of a case, three-way ratings.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

from govflow.engine.store.db import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delegations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("district", sa.String(64), nullable=False),
        sa.Column("street", sa.String(64), nullable=False),
        sa.Column("department", sa.String(64), nullable=False),
        sa.Column("matter_pattern", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(1000), nullable=False),
        sa.Column("granted_by", sa.String(64), nullable=False),
        sa.Column("granted_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_delegations_lookup", "delegations", ["district", "street", "department"])
    op.create_table(
        "case_parties",
        sa.Column("case_id", sa.Uuid, sa.ForeignKey("cases.id"), primary_key=True),
        sa.Column("unit_code", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("power", sa.String(256), nullable=False),
        sa.Column("since", UTCDateTime, nullable=False),
    )
    op.create_table(
        "ratings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.Uuid, sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("direction", sa.String(32), nullable=False),
        sa.Column("rater_party", sa.String(64), nullable=False),
        sa.Column("rater", sa.String(64), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("dimension", sa.String(32), nullable=False),
        sa.Column("score", sa.Integer, nullable=False),
        sa.Column("comment", sa.String(1000), nullable=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("case_id", "rater_party", "target", "dimension", name="uq_ratings_once"),
    )
    op.create_index("ix_ratings_case_id", "ratings", ["case_id"])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION delegations_append_only() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION 'delegations is append-only'; END; $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER delegations_no_change BEFORE UPDATE OR DELETE ON delegations "
            "FOR EACH ROW EXECUTE FUNCTION delegations_append_only()"
        )
    elif bind.dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER delegations_no_{verb.lower()} BEFORE {verb} ON delegations "
                "BEGIN SELECT RAISE(ABORT, 'delegations is append-only'); END"
            )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS delegations_no_change ON delegations")
        op.execute("DROP FUNCTION IF EXISTS delegations_append_only()")
    op.drop_table("ratings")
    op.drop_table("case_parties")
    op.drop_table("delegations")
