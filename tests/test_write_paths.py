"""One write path: only the unit of work writes the case tables (checked on the source with ``ast``).

Rows of ``cases``, ``case_tasks``, ``case_events``, ``ratings``, ``case_parties`` and
``idempotency_keys`` are written by :mod:`govflow.engine.cases.unit_of_work` and nowhere else:
every command hands it a planned Change. Delegations, principals and pack versions have their
own stores.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASE_TABLES = {"CaseRow", "CaseTask", "CaseEvent", "Rating", "CaseParty", "IdempotencyKey"}
WRITES = {"insert", "update", "delete"}
ALLOWED = {Path("engine/cases/unit_of_work.py")}


def case_table_writes(source: str) -> list[tuple[int, str]]:
    """(line, table) of every insert/update/delete statement built on a case table."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        target = node.args[0] if node.args else None
        if isinstance(target, ast.Attribute) and target.attr == "__table__":
            target = target.value
        if name in WRITES and isinstance(target, ast.Name) and target.id in CASE_TABLES:
            found.append((node.lineno, target.id))
        # Table.insert() / Table.__table__.insert()
        if (
            name in WRITES
            and isinstance(func, ast.Attribute)
            and isinstance(func.value, ast.Attribute)
            and func.value.attr == "__table__"
            and isinstance(func.value.value, ast.Name)
            and func.value.value.id in CASE_TABLES
        ):
            found.append((node.lineno, func.value.value.id))
    return found


def test_the_finder_sees_writes():
    assert case_table_writes("conn.execute(insert(CaseEvent), rows)") == [(1, "CaseEvent")]
    assert case_table_writes("update(CaseRow).where(x)") == [(1, "CaseRow")]
    assert case_table_writes("conn.execute(Rating.__table__.insert(), r)") == [(1, "Rating")]
    assert case_table_writes("select(CaseRow)") == []


def test_only_the_unit_of_work_writes_case_tables():
    offenders = []
    for folder in ("engine", "api", "plugins", "govflow"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT)
            if rel in ALLOWED or "migrations" in rel.parts:
                continue
            offenders += [f"{rel}:{line} writes {table}" for line, table in case_table_writes(path.read_text())]
    assert offenders == []
    assert case_table_writes((ROOT / "engine/cases/unit_of_work.py").read_text())  # and it does write them
