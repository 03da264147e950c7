"""What the engine reads from a diagram or decision table, for comparing an original with the
studio's save of it: every process as SpiffWorkflow parses it (its own serialization, minus the
positions a layout adds), and the decision tables' structure."""

from __future__ import annotations

from pathlib import Path

from lxml import etree
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG

from govflow.engine.model.catalog import load_yaml
from govflow.engine.model.forms import parse_forms
from govflow.engine.model.lifecycle import Stage
from govflow.engine.workflow.bpmn import compile_diagrams

ROOT = Path(__file__).resolve().parents[2]


def forms() -> dict:
    raw: dict = {}
    for path in [ROOT / "processes" / "forms.yaml", *ROOT.glob("examples/*/processes/forms.yaml")]:
        raw.update(load_yaml(path.read_text(encoding="utf-8")) or {})
    parsed, issues = parse_forms(raw)
    assert not issues
    return parsed


def strip_positions(value):
    """The spec without positions. SpiffWorkflow orders a task's outputs by where their targets
    are drawn (top to bottom), so a layout reorders them; what that order means is only which of
    several *conditional* flows of a gateway is tried first, so that order is kept and the rest
    (the default, the outputs' list) compared as sets."""
    if isinstance(value, dict):
        out = {k: strip_positions(v) for k, v in value.items() if k != "position"}
        if isinstance(out.get("outputs"), list):
            out["outputs"] = sorted(out["outputs"])
        if isinstance(out.get("cond_task_specs"), list):
            entries = out["cond_task_specs"]
            out["cond_task_specs"] = {
                "tried in order": [e for e in entries if e.get("condition") is not None],
                "otherwise": sorted((e for e in entries if e.get("condition") is None), key=repr),
            }
        return out
    if isinstance(value, list):
        return [strip_positions(v) for v in value]
    return value


def specs(path: str, content: bytes) -> dict:
    """Every process of the file as Spiff parses it (with the reference diagram beside it, which
    the examples call); the processes the reference defines are compared by its own case."""
    reference = ROOT / "processes" / "frontline_disposal.bpmn"
    files = {path: content} if path == reference.name else {path: content, reference.name: reference.read_bytes()}
    compiled, issues = compile_diagrams(files, forms=forms(), stages=[s.value for s in Stage])
    assert not issues, issues
    assert compiled is not None
    registry = BpmnWorkflowSerializer.configure(SPIFF_CONFIG)
    return {pid: strip_positions(registry.convert(spec)) for pid, spec in compiled.specs.items()}


DMN = "{https://www.omg.org/spec/DMN/20191111/MODEL/}"


def decision_tables(content: bytes) -> list:
    root = etree.fromstring(content)

    def text(node, path):
        return [(e.text or "").strip() for e in node.iterfind(path)]

    return [
        (
            d.get("id"),
            [
                (
                    t.get("hitPolicy"),
                    text(t, f"{DMN}input/{DMN}inputExpression/{DMN}text"),
                    [o.get("name") for o in t.iterfind(f"{DMN}output")],
                )
                for t in d.iterfind(f"{DMN}decisionTable")
            ],
            [
                (text(r, f"{DMN}inputEntry/{DMN}text"), text(r, f"{DMN}outputEntry/{DMN}text"))
                for r in d.iter(f"{DMN}rule")
            ],
        )
        for d in root.iter(f"{DMN}decision")
    ]
