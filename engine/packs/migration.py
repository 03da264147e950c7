"""Moving running cases to another version of their pack (``govflow pack migrate``).

A new pack version never changes running cases on its own: each finishes on the
version it started on. An operator may move them explicitly. A case moves only
when it is **safe**, which :func:`check_case` decides conservatively:

* the target version is of the same district and defines the case's process;
* the case's owner unit and matter exist in the target catalog;
* every step the case has taken or is planned to take still exists in the target
  diagrams (same process or sub-process, same element id);
* every step that is open or waiting now (a user task, a timer, a sub-process)
  has the same kind in the target; an open user task keeps its action (so its
  form and power mean the same) and has a form; a step that has already fanned
  out (e.g. a task with boundary events) keeps exactly the same outgoing steps —
  steps *after* the open ones may change freely (Spiff re-plans them);
* the stored state restores under the target's specs.

Migrating rewrites the case's pack version and workflow state (restored under
the target specs, not advanced), refreshes the titles and stages of its open
tasks, and appends a ``case.migrated`` event, under the optimistic lock, in one
transaction per case. Unsafe cases are left alone and reported with the reasons.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from SpiffWorkflow.util.task import TaskState
from sqlalchemy import insert, select, update

from govflow.engine.model.errors import InvalidInput
from govflow.engine.model.lifecycle import furthest
from govflow.engine.packs.loader import LoadedPack
from govflow.engine.packs.registry import PackRegistry
from govflow.engine.store.db import CaseEvent, CaseRow, CaseTask

_OPEN = TaskState.READY | TaskState.WAITING | TaskState.STARTED


@dataclass
class MigrationReport:
    """What a migration did (or would do, for a dry run)."""

    source: str
    target: str
    dry_run: bool
    migrated: list[str] = field(default_factory=list)
    refused: dict[str, list[str]] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)


def _spec_of(pack: LoadedPack, process_id: str, workflow_spec: str) -> Any:
    if workflow_spec == process_id:
        return pack.diagrams.specs.get(process_id)
    return pack.diagrams.subprocess_specs.get(process_id, {}).get(workflow_spec)


def check_case(case: Any, source: LoadedPack, target: LoadedPack) -> tuple[list[str], Any]:
    """Reasons why ``case`` may not move from ``source`` to ``target`` (empty: safe), and its
    workflow restored under the target specs when safe."""
    reasons: list[str] = []
    if target.manifest.district != case.district:
        return [f"the target is for district {target.manifest.district}, the case is in {case.district}"], None
    if case.process_id not in target.diagrams.specs:
        return [f"process {case.process_id} does not exist in the target"], None
    if case.owner_unit and case.owner_unit not in target.catalog.units:
        reasons.append(f"owner unit {case.owner_unit} does not exist in the target catalog")
    if case.matter and case.matter not in target.catalog.matters:
        reasons.append(f"matter {case.matter} does not exist in the target catalog")
    workflow = source.runtime.load(case.state, case.process_id)
    for task in workflow.get_tasks():
        name, where = task.task_spec.name, task.workflow.spec.name
        new_spec = _spec_of(target, case.process_id, where)
        if new_spec is None:
            reasons.append(f"(sub-)process {where} does not exist in the target")
            break
        new_task = new_spec.task_specs.get(name)
        if new_task is None:
            state = (
                "open" if task.has_state(_OPEN) else ("taken" if task.has_state(TaskState.FINISHED_MASK) else "planned")
            )
            reasons.append(f"{state} step {name} of {where} does not exist in the target")
            continue
        if not task.has_state(_OPEN):
            continue
        if type(new_task) is not type(task.task_spec):
            reasons.append(
                f"open step {name} changes kind ({type(task.task_spec).__name__} → {type(new_task).__name__})"
            )
        if task.task_spec.manual:
            old_info, new_info = source.diagrams.user_tasks.get(name), target.diagrams.user_tasks.get(name)
            if new_info is None or old_info is None or new_info.action != old_info.action:
                reasons.append(
                    f"open task {name} changes its action ({getattr(old_info, 'action', '?')} → {getattr(new_info, 'action', 'none')})"
                )
            elif new_info.action not in target.forms:
                reasons.append(f"open task {name} has no form {new_info.action!r} in the target")
        if any(child.has_state(TaskState.DEFINITE_MASK | TaskState.FINISHED_MASK) for child in task.children):
            old_out = sorted(s.name for s in task.task_spec.outputs)
            new_out = sorted(s.name for s in new_task.outputs)
            if old_out != new_out:
                reasons.append(
                    f"open step {name} has different outgoing steps in the target ({', '.join(old_out)} → {', '.join(new_out)})"
                )
    if reasons:
        return sorted(set(reasons)), None
    try:
        restored = target.runtime.load(case.state, case.process_id)
    except Exception as exc:  # Spiff raises assorted errors on state that does not fit the specs
        return [f"the state does not restore under the target: {type(exc).__name__}: {exc}"], None
    return [], restored


def migrate(
    registry: PackRegistry,
    name: str,
    source_version: str,
    target_version: str,
    *,
    actor: str,
    now: Any,
    case_ids: list[str] | None = None,
    dry_run: bool = False,
) -> MigrationReport:
    """Move the running cases of ``name source_version`` (or only ``case_ids``) to ``target_version``."""
    if source_version == target_version:
        raise InvalidInput("the source and target versions are the same", pack=name, version=source_version)
    source, target = registry.get(name, source_version), registry.get(name, target_version)
    report = MigrationReport(f"{name} {source_version}", f"{name} {target_version}", dry_run)
    query = select(CaseRow).where(
        CaseRow.pack_name == name, CaseRow.pack_version == source_version, CaseRow.closed_at.is_(None)
    )
    if case_ids:
        try:
            ids = [uuid.UUID(c) for c in case_ids]
        except ValueError:
            raise InvalidInput("case ids must be UUIDs", errors=[{"loc": ["cases"], "msg": "not a UUID"}]) from None
        query = query.where(CaseRow.id.in_(ids))
    with registry.db.connect() as conn:
        cases = conn.execute(query.order_by(CaseRow.created_at)).all()
    for case in cases:
        reasons, workflow = check_case(case, source, target)
        if reasons:
            report.refused[str(case.id)] = reasons
            continue
        if dry_run:
            report.migrated.append(str(case.id))
            continue
        if _apply(registry, case, target, workflow, actor, now, source_version):
            report.migrated.append(str(case.id))
        else:
            report.conflicts.append(str(case.id))
    return report


def _apply(
    registry: PackRegistry, case: Any, target: LoadedPack, workflow: Any, actor: str, now: Any, source_version: str
) -> bool:
    open_tasks = {
        str(t.id): target.diagrams.user_tasks[t.task_spec.bpmn_id] for t in target.runtime.open_tasks(workflow)
    }
    status = furthest([info.stage for info in open_tasks.values()]) or case.status
    event = {
        "case_id": case.id,
        "seq": case.event_seq + 1,
        "at": now,
        "kind": "case.migrated",
        "actor": actor,
        "actor_unit": None,
        "power": "pack_admin:migrate",
        "data": {"from": source_version, "to": target.manifest.version, "pack": target.manifest.name},
    }
    with registry.db.begin() as conn:
        result = conn.execute(
            update(CaseRow)
            .where(CaseRow.id == case.id, CaseRow.version == case.version)
            .values(
                pack_version=target.manifest.version,
                state=target.runtime.dump(workflow),
                status=status,
                event_seq=case.event_seq + 1,
                version=case.version + 1,
                updated_at=now,
            )
        )
        if result.rowcount != 1:
            return False  # the case moved meanwhile; run the migration again
        for task_id, info in open_tasks.items():
            conn.execute(
                update(CaseTask).where(CaseTask.id == uuid.UUID(task_id)).values(title=info.title, stage=info.stage)
            )
        conn.execute(insert(CaseEvent), [event])
    return True
