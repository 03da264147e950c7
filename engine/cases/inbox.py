"""The inbox query: a caller's open tasks in deadline order, read from indexes in that order.

An inbox is the tasks of the caller's unit for each of the caller's roles, and the tasks
assigned to the caller by name, ordered by ``due_at`` (no deadline last), then
``created_at``. Written as one ``OR`` with an ``ORDER BY``, no index serves both the
filter and the order: the database gathers every open task of the unit and sorts them
for each page. Here each part is its own ordered range of an index
(``ix_case_tasks_unit_role_due``, ``ix_case_tasks_assignee_due``: migration 0008) cut
at ``offset + limit`` rows, and only those few rows are merged, deduplicated (``UNION``),
ordered and joined to their cases. Same rows, same order, whatever the size of the unit
(docs/performance.md has the plans).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select, union

from govflow.engine.access.identity import Principal
from govflow.engine.store.db import CaseRow, CaseTask


def inbox_query(principal: Principal, *, limit: int, offset: int = 0) -> Select[Any]:
    """The rows of :meth:`CaseQueries.inbox`: task columns, then ``case_status``, ``matter``, ``owner_unit``."""
    tasks = CaseTask.__table__
    cut = offset + limit

    def ordered(*where: Any) -> Any:  # a subquery: SQLite takes no ORDER BY/LIMIT in a UNION's member
        part = select(tasks).where(*where).order_by(tasks.c.due_at.asc().nulls_last(), tasks.c.created_at)
        return select(part.limit(cut).subquery())

    parts = [ordered(tasks.c.assignee_user == principal.id)]
    if principal.unit:
        parts += [
            ordered(tasks.c.unit_code == principal.unit, tasks.c.role == role) for role in sorted(principal.roles)
        ]
    mine = union(*parts).subquery("mine")
    return (
        select(mine, CaseRow.status.label("case_status"), CaseRow.matter, CaseRow.owner_unit)
        .join(CaseRow, CaseRow.id == mine.c.case_id)
        .order_by(mine.c.due_at.asc().nulls_last(), mine.c.created_at)
        .limit(limit)
        .offset(offset)
    )


__all__ = ["inbox_query"]
