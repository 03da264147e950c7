"""Opening and saving an unchanged diagram in the studio loses nothing the engine reads.

Every diagram and decision table of the reference pack and the examples goes through the
studio's own code path without a browser (``web/tools/roundtrip.mjs``: the layout step for a
diagram that has none, bpmn-moddle with the studio's spiffworkflow descriptor and its
variable-reference fix, dmn-moddle for decision tables), and the saved file is compiled by the
engine: the parsed specs (SpiffWorkflow's own serialization of every process, minus the
positions a layout adds) must equal those of the original, and so must the decision tables.
The browser test repeats the BPMN check through the real modeler.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from govflow.engine.workflow.bpmn import compile_diagrams
from tests.web.diagram_specs import decision_tables, specs

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
NODE = shutil.which("node")
FILES = sorted(
    [
        *ROOT.glob("processes/*.bpmn"),
        *ROOT.glob("examples/*/processes/*.bpmn"),
        *ROOT.glob("examples/*/processes/*.dmn"),
    ]
)

pytestmark = pytest.mark.skipif(
    NODE is None or not (WEB / "node_modules" / "bpmn-moddle").is_dir(),
    reason="needs Node.js and web/node_modules (scripts/setup installs them)",
)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[Path, tuple[bytes, dict]]:
    out = tmp_path_factory.mktemp("roundtrip")
    args = []
    for i, path in enumerate(FILES):
        args += [str(path), str(out / f"{i}{path.suffix}")]
    result = subprocess.run(
        [NODE, str(WEB / "tools" / "roundtrip.mjs"), *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    return {path: ((out / f"{i}{path.suffix}").read_bytes(), reports[i]) for i, path in enumerate(FILES)}


def test_the_reference_and_example_diagrams_are_all_checked():
    names = {p.relative_to(ROOT).as_posix() for p in FILES}
    assert "processes/frontline_disposal.bpmn" in names
    assert "examples/cangshan/processes/owner.dmn" in names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_open_and_save_keeps_what_the_engine_reads(path, saved):
    content, report = saved[path]
    assert report["lost"] == []  # the studio's own fidelity check (what it refuses to save)
    original = path.read_bytes()
    if path.suffix == ".bpmn":
        assert b"BPMNDiagram" in content  # a diagram without a layout gets one
        assert specs(path.name, content) == specs(path.name, original)
    else:
        assert decision_tables(content) == decision_tables(original)
        compiled, issues = compile_diagrams({path.name: content}, forms={}, stages=[])
        assert not issues and compiled is not None


def test_a_layout_missing_an_element_is_made_again(saved, tmp_path):
    """A laid-out diagram edited by hand (an element added without a shape) is laid out anew,
    never shown without that element."""
    laid_out, _ = saved[ROOT / "processes" / "frontline_disposal.bpmn"]
    text = laid_out.decode("utf-8")
    start = text.index('<bpmndi:BPMNShape id="review_di"')
    stale = text[:start] + text[text.index("</bpmndi:BPMNShape>", start) + len("</bpmndi:BPMNShape>") :]
    (tmp_path / "stale.bpmn").write_text(stale, encoding="utf-8")
    for round_trip in (stale, laid_out.decode("utf-8")):
        (tmp_path / "in.bpmn").write_text(round_trip, encoding="utf-8")
        result = subprocess.run(
            [NODE, str(WEB / "tools" / "roundtrip.mjs"), str(tmp_path / "in.bpmn"), str(tmp_path / "out.bpmn")],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        report = json.loads(result.stdout)
        out = (tmp_path / "out.bpmn").read_text(encoding="utf-8")
        assert report["layout_generated"] is (round_trip is stale)
        assert out.count('bpmnElement="review"') == 1 and out.count("<bpmndi:BPMNDiagram") == 1
        assert not [w for w in report["warnings"] if "duplicate" in w]
