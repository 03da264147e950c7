"""The mutation runner (bench/mutation.py) on a tiny sample project: it generates the expected
mutants, detects the one a test covers, reports the one no test covers, and leaves the module as
it found it. (The mutation runs themselves are too slow for the normal test run.)"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

RUNNER = Path(__file__).resolve().parent.parent / "bench" / "mutation.py"

SAMPLE = '''"""A sample module."""


def adult(age):
    return age >= 18


def unchecked(x):
    return x + 1
'''

SAMPLE_TEST = """from sample import adult


def test_boundary():
    assert adult(18) is True
    assert adult(17) is False
"""


@pytest.fixture(scope="module")
def mutation():
    spec = importlib.util.spec_from_file_location("govflow_mutation_runner", RUNNER)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_generates_operator_mutants_and_skips_docstrings(mutation):
    mutants = mutation.generate(SAMPLE, "sample.py")
    described = {(m.scope, m.operator, m.before, m.after) for m in mutants}
    assert ("adult", "ROR", "age >= 18", ">= -> >") in described
    assert ("adult", "CRP", "18", "19") in described
    assert ("adult", "RVR", "return age >= 18", "return None") in described
    assert ("unchecked", "AOR", "x + 1", "Add -> Sub") in described
    assert all(m.line > 1 for m in mutants)  # the module docstring is never mutated
    assert [m.id for m in mutants] == list(range(1, len(mutants) + 1))
    for m in mutants:
        compile(m.source, "sample.py", "exec")


def test_runs_mutants_and_restores_the_module(mutation, tmp_path):
    (tmp_path / "sample.py").write_text(SAMPLE, encoding="utf-8")
    (tmp_path / "test_sample.py").write_text(SAMPLE_TEST, encoding="utf-8")
    mutants = {(m.scope, m.operator, m.after): m for m in mutation.generate(SAMPLE, "sample.py")}
    boundary = mutants[("adult", "ROR", ">= -> >")]
    uncovered = mutants[("unchecked", "AOR", "Add -> Sub")]
    lines: list[str] = []
    runner = mutation.Runner(
        tmp_path, ["test_sample.py"], echo=lines.append, env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    )
    assert runner.baseline(tmp_path / "sample.py", SAMPLE), lines
    assert runner.run(tmp_path / "sample.py", boundary).status == "killed"
    assert "test_boundary" in boundary.reason
    assert runner.run(tmp_path / "sample.py", uncovered).status == "survived"
    assert (tmp_path / "sample.py").read_text(encoding="utf-8") == SAMPLE
    assert mutation.summary([boundary, uncovered])["score"] == 50.0
