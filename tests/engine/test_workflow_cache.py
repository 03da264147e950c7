"""The workflow cache: a command runs on the workflow this process's last command left only when
the row is at that version with those bytes, and no two commands ever share the object."""

from __future__ import annotations

import zlib

from sqlalchemy import select, update

from govflow.engine.cases.service import NewCase
from govflow.engine.store.db import CaseRow, CaseTask
from govflow.engine.workflow import runtime as runtime_mod
from govflow.engine.workflow.runtime import Runtime, WorkflowCache

DONGJIE = dict(lat=26.0865, lng=119.3025)


def restores(monkeypatch) -> list[str]:
    """Every restore of a workflow from a row's state, by process id."""
    seen: list[str] = []
    original = Runtime.load

    def counting(self, blob, process_id):
        seen.append(process_id)
        return original(self, blob, process_id)

    monkeypatch.setattr(Runtime, "load", counting)
    return seen


def task_of(govflow, case_id, name):
    with govflow.db.connect() as conn:
        return str(
            conn.execute(select(CaseTask.id).where(CaseTask.case_id == case_id, CaseTask.name == name)).scalar_one()
        )


def test_the_next_command_runs_on_the_kept_workflow_only_at_its_version_and_bytes(govflow, principals, monkeypatch):
    runtime_mod.WORKFLOWS.clear()
    seen = restores(monkeypatch)
    street, citizen = principals["dongjie.dispatcher"], principals["citizen.zhang"]
    case_id = govflow.cases.report(citizen, NewCase(channel="app", description="井盖没了", **DONGJIE)).case_id
    govflow.cases.complete_task(street, task_of(govflow, case_id, "sign_for"), {})
    assert seen == []  # run on the workflow the report left (version 1, its bytes)

    # another writer moves the case (a fact with no workflow): version 3 was never kept here
    govflow.cases.record_fact(govflow.uow.load(case_id), street, None, "test.note", {"n": 1})
    govflow.cases.complete_task(street, task_of(govflow, case_id, "handle"), {"result": "补装"})
    assert len(seen) == 1  # restored from the row

    # the state changed behind the engine's back at the same version: the row's bytes win
    with govflow.db.begin() as conn:
        row = conn.execute(select(CaseRow.state, CaseRow.version).where(CaseRow.id == case_id)).one()
        altered = zlib.compress(zlib.decompress(row.state), 9)  # same workflow, other bytes
        assert altered != row.state
        conn.execute(update(CaseRow).where(CaseRow.id == case_id).values(state=altered))
    outcome = govflow.cases.complete_task(street, task_of(govflow, case_id, "review"), {"approved": True})
    assert len(seen) == 2 and outcome.status == "reviewed"

    # the case as every command left it is the case as restored from its row
    kept = runtime_mod.WORKFLOWS.take(case_id, outcome.version, govflow.packs.active("gulou").runtime, b"?")
    assert kept is None  # the bytes must match ...
    pack = govflow.packs.active("gulou")
    with govflow.db.connect() as conn:
        row = conn.execute(select(CaseRow).where(CaseRow.id == case_id)).one()
    assert pack.runtime.element_states(pack.runtime.load(row.state, row.process_id))["open"] == ["evaluate"]


def test_an_entry_is_taken_once_by_its_own_runtime_and_the_cache_is_bounded():
    cache = WorkflowCache(size=2)
    one, other = object(), object()
    cache.keep("a", 1, one, b"s", "wf-a")
    assert cache.take("a", 1, other, b"s") is None  # another pack version's runtime: never
    cache.keep("a", 1, one, b"s", "wf-a")
    assert cache.take("a", 2, one, b"s") is None  # another version
    assert cache.take("a", 1, one, b"s") == "wf-a"
    assert cache.take("a", 1, one, b"s") is None  # taken: no second command gets the same object
    for key in ("b", "c", "d"):
        cache.keep(key, 1, one, b"s", f"wf-{key}")
    assert cache.take("b", 1, one, b"s") is None  # the oldest went first
    assert [cache.take(k, 1, one, b"s") for k in ("c", "d")] == ["wf-c", "wf-d"]
