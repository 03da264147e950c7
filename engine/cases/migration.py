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

Migrating is a command like any other, through the one unit of work
(:mod:`govflow.engine.cases.unit_of_work`): the case's pack version and workflow
state (restored under the target specs, not advanced) are rewritten, its open
tasks, their deadlines, its status and ``next_due`` recomputed under the target,
and ``case.migrated`` appended, under the optimistic lock, in one transaction per
case, then notified. Unsafe cases are left alone and reported with the reasons.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from govflow.engine.access.identity import Principal
from govflow.engine.cases.unit_of_work import Event, UnitOfWork, plan
from govflow.engine.model.errors import ConcurrentUpdate, GovflowError, InvalidInput
from govflow.engine.packs.loader import LoadedPack
from govflow.engine.packs.registry import PackRegistry
from govflow.engine.store.db import CaseRow
from govflow.engine.workflow.compat import step_differences


@dataclass
class MigrationReport:
    """What a migration did (or would do, for a dry run)."""

    source: str
    target: str
    dry_run: bool
    migrated: list[str] = field(default_factory=list)
    refused: dict[str, list[str]] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)


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
    try:
        workflow = source.runtime.load(case.state, case.process_id)
    except GovflowError as exc:  # one broken case must not stop the others from moving
        return [
            f"the stored state does not load under {source.manifest.name} {source.manifest.version}: {exc.message}"
        ], None
    reasons += step_differences(workflow, case.process_id, source.diagrams, target.diagrams, target.forms)
    if reasons:
        return sorted(set(reasons)), None
    try:
        restored = target.runtime.load(case.state, case.process_id)
    except Exception as exc:  # Spiff raises assorted errors on state that does not fit the specs
        return [f"the state does not restore under the target: {type(exc).__name__}: {exc}"], None
    return [], restored


def migrate(
    uow: UnitOfWork,
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
        if _apply(uow, case, target, workflow, actor, now):
            report.migrated.append(str(case.id))
        else:
            report.conflicts.append(str(case.id))
    return report


def _apply(uow: UnitOfWork, case: Any, target: LoadedPack, workflow: Any, actor: str, now: Any) -> bool:
    """Move one case through the unit of work: its open tasks, deadlines and timers are recomputed
    under the target version, and ``case.migrated`` goes on its record, in one version-checked
    transaction. False if the case moved meanwhile (run the migration again)."""
    snapshot = uow.load(case.id)
    if snapshot.version != case.version:
        return False
    operator = Principal(actor, actor, "system", case.district, None, ())
    event = Event(
        "case.migrated",
        {"from": case.pack_version, "to": target.manifest.version, "pack": target.manifest.name},
    )
    change = plan(
        snapshot,
        workflow,
        actor=operator,
        power="pack_admin:migrate",
        now=now,
        events=[event],
        changes={"pack_version": target.manifest.version},
        pack=target,
    )
    try:
        uow.commit(change)
    except ConcurrentUpdate:
        return False
    return True
