"""Whether a running workflow's state fits another version of its diagrams (for pack migration).

SpiffWorkflow's task tree is inspected here, behind the workflow layer, so the
migration rules in :mod:`govflow.engine.cases.migration` read as plain rules:

* every step the case has taken or is planned to take still exists in the target
  diagrams (same process or sub-process, same element id);
* every step that is open or waiting now (a user task, a timer, a sub-process)
  has the same kind in the target; an open user task keeps its action (so its
  form and power mean the same) and has a form; a step that has already fanned
  out (e.g. a task with boundary events) keeps exactly the same outgoing steps —
  steps *after* the open ones may change freely (Spiff re-plans them).
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from govflow.engine.workflow.bpmn import CompiledDiagrams

_OPEN = TaskState.READY | TaskState.WAITING | TaskState.STARTED


def _spec_of(diagrams: CompiledDiagrams, process_id: str, workflow_spec: str) -> Any:
    if workflow_spec == process_id:
        return diagrams.specs.get(process_id)
    return diagrams.subprocess_specs.get(process_id, {}).get(workflow_spec)


def step_differences(
    workflow: BpmnWorkflow,
    process_id: str,
    source: CompiledDiagrams,
    target: CompiledDiagrams,
    forms: Container[str],
) -> list[str]:
    """Why ``workflow`` (running ``process_id`` of ``source``) cannot continue under ``target``."""
    reasons: list[str] = []
    for task in workflow.get_tasks():
        name, where = task.task_spec.name, task.workflow.spec.name
        new_spec = _spec_of(target, process_id, where)
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
            old_info, new_info = source.user_tasks.get(name), target.user_tasks.get(name)
            if new_info is None or old_info is None or new_info.action != old_info.action:
                reasons.append(
                    f"open task {name} changes its action ({getattr(old_info, 'action', '?')} → {getattr(new_info, 'action', 'none')})"
                )
            elif new_info.action not in forms:
                reasons.append(f"open task {name} has no form {new_info.action!r} in the target")
        if any(child.has_state(TaskState.DEFINITE_MASK | TaskState.FINISHED_MASK) for child in task.children):
            old_out = sorted(s.name for s in task.task_spec.outputs)
            new_out = sorted(s.name for s in new_task.outputs)
            if old_out != new_out:
                reasons.append(
                    f"open step {name} has different outgoing steps in the target ({', '.join(old_out)} → {', '.join(new_out)})"
                )
    return reasons
