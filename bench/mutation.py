"""Mutation testing of govflow's security and command-path modules.

Each mutant is one small change to one module (an operator swapped, a statement
deleted, an element dropped from a cache key or an allow-list...). The tests are
run against it; a mutant the tests do not notice ("survived") marks a behaviour
nothing checks. See ``docs/mutation-testing.md`` for the operators, the test
selection and the scores.

Usage (never in parallel: one mutant at a time, one test process at a time)::

    scripts/mutation [MODULE ...] [--json report.json] [--scope focused|suite]
                     [--only ID,ID] [--list] [--allow-baseline-failures]

``MODULE`` is ``sandbox``, ``authz``, ``service`` (the default is the first two),
or a repository-relative path to a ``.py`` file.

Safety: the working tree is never written. The runner copies the tree (tracked
and untracked, not ignored files) into a temporary snapshot, points the
``govflow`` packages at the snapshot (pyproject's ``package-dir`` maps
``engine/`` onto ``govflow.engine``; the editable install would otherwise load the
live tree), writes each mutant into the snapshot's copy of the module, and
restores that copy in a ``finally`` (Ctrl-C and SIGTERM included) before the
snapshot is deleted. Other people editing the tree meanwhile neither see the
mutants nor change what is being tested.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import hashlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: the environment variable that tells the child (a copy of this file in the snapshot) the tree it copies
_SOURCE_ROOT = "GOVFLOW_MUTATION_SOURCE_ROOT"
#: the whole suite: the second stage for every module
SUITE: tuple[str, ...] = ("tests", "features")
#: never part of a mutant's suite run: this runner's own test starts test processes itself
SUITE_IGNORE: tuple[str, ...] = ("tests/test_mutation_runner.py",)


@dataclasses.dataclass(frozen=True)
class Target:
    """A module under mutation and the tests that exercise it most directly (run first)."""

    path: str
    focused: tuple[str, ...]


TARGETS: dict[str, Target] = {
    "sandbox": Target(
        "engine/workflow/sandbox.py",
        (
            "tests/engine/test_sandbox.py",
            "tests/engine/test_diagram_limits.py",
            "tests/engine/test_bpmn.py",
            "tests/engine/test_pack_validation.py",
        ),
    ),
    "authz": Target(
        "engine/access/authz.py",
        ("tests/engine/test_authz.py", "tests/engine/test_pack_validation.py", "tests/api/test_callouts_api.py"),
    ),
    "service": Target(
        "engine/cases/service.py",
        ("tests/engine/test_cases.py", "tests/engine/test_idempotency.py", "tests/api/test_api.py"),
    ),
}

#: Hand-written mutants (textual: ``before`` must occur in the module; each occurrence is one mutant).
#: They cover changes the generic operators cannot make: adding to an allow-list, reordering.
HAND_WRITTEN: dict[str, list[tuple[str, str, str]]] = {
    "engine/workflow/sandbox.py": [
        ("eval added to the builtins", "**_EXTRA_BUILTINS}", '**_EXTRA_BUILTINS, "eval": eval}'),
        ("open added to the builtins", "**_EXTRA_BUILTINS}", '**_EXTRA_BUILTINS, "open": open}'),
        (
            "guards applied before task data",
            "        scope.update(context)\n        scope.update(_GUARDS)",
            "        scope.update(_GUARDS)\n        scope.update(context)",
        ),
        ("plain getattr as the attribute guard", '"_getattr_": safer_getattr', '"_getattr_": getattr'),
        ("no write guard", '"_write_": full_write_guard', '"_write_": lambda ob: ob'),
        (
            "one compiled-code cache for both modes",
            'cache = self._eval_cache if mode == "eval" else self._exec_cache',
            "cache = self._eval_cache",
        ),
    ],
    "engine/access/authz.py": [
        ("a cached refusal returned as a truthy value", "            return hit\n", "            return str(hit)\n"),
        ("a call-out model detected by r alone", '"r" in model.keys() and "r2" in model["r"]', '"r" in model.keys()'),
    ],
}

#: Survivors that are equivalent: no test can tell them from the original (reason given).
#: Keyed by module path, then by the mutant's key (see ``Mutant.key``).
EQUIVALENT: dict[str, dict[str, str]] = {
    "engine/workflow/sandbox.py": {
        "<module> COL {'__builtins__': _BUILTINS, '_getattr_': safer_getattr, '_getitem_'... -> drop entry "
        "'_getattr_': safer_getattr": "RestrictedPython's safe_builtins carry the same safer_getattr as "
        "_getattr_: without the guard entry, compiled code finds it there",
        "<module> CRP '_getattr_' -> ''": "as above: the guard is then found among the builtins",
    },
    "engine/access/authz.py": {
        "<module> CRP 200000 -> 200001": "the cache bound is arbitrary: 200,001 entries instead of 200,000 (the tests lower the bound to 2 to check that it holds)",
        "_ParsedOnceEnforcer._get_expression SDL if functions: -> pass": "role managers are never replaced in govflow (no load_policy): the functions of the first parse are the same role managers and the same `responsible`",
        "_ParsedOnceEnforcer._get_expression SDL parsed.functions.update(functions) -> pass": "as above: the updated functions are equal to those already held",
        "parse_policy_rows CRP 1 -> 0 #2": "all(cells[0:]) equals all(cells[1:]) there: cells[0] is 'p', checked just before",
        "Authorizer.__init__ LCR 'r' in model.keys() and 'r2' in model['r'] -> drop operand 'r' in model.keys()": "only differs for a model without [request_definition], which decides nothing either way: check_model refuses it in both versions (the message differs)",
        "Authorizer.__init__ SDL for rm in self._enforcer.rm_map.values(): -> pass": "performance only: pycasbin's default name matcher compares names with ==, the same answers (the quadratic cost is what the line removes)",
        "Authorizer.__init__ SDL rm.matching_func = None -> pass": "performance only, as above",
        "Authorizer.check_model CRP 'nobody' -> ''": "the probe values of check_model are arbitrary: any subject, domain, matter, unit, time or id exercises the model the same way",
        "Authorizer.check_model CRP 'x/y' -> ''": "the probe values of check_model are arbitrary: any subject, domain, matter, unit, time or id exercises the model the same way",
        "Authorizer.check_model CRP 'nothing' -> ''": "the probe values of check_model are arbitrary: any subject, domain, matter, unit, time or id exercises the model the same way",
        "Authorizer.check_model CRP 'x/y' -> '' #2": "the probe values of check_model are arbitrary: any subject, domain, matter, unit, time or id exercises the model the same way",
        "Authorizer.check_model CRP 'nothing' -> '' #2": "the probe values of check_model are arbitrary: any subject, domain, matter, unit, time or id exercises the model the same way",
        "Authorizer.check_model CRP 'nobody' -> '' #2": "the probe values of check_model are arbitrary: any subject, domain, matter, unit, time or id exercises the model the same way",
        "Authorizer.check_model CRP '1970-01-01T00:00:00Z' -> ''": "the probe values of check_model are arbitrary: any subject, domain, matter, unit, time or id exercises the model the same way",
        "Authorizer.check_model CRP '0' -> ''": "the probe values of check_model are arbitrary: any subject, domain, matter, unit, time or id exercises the model the same way",
        "Authorizer.check_model CRP 'x/y' -> '' #3": "the probe values of check_model are arbitrary: any subject, domain, matter, unit, time or id exercises the model the same way",
        "Authorizer.check_model CRP 'nothing' -> '' #3": "the probe values of check_model are arbitrary: any subject, domain, matter, unit, time or id exercises the model the same way",
        "Authorizer.check_model CRP 'nobody' -> '' #3": "the probe values of check_model are arbitrary: any subject, domain, matter, unit, time or id exercises the model the same way",
        "Authorizer.check_model CRP '1970-01-01T00:00:00Z' -> '' #2": "the probe values of check_model are arbitrary: any subject, domain, matter, unit, time or id exercises the model the same way",
        "Authorizer.set_grants UNW list(r) -> r": "what matters is a new outer list (pycasbin removes from its own list while the rows are iterated); copying each row as well changes nothing",
        "Authorizer.set_grants UNW sorted({(g.subject, g.role, g.domain) for g in grants}) -> {(g.subject, g.role, g.domain) for g in grants}": "the order of g rows does not change any decision",
        "Authorizer.allowed UNW bool(self._enforcer.enforce(subject, domain, action)) -> self._enforcer.enforce(subject, domain, action)": "pycasbin's enforce() already returns a bool",
        "Authorizer.set_delegations UNW list(r) -> r": "pycasbin stores each added row as a list of its own (the tests pass tuples and read lists back)",
        "Authorizer.may_call_out SDL row = list(row) -> pass": "the cache then holds pycasbin's own row, but only copies are handed out and pycasbin never changes a row in place",
        "Authorizer.may_call_out UNW list(row) -> row": "as above",
        "Authorizer.may_call_out LCR allowed and row and (not self._responsible(matter, domain, unit)) -> drop operand allowed": "a refusal comes with no row (m2 matched nothing), so 'row' is false whenever 'allowed' is",
        "Authorizer.may_call_out LCR allowed and row and (not self._responsible(matter, domain, unit)) -> drop operand row": "m2 allows only through the responsibility list or a matched delegation row: allowed and not responsible implies a row",
        "Authorizer.may_call_out UNW bool(allowed) -> allowed": "pycasbin's enforce_ex() already returns a bool",
        "Authorizer.may_call_out UNW bool(allowed) -> allowed #2": "as above",
        "Authorizer._responsible UNW bool(fn and fn(matter, domain, unit)) -> fn and fn(matter, domain, unit)": "only used under `not`; the truth value is the same",
        "Authorizer._responsible LCR fn and fn(matter, domain, unit) -> drop operand fn": "a call-out model always has `responsible` registered (the constructor adds a refusing one when none is given), and _responsible is only reached for such models",
        "Authorizer.explain UNW list(rule) -> rule": "the cache then holds pycasbin's own row, but only copies are handed out and pycasbin never changes a row in place",
    },
}


# -- mutants -------------------------------------------------------------------------------------
@dataclasses.dataclass
class Mutant:
    id: int
    path: str
    line: int
    scope: str  # enclosing function or class (dotted), or <module>
    operator: str
    before: str
    after: str
    source: str = dataclasses.field(repr=False, default="")
    status: str = "pending"  # killed | survived | timeout | equivalent | error
    stage: str = ""
    seconds: float = 0.0
    reason: str = ""
    dup: int = 0  # the same change elsewhere in the same function: 2, 3...

    @property
    def key(self) -> str:
        key = f"{self.scope} {self.operator} {self.before} -> {self.after}"
        return f"{key} #{self.dup}" if self.dup else key

    def describe(self) -> str:
        return f"{self.path}:{self.line} [{self.operator}] {self.before} -> {self.after}  ({self.scope})"

    @property
    def sha(self) -> str:
        return hashlib.sha256(self.source.encode()).hexdigest()[:16]

    def as_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("source")
        data["key"] = self.key
        data["sha"] = self.sha
        return data


def _short(node: ast.AST | str, limit: int = 70) -> str:
    text = node if isinstance(node, str) else ast.unparse(node)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclasses.dataclass
class _Slot:
    """A node and where it hangs: ``getattr(parent, field)`` or ``getattr(parent, field)[index]``."""

    node: ast.AST
    parent: ast.AST | None
    field: str
    index: int | None
    scope: str

    def replace(self, new: ast.AST) -> None:
        if self.index is None:
            setattr(self.parent, self.field, new)
        else:
            getattr(self.parent, self.field)[self.index] = new


_SKIP_FIELDS = {"annotation", "returns", "type_comment", "decorator_list"}


def _is_docstring(node: ast.AST, parent: ast.AST | None, index: int | None) -> bool:
    return (
        index == 0
        and isinstance(parent, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _slots(tree: ast.Module) -> Iterator[_Slot]:
    """Every mutable node, in a fixed order (the same for every parse of the same source)."""

    def visit(node: ast.AST, parent: ast.AST | None, field: str, index: int | None, scope: str) -> Iterator[_Slot]:
        if _is_docstring(node, parent, index) or isinstance(node, ast.JoinedStr):
            return  # docstrings and f-string message text are not behaviour
        if isinstance(node, ast.ImportFrom | ast.Import):
            return
        yield _Slot(node, parent, field, index, scope)
        inner = scope
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            inner = node.name if scope == "<module>" else f"{scope}.{node.name}"
        for name, value in ast.iter_fields(node):
            if name in _SKIP_FIELDS:
                continue
            if isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, ast.AST):
                        yield from visit(item, node, name, i, inner)
            elif isinstance(value, ast.AST):
                yield from visit(value, node, name, None, inner)

    yield from visit(tree, None, "", None, "<module>")


#: A variant: (operator, before, after, apply) where ``apply`` changes the slot in a fresh tree.
Variant = tuple[str, str, str, Callable[[_Slot], None]]

_COMPARE_SWAPS: dict[type, tuple[type, ...]] = {
    ast.Lt: (ast.LtE, ast.GtE),
    ast.LtE: (ast.Lt, ast.Gt),
    ast.Gt: (ast.GtE, ast.LtE),
    ast.GtE: (ast.Gt, ast.Lt),
    ast.Eq: (ast.NotEq,),
    ast.NotEq: (ast.Eq,),
    ast.Is: (ast.IsNot,),
    ast.IsNot: (ast.Is,),
    ast.In: (ast.NotIn,),
    ast.NotIn: (ast.In,),
}
_ARITH_SWAPS: dict[type, type] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv,
}
_OP_TEXT = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}
#: calls whose removal (keeping the argument) changes a type or drops a copy
_UNWRAP = {"bool", "list", "dict", "set", "tuple", "str", "sorted"}


def _variants(slot: _Slot) -> Iterator[Variant]:
    node = slot.node
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            for new in _COMPARE_SWAPS.get(type(op), ()):

                def swap(s: _Slot, i: int = i, new: type = new) -> None:
                    s.node.ops[i] = new()

                yield "ROR", _short(node), f"{_OP_TEXT[type(op)]} -> {_OP_TEXT[new]}", swap
    elif isinstance(node, ast.BoolOp):
        other = ast.Or if isinstance(node.op, ast.And) else ast.And

        def flip(s: _Slot, other: type = other) -> None:
            s.node.op = other()

        yield "LCR", _short(node), "and <-> or", flip
        for i, value in enumerate(node.values):

            def drop(s: _Slot, i: int = i) -> None:
                del s.node.values[i]
                if len(s.node.values) == 1:
                    s.replace(s.node.values[0])

            yield "LCR", _short(node), f"drop operand {_short(value, 40)}", drop
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield "LCR", _short(node), "drop not", lambda s: s.replace(s.node.operand)
    elif isinstance(node, ast.BinOp | ast.AugAssign) and type(node.op) in _ARITH_SWAPS:
        new = _ARITH_SWAPS[type(node.op)]
        yield (
            "AOR",
            _short(node),
            f"{type(node.op).__name__} -> {new.__name__}",
            lambda s, new=new: setattr(s.node, "op", new()),
        )
    elif isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool):
            yield "CRP", repr(value), repr(not value), lambda s, v=value: setattr(s.node, "value", not v)
        elif isinstance(value, int):
            yield "CRP", repr(value), repr(value + 1), lambda s, v=value: setattr(s.node, "value", v + 1)
            if value != 0:
                yield "CRP", repr(value), "0", lambda s: setattr(s.node, "value", 0)
        elif isinstance(value, str):
            new_text = "" if value else "MUTANT"
            yield "CRP", _short(repr(value), 40), repr(new_text), lambda s, t=new_text: setattr(s.node, "value", t)
    elif isinstance(node, ast.Tuple | ast.List | ast.Set) and isinstance(getattr(node, "ctx", ast.Load()), ast.Load):
        if len(node.elts) >= 2:
            for i, elt in enumerate(node.elts):

                def remove(s: _Slot, i: int = i) -> None:
                    del s.node.elts[i]

                yield "COL", _short(node), f"drop element {_short(elt, 40)}", remove
    elif isinstance(node, ast.Dict):
        for i, (k, v) in enumerate(zip(node.keys, node.values, strict=True)):

            def remove_entry(s: _Slot, i: int = i) -> None:
                del s.node.keys[i]
                del s.node.values[i]

            entry = f"**{_short(v, 40)}" if k is None else f"{_short(k, 30)}: {_short(v, 30)}"
            yield "COL", _short(node), f"drop entry {entry}", remove_entry
    elif isinstance(node, ast.Call):
        for i, kw in enumerate(node.keywords):

            def drop_kw(s: _Slot, i: int = i) -> None:
                del s.node.keywords[i]

            yield "KWD", _short(node), f"drop keyword {_short(kw, 40)}", drop_kw
        if isinstance(node.func, ast.Name) and node.func.id in _UNWRAP and len(node.args) == 1 and not node.keywords:
            yield "UNW", _short(node), _short(node.args[0]), lambda s: s.replace(s.node.args[0])
    elif isinstance(node, ast.Return) and node.value is not None:
        if not (isinstance(node.value, ast.Constant) and node.value.value is None):
            yield "RVR", _short(node), "return None", lambda s: setattr(s.node, "value", ast.Constant(None))
    elif isinstance(node, ast.ExceptHandler) and node.type is not None:

        def never(s: _Slot) -> None:
            s.node.type = ast.Name("StopAsyncIteration", ast.Load())

        yield "EXC", f"except {_short(node.type)}", "except StopAsyncIteration (never raised)", never
    if (
        isinstance(node, ast.stmt)
        and slot.index is not None
        and not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Pass)
    ):
        yield "SDL", _short(ast.unparse(node).splitlines()[0]), "pass", lambda s: s.replace(ast.Pass())


def generate(source: str, path: str) -> list[Mutant]:
    """Every mutant of ``source`` (generated operators, then the module's hand-written ones)."""
    original = ast.unparse(ast.parse(source))
    mutants: list[Mutant] = []
    seen = {original}
    plan: list[tuple[int, int, Variant]] = []
    for k, slot in enumerate(_slots(ast.parse(source))):
        for v, variant in enumerate(_variants(slot)):
            plan.append((k, v, variant))
    for k, v, (operator, before, after, _) in plan:
        tree = ast.parse(source)
        slot = next(s for i, s in enumerate(_slots(tree)) if i == k)
        line = getattr(slot.node, "lineno", 0)
        scope = slot.scope
        list(_variants(slot))[v][3](slot)
        ast.fix_missing_locations(tree)
        try:
            text = ast.unparse(tree)
            compile(text, path, "exec")
        except (SyntaxError, ValueError, TypeError):
            continue  # an invalid program is no mutant
        if text in seen:
            continue  # identical to the original or to an earlier mutant
        seen.add(text)
        mutants.append(Mutant(len(mutants) + 1, path, line, scope, operator, before, after, text))
    lines = source.splitlines(keepends=True)
    for label, before, after in HAND_WRITTEN.get(path, []):
        start = 0
        while (at := source.find(before, start)) >= 0:
            start = at + len(before)
            text = source[:at] + after + source[start:]
            line = source.count("\n", 0, at) + 1 + (len(before) - len(before.lstrip("\n")))
            scope = _scope_at(source, line)
            mutants.append(Mutant(len(mutants) + 1, path, line, scope, "HND", _short(lines[line - 1]), label, text))
    seen_keys: dict[str, int] = {}
    for m in mutants:  # keys name a mutant uniquely (the equivalence list relies on it)
        seen_keys[m.key] = seen_keys.get(m.key, 0) + 1
        m.dup = seen_keys[m.key] if seen_keys[m.key] > 1 else 0
    return mutants


def _scope_at(source: str, line: int) -> str:
    best = "<module>"
    for slot in _slots(ast.parse(source)):
        node = slot.node
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.lineno <= line <= (node.end_lineno or 0):
            best = node.name if slot.scope == "<module>" else f"{slot.scope}.{node.name}"
    return best


# -- running -------------------------------------------------------------------------------------
class _Stop(Exception):
    """Raised from the SIGTERM handler so every ``finally`` runs."""


def snapshot(root: Path, into: Path, head: bool | str = False, overlay: Sequence[str] = ()) -> None:
    """Copy the tree's tracked and untracked (not ignored) files; fall back to a filtered copy.

    With ``head``, the committed tree (``git archive HEAD``) instead, with the ``overlay`` files
    copied over it from the working tree: a stable base while others have work in progress."""
    if head:
        rev = head if isinstance(head, str) else "HEAD"
        archive = subprocess.run(["git", "archive", "--format=tar", rev], cwd=root, check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
        for name in overlay:
            dst = into / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / name, dst)
        return
    try:
        names = subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root, check=True, capture_output=True
        ).stdout.decode()
        files = [n for n in names.split("\0") if n]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "var", "__pycache__", "node_modules", ".ruff_cache", ".mypy_cache", ".pytest_cache"}
        files = [
            str(p.relative_to(root))
            for p in root.rglob("*")
            if p.is_file() and not skip & set(p.relative_to(root).parts)
        ]
    for name in files:
        src = root / name
        if src.is_file():
            dst = into / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)


