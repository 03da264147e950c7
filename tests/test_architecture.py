"""Layering, checked on the source with ``ast`` (imports inside functions, under
``TYPE_CHECKING`` and relative imports included).

One table, ``RULES``: each row names a source folder (or file), the modules it must not
import, the exceptions, and why. ``api -> engine <- plugins``: the engine knows no web
framework, API, plugin, bootstrap or CLI code, and plugins know nothing of the API. Inside
the engine, ``model/`` is the pure vocabulary of the domain (no database, no BPMN engine, no
other layer), ``workflow/`` runs diagrams without persistence, cases, authorization or
packs, and ``store/`` persists without knowing what it stores for.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: source folder -> dotted package it is installed as (pyproject's package-dir)
PACKAGES = {"engine": "govflow.engine", "plugins": "govflow.plugins", "api": "govflow.api", "govflow": "govflow"}


def layers(*names: str) -> tuple[str, ...]:
    return tuple(f"govflow.engine.{name}" for name in names)


class Rule(NamedTuple):
    sources: str  # a folder or a file, relative to the repository root
    forbidden: tuple[str, ...]  # a module is forbidden if it is one of these or inside one
    allowed: tuple[str, ...]  # ... unless it is one of these or inside one
    why: str


# fmt: off
RULES = (
    Rule("engine", ("fastapi", "starlette", "uvicorn", "govflow.api", "govflow.plugins", "govflow.bootstrap", "govflow.cli"), (),
         "the engine knows no web framework, API, plugin or entry point"),
    Rule("plugins", ("govflow.api",), (),
         "plugins know the engine, never the API"),
    Rule("engine/model", ("sqlalchemy", "alembic", "psycopg", "SpiffWorkflow", "govflow"), ("govflow.engine.model",),
         "the domain's vocabulary is pure: no database, no BPMN engine, no other engine layer"),
    Rule("engine/workflow", layers("store", "cases", "access", "packs"), (),
         "the runtime over SpiffWorkflow knows no persistence, cases, authorization or packs"),
    Rule("engine/store", layers("cases", "packs", "workflow", "access"), (),
         "persistence knows no cases, packs, runtime or authorization"),
    Rule("engine/simulation/scenario.py", ("sqlalchemy", "SpiffWorkflow", "govflow"), ("govflow.engine.model", "govflow.engine.simulation.scenario"),
         "a scenario is validated with its pack: pure, like the model (the pack loader imports it)"),
    Rule("engine/simulation", layers("workflow", "store.migrate"), (),
         "the simulator plays people on the command path: it never runs diagrams or migrates schemas itself"),
    Rule("engine/cache.py", ("govflow",), (),
         "the cache is a leaf every layer may use"),
)
# fmt: on

#: "<rule sources>: <file>" (the test id) -> what is wrong. Strict xfail: delete the entry once fixed.
KNOWN_VIOLATIONS: dict[str, str] = {}


def module_package(path: Path) -> str:
    """The dotted package that contains the module at ``path``."""
    rel = path.relative_to(ROOT)
    base = PACKAGES[rel.parts[0]]
    return ".".join([base, *rel.parts[1:-1]])


def imported_modules(source: str, package: str) -> set[str]:
    """Every module a source imports: absolute, relative (resolved), and importlib strings."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                stem = f"{base}.{node.module}" if node.module else base
            else:
                stem = node.module or ""
            found.add(stem)
            found.update(f"{stem}.{alias.name}" for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.add(node.args[0].value)
    return found


def matches(module: str, prefixes: tuple[str, ...]) -> bool:
    """By module, not by string prefix: ``fastapi_utils`` is not inside ``fastapi``."""
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def violations(path: Path, rule: Rule) -> list[str]:
    modules = imported_modules(path.read_text(encoding="utf-8"), module_package(path))
    return sorted(
        f"{path.relative_to(ROOT)} imports {m}"
        for m in modules
        if matches(m, rule.forbidden) and not matches(m, rule.allowed)
    )


def sources(folder: str) -> list[Path]:
    base = ROOT / folder
    if base.is_file():
        return [base]
    return sorted(p for p in base.rglob("*.py") if "__pycache__" not in p.parts)


def rule_cases() -> list:
    cases = []
    for rule in RULES:
        for path in sources(rule.sources):
            case_id = f"{rule.sources}: {path.relative_to(ROOT)}"
            known = KNOWN_VIOLATIONS.get(case_id)
            marks = [pytest.mark.xfail(reason=known, strict=True)] if known else []
            cases.append(pytest.param(rule, path, id=case_id, marks=marks))
    return cases


def test_the_walk_sees_the_code():
    engine = sources("engine")
    assert {"bpmn.py", "sandbox.py", "runtime.py", "loader.py", "catalog.py"} <= {p.name for p in engine}
    for rule in RULES:  # a renamed or moved layer must not leave its rule checking nothing
        assert sources(rule.sources), f"{rule.sources} has no Python source"
    ids = {f"{rule.sources}: {path.relative_to(ROOT)}" for rule in RULES for path in sources(rule.sources)}
    assert set(KNOWN_VIOLATIONS) <= ids, "a known violation names a rule or file that no longer exists"


@pytest.mark.parametrize(
    "source, package, expected",
    [
        ("import fastapi", "govflow.engine", {"fastapi"}),
        (
            "from starlette.responses import JSONResponse",
            "govflow.engine",
            {"starlette.responses", "starlette.responses.JSONResponse"},
        ),
        ("from ..api import app", "govflow.engine", {"govflow.api", "govflow.api.app"}),
        ("from .. import cli", "govflow.engine", {"govflow", "govflow.cli"}),
        ("from . import errors", "govflow.engine.model", {"govflow.engine.model", "govflow.engine.model.errors"}),
        (
            "from ...api.routes import cases",
            "govflow.plugins.builtin",
            {"govflow.api.routes", "govflow.api.routes.cases"},
        ),
        ("def f():\n    import uvicorn", "govflow.engine", {"uvicorn"}),
        (
            "import importlib\nimportlib.import_module('govflow.bootstrap')",
            "govflow.engine",
            {"importlib", "govflow.bootstrap"},
        ),
    ],
)
def test_import_finder(source, package, expected):
    assert imported_modules(source, package) == expected


def test_forbidden_matching_is_by_module_not_prefix():
    # "fastapi_utils" is not "fastapi"; "govflow.apiary" is not "govflow.api"
    modules = imported_modules("import fastapi_utils\nimport govflow.apiary", "govflow.engine")
    assert not any(matches(m, RULES[0].forbidden) for m in modules)


def test_allowed_carves_out_of_forbidden():
    model = next(rule for rule in RULES if rule.sources == "engine/model")
    source = "from govflow.engine.model.errors import PackIssue\nfrom govflow.engine.store.db import CaseRow"
    found = {m for m in imported_modules(source, "govflow.engine.model") if matches(m, model.forbidden)}
    assert {m for m in found if not matches(m, model.allowed)} == {
        "govflow.engine.store.db",
        "govflow.engine.store.db.CaseRow",
    }


@pytest.mark.parametrize("rule, path", rule_cases())
def test_layering(rule, path):
    assert violations(path, rule) == [], rule.why
