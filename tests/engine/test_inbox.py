"""The inbox read from ordered index ranges returns exactly what the plain OR query returns."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import and_, or_, select, update

from govflow.engine.access.identity import Principal
from govflow.engine.cases.inbox import inbox_query
from govflow.engine.cases.service import NewCase
from govflow.engine.store.db import CaseRow, CaseTask

DONGJIE = dict(lat=26.0865, lng=119.3025)


def plain(principal: Principal, limit: int, offset: int):
    """The inbox as one OR and one ORDER BY (what the index-ordered query must equal)."""
    conditions = [CaseTask.assignee_user == principal.id]
    if principal.unit and principal.roles:
        conditions.append(and_(CaseTask.unit_code == principal.unit, CaseTask.role.in_(principal.roles)))
    return (
        select(CaseTask.id)
        .join(CaseRow, CaseRow.id == CaseTask.case_id)
        .where(or_(*conditions))
        .order_by(CaseTask.due_at.is_(None), CaseTask.due_at, CaseTask.created_at)
        .limit(limit)
        .offset(offset)
    )


def test_the_inbox_matches_the_plain_query_page_by_page(govflow, principals, clock):
    citizen, street = principals["citizen.zhang"], principals["dongjie.dispatcher"]
    cases = [
        govflow.cases.report(citizen, NewCase(channel="app", description=f"井盖没了 {i}", **DONGJIE)).case_id
        for i in range(7)
    ]
    start = clock.now()
    with govflow.db.begin() as conn:
        tasks = conn.execute(select(CaseTask.id, CaseTask.case_id).order_by(CaseTask.created_at)).all()
        for i, task in enumerate(tasks):  # deadlines out of creation order, some none, one shared
            due = None if i % 3 == 0 else start + dt.timedelta(hours=(7 - i) % 4)
            conn.execute(
                update(CaseTask)
                .where(CaseTask.id == task.id)
                .values(
                    due_at=due,
                    created_at=start + dt.timedelta(minutes=i),
                    role="street_dispatcher" if i % 2 else "street_reviewer",
                )
            )
        # two tasks assigned to the dispatcher by name, one of them also in a unit they do not belong to
        for j, unit in enumerate([None, "gulou.gudong"]):
            conn.execute(
                CaseTask.__table__.insert(),
                {
                    "id": uuid.uuid4(),
                    "case_id": cases[j],
                    "name": "evaluate",
                    "title": "Evaluate",
                    "stage": "completed",
                    "action": "evaluate",
                    "unit_code": unit,
                    "role": None,
                    "assignee_user": street.id,
                    "due_at": None if j else start,
                    "created_at": start + dt.timedelta(minutes=30 + j),
                },
            )
    both_roles = Principal(
        street.id, street.name, street.kind, street.district, street.unit, ("street_dispatcher", "street_reviewer")
    )
    nobody = Principal("nobody", "n", "person", "gulou", None, ())
    with govflow.db.connect() as conn:
        for who in (street, both_roles, nobody):
            for limit, offset in ((100, 0), (3, 0), (3, 3), (2, 5), (4, 8)):
                expected = conn.execute(plain(who, limit, offset)).scalars().all()
                got = [r.id for r in conn.execute(inbox_query(who, limit=limit, offset=offset))]
                assert got == expected, (who.roles, limit, offset)
        everything = [r.id for r in conn.execute(inbox_query(both_roles, limit=100))]
    assert len(everything) == len(tasks) + 2  # every task of the unit (both roles) and both assigned by name