def package_dirs(root: Path) -> dict[str, str]:
    """pyproject's ``[tool.setuptools] package-dir``: dotted package -> folder (relative)."""
    import tomllib

    pyproject = root / "pyproject.toml"
    if not pyproject.exists():
        return {}
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    return dict(data.get("tool", {}).get("setuptools", {}).get("package-dir", {}))


class Runner:
    """Runs mutants of one module in a snapshot, one at a time, each in a fresh pytest process."""

    def __init__(
        self,
        snapshot_root: Path,
        focused: Sequence[str],
        suite: Sequence[str] = (),
        suite_ignore: Sequence[str] = (),
        echo: Callable[[str], None] = print,
        env: dict[str, str] | None = None,
        server: bool = True,
    ) -> None:
        self.root = snapshot_root
        self.focused = [t for t in focused if (snapshot_root / t).exists()]
        ignore = [*self.focused, *suite_ignore]
        self.suite = [*suite, *(f"--ignore={t}" for t in ignore)] if suite else []
        self.echo = echo
        self.env = {**os.environ, **(env or {})}
        self.deselect: list[str] = []
        self.limits: dict[str, float] = {}
        #: the child script: a copy in the snapshot, so editing this file during a run changes nothing
        self.child = snapshot_root / ".mutation-child.py"
        if not self.child.exists():
            shutil.copy2(Path(__file__).resolve(), self.child)
        self.env.setdefault(_SOURCE_ROOT, str(ROOT))
        #: a process that has imported the third-party libraries once and forks a pytest run per request
        self.server: subprocess.Popen | None = None
        if server:
            with (snapshot_root / ".mutation-server.log").open("ab") as log:
                self.server = subprocess.Popen(
                    [sys.executable, str(self.child), "--serve", str(snapshot_root)],
                    cwd=snapshot_root,
                    env=self.env,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=log,
                    start_new_session=True,
                    text=True,
                )

    def _server_run(self, args: list[str], timeout: float | None) -> tuple[str, int, float, str] | None:
        """Run pytest in a fork of the preloaded server; None if the server is gone (then a plain process)."""
        if self.server is None or self.server.poll() is not None:
            return None
        assert self.server.stdin is not None and self.server.stdout is not None
        out = self.root / ".mutation-out.txt"
        start = time.perf_counter()
        self.server.stdin.write(json.dumps({"args": args, "timeout": timeout, "out": str(out)}) + "\n")
        self.server.stdin.flush()
        ready, _, _ = select.select([self.server.stdout], [], [], (timeout or 3600) + 120)
        line = self.server.stdout.readline() if ready else ""
        if not line:  # the server hangs or died: never trust it again
            self.close()
            return None
        reply = json.loads(line)
        seconds = time.perf_counter() - start
        text = out.read_text(encoding="utf-8", errors="replace") if out.exists() else ""
        if reply["timeout"]:
            return "timeout", -1, seconds, text
        return ("passed" if reply["code"] == 0 else "failed"), reply["code"], seconds, text

    def close(self) -> None:
        if self.server is not None:
            _kill(self.server)
            self.server = None

    def _pytest(
        self, args: Sequence[str], timeout: float | None, first_failure: bool = True
    ) -> tuple[str, int, float, str]:
        stop = ["-x"] if first_failure else []
        pytest_args = [*stop, "-q", "-rfE", "-p", "no:randomly", *args, *(f"--deselect={d}" for d in self.deselect)]
        served = self._server_run(pytest_args, timeout)
        if served is not None:
            return served
        command = [sys.executable, str(self.child), "--child", str(self.root), *pytest_args]
        start = time.perf_counter()
        proc = subprocess.Popen(
            command,
            cwd=self.root,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            text=True,
        )
        try:
            out, _ = proc.communicate(timeout=timeout)
            return ("passed" if proc.returncode == 0 else "failed"), proc.returncode, time.perf_counter() - start, out
        except subprocess.TimeoutExpired:
            _kill(proc)
            return "timeout", -1, time.perf_counter() - start, ""
        except BaseException:
            _kill(proc)
            raise

    def stages(self) -> list[tuple[str, list[str]]]:
        """The module's own test file alone (quick to collect), the other focused files, the suite."""
        found = [("unit", self.focused[:1])] if self.focused else []
        if len(self.focused) > 1:
            found.append(("focused", self.focused[1:]))
        if self.suite:
            found.append(("suite", self.suite))
        return found

    def baseline(self, target: Path, source: str, allow_failures: bool = False) -> bool:
        """The unmutated module (as the mutants are written: re-printed from its syntax tree) must pass.

        Also checks that the tests really load the snapshot's copy: a module that raises on import
        must fail the first stage."""
        original = target.read_text(encoding="utf-8")
        try:
            _write(target, ast.unparse(ast.parse(source)))
            for name, args in self.stages():
                for attempt in range(3):  # the first run without -x finds every failing test at once
                    result, code, seconds, out = self._pytest(args, None, first_failure=attempt > 0)
                    if result == "passed":
                        break
                    failing = [
                        line.split(" ", 1)[1].split(" - ")[0]
                        for line in out.splitlines()
                        if line.startswith(("FAILED ", "ERROR "))
                    ]
                    self.echo(f"baseline {name} stage fails (exit {code}): {', '.join(failing) or out[-2000:]}")
                    if not (allow_failures and failing) or set(failing) <= set(self.deselect):
                        return False
                    self.deselect += failing
                else:
                    return False
                self.limits[name] = max(60.0, 5 * seconds)
                self.echo(f"baseline {name} stage passes in {seconds:.1f}s ({' '.join(args)})")
            name, args = self.stages()[0]
            _write(target, source + "\nraise RuntimeError('mutation canary')\n")
            if self._pytest(args, self.limits[name])[0] == "passed":
                self.echo("the tests do not load the snapshot's copy of the module: canary mutant not detected")
                return False
            return True
        finally:
            _write(target, original)

    def run(self, target: Path, mutant: Mutant) -> Mutant:
        original = target.read_text(encoding="utf-8")
        start = time.perf_counter()
        try:
            _write(target, mutant.source)
            mutant.status = "survived"
            for name, args in self.stages():
                result, code, _, out = self._pytest(args, self.limits.get(name))
                if result == "timeout":
                    mutant.status, mutant.stage = "timeout", name
                    break
                if result == "failed":
                    mutant.status, mutant.stage, mutant.reason = _verdict(code, out)
                    mutant.stage = name
                    break
        finally:
            _write(target, original)
            mutant.seconds = round(time.perf_counter() - start, 2)
        return mutant


