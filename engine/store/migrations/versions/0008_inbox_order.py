"""Inbox indexes that serve its filter and its order together.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30

An inbox is the open tasks of one (unit, role), and those assigned to one person, in
deadline order (``due_at`` first, no deadline last, then ``created_at``). With an index on
``(unit_code, role)`` alone, a street with 100,000 open tasks sorted all of them for every
page. These indexes hold each inbox already in that order (B-tree ascending keeps NULLs
last on PostgreSQL), so a page reads its rows from the index and stops
(``govflow.engine.cases.inbox``; plans in docs/performance.md). They replace the two
narrower indexes, which they cover.
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_case_tasks_unit_role_due", "case_tasks", ["unit_code", "role", "due_at", "created_at"])
    op.create_index("ix_case_tasks_assignee_due", "case_tasks", ["assignee_user", "due_at", "created_at"])
    op.drop_index("ix_case_tasks_unit_role", table_name="case_tasks")
    op.drop_index("ix_case_tasks_assignee", table_name="case_tasks")


def downgrade() -> None:
    op.create_index("ix_case_tasks_unit_role", "case_tasks", ["unit_code", "role"])
    op.create_index("ix_case_tasks_assignee", "case_tasks", ["assignee_user"])
    op.drop_index("ix_case_tasks_assignee_due", table_name="case_tasks")
    op.drop_index("ix_case_tasks_unit_role_due", table_name="case_tasks")
