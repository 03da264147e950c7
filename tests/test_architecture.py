"""Layering: the engine knows no web framework, API, plugin, bootstrap or CLI code; plugins
know nothing of the API. Checked on the source with ``ast`` (imports inside functions and
relative imports included)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: source folder -> dotted package it is installed as (pyproject's package-dir)
PACKAGES = {"engine": "govflow.engine", "plugins": "govflow.plugins", "api": "govflow.api", "govflow": "govflow"}

ENGINE_FORBIDDEN = (
    "fastapi",
    "starlette",
    "uvicorn",
    "govflow.api",
    "govflow.plugins",
    "govflow.bootstrap",
    "govflow.cli",
)
PLUGINS_FORBIDDEN = ("govflow.api",)


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


def violations(path: Path, forbidden: tuple[str, ...]) -> list[str]:
    modules = imported_modules(path.read_text(encoding="utf-8"), module_package(path))
    return sorted(
        f"{path.relative_to(ROOT)} imports {m}"
        for m in modules
        if any(m == f or m.startswith(f + ".") for f in forbidden)
    )


def sources(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)


def test_the_walk_sees_the_code():
    engine = sources("engine")
    assert {"bpmn.py", "sandbox.py", "runtime.py", "loader.py", "catalog.py"} <= {p.name for p in engine}
    assert sources("plugins")


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
    assert not any(m == f or m.startswith(f + ".") for m in modules for f in ENGINE_FORBIDDEN)


@pytest.mark.parametrize("path", sources("engine"), ids=lambda p: str(p.relative_to(ROOT)))
def test_engine_imports_no_framework_api_plugin_or_entry_point(path):
    assert violations(path, ENGINE_FORBIDDEN) == []


@pytest.mark.parametrize("path", sources("plugins"), ids=lambda p: str(p.relative_to(ROOT)))
def test_plugins_import_nothing_from_the_api(path):
    assert violations(path, PLUGINS_FORBIDDEN) == []
