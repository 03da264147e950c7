"""DMN decision tables of a pack, evaluated outside a BPMN task.

Business rule tasks inside diagrams are run by Spiff itself. Some decisions are
asked by the engine or a plugin directly — e.g. smart dispatch's "matter and
street → owner unit" table (``settings.dispatch.owner_decision``). This module
parses a pack's ``processes/*.dmn`` once (they already passed the safety and
schema checks of :mod:`govflow.engine.workflow.bpmn`) and evaluates a decision against a
dict of inputs with the pack's sandboxed script engine (cells are Python
expressions, as everywhere in Spiff).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from SpiffWorkflow.dmn.engine.DMNEngine import DMNEngine
from SpiffWorkflow.dmn.parser.BpmnDmnParser import BpmnDmnParser
from SpiffWorkflow.exceptions import SpiffWorkflowException

from govflow.engine.model.errors import EngineFault, NotFound, PackIssue
from govflow.engine.workflow.bpmn import PackIssueError, parse_xml_safely


class Decisions:
    """The decision tables of one pack version, by decision id."""

    def __init__(self, engines: Mapping[str, DMNEngine], files: Mapping[str, str], script_engine: Any) -> None:
        self._engines = dict(engines)
        self._files = dict(files)
        self._script_engine = script_engine

    def __contains__(self, decision_id: object) -> bool:
        return decision_id in self._engines

    @property
    def ids(self) -> list[str]:
        return sorted(self._engines)

    def file_of(self, decision_id: str) -> str:
        return self._files[decision_id]

    def evaluate(self, decision_id: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """The outputs of the first matching rule (a list per output for COLLECT); {} if none matched."""
        engine = self._engines.get(decision_id)
        if engine is None:
            raise NotFound(f"the pack has no decision {decision_id!r}", decision=decision_id)
        task = SimpleNamespace(data=dict(inputs), workflow=SimpleNamespace(script_engine=self._script_engine))
        try:
            return dict(engine.result(task))
        except (SpiffWorkflowException, Exception) as exc:  # a cell failed inside the sandbox
            raise EngineFault(f"decision {decision_id} failed: {exc}", decision=decision_id) from exc


def compile_decisions(files: Mapping[str, bytes], script_engine: Any) -> tuple[Decisions | None, list[PackIssue]]:
    """Parse every ``.dmn`` of ``files``; return the decisions or the issues (file, line, decision id)."""
    parser = BpmnDmnParser()
    issues: list[PackIssue] = []
    where: dict[str, str] = {}
    for name in sorted(n for n in files if n.endswith(".dmn")):
        try:
            root = parse_xml_safely(files[name], name)
            parser.add_dmn_xml(root, filename=name)
        except PackIssueError as exc:
            issues.append(exc.issue)
            continue
        except SpiffWorkflowException as exc:
            issues.append(PackIssue(name, f"decision does not parse: {exc}"))
            continue
        for decision_id, _dmn in parser.dmn_parsers.items():
            where.setdefault(decision_id, name)
    engines: dict[str, DMNEngine] = {}
    for decision_id, name in where.items():
        try:
            engines[decision_id] = parser.get_engine(decision_id, None)
        except (SpiffWorkflowException, Exception) as exc:  # Spiff raises assorted errors on bad tables
            issues.append(PackIssue(name, f"decision does not parse: {exc}", element=decision_id))
    if issues:
        return None, issues
    return Decisions(engines, where, script_engine), []
