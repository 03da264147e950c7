"""The live board folded from the record; what the projection remembers of a case gains its stage
and its open tasks' due times.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30

The public board's counts per stage per street become counters of the supervision
projection (``board:STAGE`` on the board's day), folded from ``case.stage`` and the
owner's events like every other counter. A task completed after its deadline timer
fired is late by the due time it opened with (``task.opened``), which the projection
now remembers per open task (``dues``). The projection is rebuilt here from the
event log (the same fold as ``govflow rates rebuild``), so it is complete at once.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("oversight_cases") as batch:
        batch.add_column(sa.Column("stage", sa.String(32), nullable=True))
        batch.add_column(sa.Column("dues", sa.JSON, nullable=True))
    from govflow.engine.oversight.projection import rebuild_on

    rebuild_on(op.get_bind())


def downgrade() -> None:
    op.execute(
        "DELETE FROM rate_counters WHERE metric LIKE 'board:%' OR metric = 'escalations_received' OR district = ''"
    )
    with op.batch_alter_table("oversight_cases") as batch:
        batch.drop_column("dues")
        batch.drop_column("stage")
