"""Deadlines: when a case first went overdue and where it was escalated to.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

from govflow.engine.store.db import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("overdue_since", UTCDateTime, nullable=True))
        batch.add_column(sa.Column("escalated_to", sa.String(64), nullable=True))
        batch.create_index("ix_cases_escalated_to", ["escalated_to"])


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_index("ix_cases_escalated_to")
        batch.drop_column("escalated_to")
        batch.drop_column("overdue_since")