def _verdict(code: int, out: str) -> tuple[str, str, str]:
    """killed (a test failed, or the code under test no longer imports) or error (the runner's fault)."""
    lines = out.splitlines()
    failed = next((ln for ln in lines if ln.startswith(("FAILED ", "ERROR "))), "")
    if code in (1, 2) and (failed or "error" in (lines[-1] if lines else "")):
        return "killed", "", failed or lines[-1]
    if code == 4 and "while loading conftest" in out:  # the mutant breaks an import of the conftest
        return "killed", "", next((ln for ln in lines if "Error" in ln), "conftest import fails")
    return "error", "", out[-500:]


def _write(target: Path, text: str) -> None:
    """Write a module and drop its cached bytecode (a same-size rewrite within a second could reuse it)."""
    target.write_text(text, encoding="utf-8")
    for stale in (target.parent / "__pycache__").glob(f"{target.stem}.*.pyc"):
        stale.unlink(missing_ok=True)


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def summary(mutants: Sequence[Mutant]) -> dict[str, Any]:
    counts = {s: sum(m.status == s for m in mutants) for s in ("killed", "timeout", "survived", "equivalent", "error")}
    scored = len(mutants) - counts["equivalent"] - counts["error"]
    detected = counts["killed"] + counts["timeout"]
    return {
        "mutants": len(mutants),
        **counts,
        "score": round(100 * detected / scored, 1) if scored else 100.0,
        "score_raw": round(100 * detected / len(mutants), 1) if mutants else 100.0,
    }


