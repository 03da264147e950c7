"""The sandboxed script environment for diagram expressions and scripts.

SpiffWorkflow's stock environment runs ``eval``/``exec`` with full builtins: a
diagram could ``import os`` or walk ``().__class__.__subclasses__()``. govflow
replaces it at the *environment* level (Spiff's message correlation calls the
environment directly) with one built on RestrictedPython:

* code is compiled with ``compile_restricted_*`` (no names or attributes that
  start with ``_``; attribute access through ``safer_getattr``; guarded item
  access, iteration and writes) and cached by source text;
* builtins are RestrictedPython's safe set (no ``open``, no ``__import__``,
  ``range`` capped);
* :func:`check_script` refuses, at pack validation time, what the sandbox would
  only stop at run time: ``import``, ``while`` loops, function definitions.

No in-process sandbox stops every denial of service; real logic belongs in
service tasks backed by registered Python functions (``services``), which is
why :meth:`RestrictedEnvironment.call_service` exists.

The environment is not persisted by Spiff's serializer: the runtime re-attaches
it after every load (``govflow.engine.workflow.runtime``).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable, Mapping
from typing import Any

from RestrictedPython import compile_restricted_eval, compile_restricted_exec, limited_builtins, safe_builtins
from RestrictedPython.Eval import default_guarded_getitem, default_guarded_getiter
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr,
)
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

_EXTRA_BUILTINS = {
    name: __builtins__[name] if isinstance(__builtins__, dict) else getattr(__builtins__, name)
    for name in ("dict", "list", "min", "max", "sum", "any", "all", "enumerate", "sorted", "reversed", "map", "filter")
}

_BUILTINS: dict[str, Any] = {**safe_builtins, **limited_builtins, **_EXTRA_BUILTINS}

_GUARDS: dict[str, Any] = {
    "__builtins__": _BUILTINS,
    "_getattr_": safer_getattr,
    "_getitem_": default_guarded_getitem,
    "_getiter_": default_guarded_getiter,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_unpack_sequence_": guarded_unpack_sequence,
    "_write_": full_write_guard,
}

_FORBIDDEN_NODES: dict[type, str] = {
    ast.Import: "import statements are not allowed in diagram scripts",
    ast.ImportFrom: "import statements are not allowed in diagram scripts",
    ast.While: "while loops are not allowed in diagram scripts (use a service task)",
    ast.FunctionDef: "function definitions are not allowed in diagram scripts (use a service task)",
    ast.AsyncFunctionDef: "function definitions are not allowed in diagram scripts",
    ast.ClassDef: "class definitions are not allowed in diagram scripts",
    ast.Lambda: "lambdas are not allowed in diagram scripts",
    ast.Global: "global statements are not allowed in diagram scripts",
    ast.Nonlocal: "nonlocal statements are not allowed in diagram scripts",
}

_MAX_SOURCE = 4000


def rules() -> dict[str, Any]:
    """What the sandbox allows, for people writing diagram code (the studio explains it inline):
    the longest source, the constructs refused with the reason given, and the builtins."""
    return {
        "max_source": _MAX_SOURCE,
        "refused": sorted(set(_FORBIDDEN_NODES.values())),
        "builtins": sorted(name for name in _BUILTINS if name[:1].islower()),
        "private_names": "names and attributes starting with an underscore are refused",
    }


class ScriptRejected(ValueError):
    """A diagram script or expression that govflow refuses to run."""


def check_script(source: str, *, mode: str = "exec") -> None:
    """Refuse a script or expression before it is ever stored or run.

    Raises :class:`ScriptRejected` with a precise reason.
    """
    if len(source) > _MAX_SOURCE:
        raise ScriptRejected(f"script longer than {_MAX_SOURCE} characters")
    try:
        tree = ast.parse(source, mode=mode)
    except SyntaxError as exc:
        raise ScriptRejected(f"syntax error: {exc.msg} (line {exc.lineno})") from None
    for node in ast.walk(tree):
        reason = _FORBIDDEN_NODES.get(type(node))
        if reason:
            raise ScriptRejected(f"{reason} (line {getattr(node, 'lineno', '?')})")
    compiled = (compile_restricted_eval if mode == "eval" else compile_restricted_exec)(source)
    if compiled.errors:
        raise ScriptRejected("; ".join(compiled.errors))


class RestrictedEnvironment(BasePythonScriptEngineEnvironment):
    """Spiff script environment that evaluates through RestrictedPython."""

    def __init__(
        self,
        services: Mapping[str, Callable[..., Any]] | None = None,
        functions: Mapping[str, Callable[..., Any]] | None = None,
    ) -> None:
        super().__init__({})
        self._services = dict(services or {})
        #: trusted engine functions diagrams may call in expressions (e.g. due, remind)
        self._functions = dict(functions or {})
        self._eval_cache: dict[str, Any] = {}
        self._exec_cache: dict[str, Any] = {}

    # -- compilation -------------------------------------------------------
    def _compiled(self, source: str, mode: str) -> Any:
        cache = self._eval_cache if mode == "eval" else self._exec_cache
        code = cache.get(source)
        if code is None:
            check_script(source, mode=mode)
            result = (compile_restricted_eval if mode == "eval" else compile_restricted_exec)(source)
            code = result.code
            if len(cache) > 4096:
                cache.clear()
            cache[source] = code
        return code

    # -- Spiff environment API ---------------------------------------------
    def evaluate(self, expression: str, context: dict[str, Any], external_context: dict[str, Any] | None = None) -> Any:
        code = self._compiled(expression, "eval")
        scope = dict(self._functions)
        scope.update(external_context or {})
        scope.update(context)
        scope.update(_GUARDS)  # last: task data can never replace a guard
        return eval(code, scope)

    def execute(self, script: str, context: dict[str, Any], external_context: dict[str, Any] | None = None) -> bool:
        code = self._compiled(script, "exec")
        scope = dict(self._functions)
        scope.update(external_context or {})
        scope.update(context)
        scope.update(_GUARDS)  # last: task data can never replace a guard
        exec(code, scope)
        skip = set(_GUARDS) | set(external_context or {}) | set(self._functions)
        for key in list(context):
            if key not in scope:
                del context[key]
        for key, value in scope.items():
            if key in skip or callable(value):
                continue
            context[key] = value
        return True

    def call_service(
        self, context: dict[str, Any], operation_name: str = "", operation_params: dict | None = None, **_: Any
    ) -> str:
        service = self._services.get(operation_name)
        if service is None:
            raise LookupError(f"no service function named {operation_name!r} is registered")
        params = {name: spec.get("value") for name, spec in (operation_params or {}).items()}
        return json.dumps(service(**params))


class SandboxedScriptEngine(PythonScriptEngine):
    """A Spiff script engine whose environment is :class:`RestrictedEnvironment`."""

    def __init__(
        self,
        services: Mapping[str, Callable[..., Any]] | None = None,
        functions: Mapping[str, Callable[..., Any]] | None = None,
    ) -> None:
        super().__init__(environment=RestrictedEnvironment(services, functions))

    def validate(self, expression: str) -> None:
        check_script(expression, mode="eval")