def resolve(name: str) -> Target:
    if name in TARGETS:
        return TARGETS[name]
    path = Path(name)
    rel = str(path.resolve().relative_to(ROOT)) if path.is_absolute() else name
    for target in TARGETS.values():
        if target.path == rel:
            return target
    return Target(rel, ())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", default=["sandbox", "authz"], help="sandbox, authz, service or a path")
    parser.add_argument("--json", type=Path, help="write a JSON report here")
    parser.add_argument("--scope", choices=("focused", "suite"), default="suite", help="suite: focused tests, then all")
    parser.add_argument("--only", help="comma-separated mutant ids (as --list shows them)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--sample", type=int, help="run about N mutants, evenly spread (every k-th)")
    parser.add_argument("--allow-baseline-failures", action="store_true", help="deselect tests failing unmutated")
    parser.add_argument("--head", action="store_true", help="test the committed tree (HEAD), not the working tree")
    parser.add_argument("--rev", help="like --head, for another commit")
    parser.add_argument("--module-rev", help="the mutated module as it was at this commit (the tests as they are)")
    parser.add_argument("--no-server", action="store_true", help="a fresh Python process per test run (slower)")
    parser.add_argument(
        "--previous",
        type=Path,
        help="a JSON report: its killed or timed-out mutants (same change, same mutated source) are not run again",
    )
    parser.add_argument("--with", dest="overlay", nargs="*", default=[], help="with --head: working-tree files to add")
    args = parser.parse_args(argv)
    only = {int(i) for i in args.only.split(",")} if args.only else None

    def on_term(signum: int, frame: Any) -> None:
        raise _Stop(signum)

    signal.signal(signal.SIGTERM, on_term)
    report: dict[str, Any] = {"modules": {}}
    interrupted = False
    with tempfile.TemporaryDirectory(prefix="govflow-mutation-") as tmp:
        snap = Path(tmp)
        if not args.list:
            snapshot(ROOT, snap, args.rev or args.head, args.overlay)
        for name in args.modules:
            target = resolve(name)
            if args.module_rev and not args.list:
                old = subprocess.run(
                    ["git", "show", f"{args.module_rev}:{target.path}"], cwd=ROOT, check=True, capture_output=True
                )
                (snap / target.path).write_bytes(old.stdout)
            source = ((ROOT if args.list else snap) / target.path).read_text(encoding="utf-8")
            mutants = generate(source, target.path)
            equivalent = EQUIVALENT.get(target.path, {})
            if args.list:
                for m in mutants:
                    print(f"{m.id:4d} {m.describe()}")
                continue
            selected = [m for m in mutants if only is None or m.id in only]
            if args.sample and len(selected) > args.sample:
                selected = selected[:: -(-len(selected) // args.sample)]
            done: list[Mutant] = []
            if args.previous:
                # an unchanged mutant keeps an earlier kill; with --only, every mutant not named keeps
                # its earlier result of any kind (the report then covers the whole module)
                before = json.loads(args.previous.read_text(encoding="utf-8"))["modules"].get(target.path, {})
                earlier = {p["sha"]: p for p in before.get("results", [])}
                for m in mutants:
                    found = earlier.get(m.sha)
                    keep = found and (found["status"] in ("killed", "timeout") or (only and m.id not in only))
                    if found and keep:
                        m.status, m.stage, m.reason = (
                            found["status"],
                            "previous " + found["stage"].removeprefix("previous "),
                            found["reason"],
                        )
                        if m.status == "survived" and m.key in equivalent:
                            m.status, m.reason = "equivalent", equivalent[m.key]
                        done.append(m)
                        if m in selected:
                            selected.remove(m)
            runner = Runner(
                snap, target.focused, SUITE if args.scope == "suite" else (), SUITE_IGNORE, server=not args.no_server
            )
            print(f"== {target.path}: {len(mutants)} mutants, {len(selected)} to run; tests: {runner.stages()}")
            try:
                if not runner.baseline(snap / target.path, source, args.allow_baseline_failures):
                    report["modules"][target.path] = {"error": "baseline failed"}
                    continue
                for m in selected:
                    runner.run(snap / target.path, m)
                    if m.status == "survived" and m.key in equivalent:
                        m.status, m.reason = "equivalent", equivalent[m.key]
                    done.append(m)
                    print(
                        f"[{m.id}/{len(mutants)}] {m.status:<10} {m.describe()} ({m.stage or '-'}, {m.seconds}s)",
                        flush=True,
                    )
            except (KeyboardInterrupt, _Stop):
                interrupted = True
                print("interrupted: the snapshot's module was restored; the working tree was never touched")
            finally:
                runner.close()
            stale = sorted(set(equivalent) - {m.key for m in mutants})
            done.sort(key=lambda m: m.id)
            result = summary(done)
            report["modules"][target.path] = {
                **result,
                "stale_equivalents": stale,
                "deselected": runner.deselect,
                "results": [m.as_json() for m in done],
            }
            print(
                f"== {target.path}: {result['mutants']} run, {result['killed']} killed, {result['timeout']} timeout, "
                f"{result['survived']} survived, {result['equivalent']} equivalent, {result['error']} error; "
                f"score {result['score']}% (raw {result['score_raw']}%)"
            )
            for m in done:
                if m.status in ("survived", "equivalent", "error"):
                    print(f"  {m.status}: {m.describe()}" + (f"\n      {m.reason}" if m.status == "equivalent" else ""))
            for key in stale:
                print(f"  stale equivalence entry (no such mutant any more): {key}")
            if interrupted:
                break
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if interrupted:
        return 130
    failed = any("error" in r for r in report["modules"].values())
    return 1 if failed else 0


# -- the child: pytest against the snapshot ------------------------------------------------------
class _SnapshotFinder:
    """Finds the packages of pyproject's ``package-dir`` in the snapshot, ahead of the editable install."""

    def __init__(self, root: Path, mapping: dict[str, str]) -> None:
        self.dirs = {name: root / folder for name, folder in mapping.items()}

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        import importlib.util

        folder = self.dirs.get(fullname)
        if folder is None:
            return None
        return importlib.util.spec_from_file_location(
            fullname, folder / "__init__.py", submodule_search_locations=[str(folder)]
        )


def _editable_mappings(root: Path, snap: Path) -> dict[str, str]:
    """Packages that editable installs (setuptools' finders) load from ``root``, moved to ``snap``."""
    found: dict[str, str] = {}
    for finder in sys.meta_path:
        module = sys.modules.get(getattr(finder, "__module__", ""))
        for name, folder in (getattr(module, "MAPPING", None) or {}).items():
            path = Path(folder)
            if path.is_relative_to(root):
                found[name] = str(snap / path.relative_to(root))
    return found


def _prepare(root: Path) -> None:
    sys.path[0] = str(root)  # as `python -m pytest` started in the snapshot
    source = Path(os.environ.get(_SOURCE_ROOT, str(ROOT)))
    mapping = {**_editable_mappings(source, root), **package_dirs(root)}
    sys.meta_path.insert(0, _SnapshotFinder(root, mapping))


def _child(root: Path, pytest_args: list[str]) -> int:
    _prepare(root)
    import pytest

    return int(pytest.main(pytest_args))


def _project_module(name: str, module: Any, roots: Sequence[Path]) -> bool:
    if name == "conftest" or name.split(".")[0] in ("govflow", "tests", "features"):
        return True
    file = getattr(module, "__file__", None)
    if not file:
        return False
    path = Path(file).resolve()
    if any(path.is_relative_to(Path(p).resolve()) for p in (sys.prefix, sys.base_prefix)):
        return False  # installed libraries (the virtualenv may live inside the tree)
    return any(path.is_relative_to(r) for r in roots)


def _serve(root: Path) -> int:
    """Import what the project's tests import, forget the project's own modules (they are re-read from
    the snapshot, mutant included, by every run), then answer each request line with a forked pytest
    run: ``{"args": [...], "timeout": seconds, "out": file}`` in, ``{"code": n, "timeout": bool}`` out."""
    _prepare(root)
    import importlib
    from importlib.metadata import entry_points

    import pytest  # noqa: F401 (preloaded for the forks)

    for plugin in entry_points(group="pytest11"):  # pytest's plugins (some import seconds of code)
        try:
            importlib.import_module(plugin.module)
        except Exception:
            pass

    try:
        import conftest  # noqa: F401 (for its third-party imports)
    except Exception:
        pass
    roots = [root.resolve(), Path(os.environ.get(_SOURCE_ROOT, str(ROOT))).resolve()]
    for name, module in list(sys.modules.items()):
        if _project_module(name, module, roots):
            del sys.modules[name]
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:  # the fork: one pytest run, its output in a file
            code = 3
            try:
                os.setpgid(0, 0)
                fd = os.open(request["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                os.dup2(fd, 1)
                os.dup2(fd, 2)
                import pytest as fresh

                code = int(fresh.main(request["args"]))
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        deadline = time.monotonic() + request["timeout"] if request["timeout"] else None
        timed_out = False
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                code = os.waitstatus_to_exitcode(status)
                break
            if deadline is not None and time.monotonic() > deadline:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                os.waitpid(pid, 0)
                code, timed_out = -1, True
                break
            time.sleep(0.02)
        print(json.dumps({"code": code, "timeout": timed_out}), flush=True)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        sys.exit(_child(Path(sys.argv[2]), sys.argv[3:]))
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        sys.exit(_serve(Path(sys.argv[2])))
    sys.exit(main())
