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
import contextlib
import functools
import json
import operator
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, ClassVar

from RestrictedPython import (
    RestrictingNodeTransformer,
    compile_restricted_eval,
    compile_restricted_exec,
    limited_builtins,
    safe_builtins,
)
from RestrictedPython.Eval import default_guarded_getitem, default_guarded_getiter
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr,
)
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

from govflow.engine.model.errors import LimitExceeded

_EXTRA_BUILTINS = {
    name: __builtins__[name] if isinstance(__builtins__, dict) else getattr(__builtins__, name)
    for name in ("dict", "list", "min", "max", "sum", "any", "all", "enumerate", "sorted", "reversed", "map", "filter")
}

# -- limits no pack can lift (issue 14: bounded diagram code) ----------------------------------------
#: the largest string or sequence (characters, items) one operation of diagram code may build
MAX_SEQUENCE = 1_000_000
#: the largest integer (bits, about 1,233 decimal digits) one operation may build
MAX_INT_BITS = 4096
#: the widest field a format (``%10d``, ``f"{x:>10}"``) may ask for
MAX_FORMAT_WIDTH = 10_000
#: Diagram code that runs longer than this (seconds) yields the interpreter: one command's code
#: runs in a thread of the API process and holds Python's GIL, so without yielding every other
#: request of the process waits up to the interpreter's switch interval (5 ms) each time it needs
#: the GIL back — a hostile condition running for its whole time budget made unrelated requests
#: several times slower. Ordinary diagram code (a few milliseconds) never reaches it.
YIELD_AFTER = 0.05
#: ... then, after each YIELD_EVERY seconds of running, it sleeps YIELD_FOR seconds (GIL released):
#: at most a fifth of the interpreter for long-running diagram code, other requests served between
#: (bench/bench_hostile.py: p95 of unrelated requests 1.3x idle under a continuous hostile client,
#: 3.5-3.9x without yielding, on a loaded 2-CPU machine).
YIELD_EVERY = 0.001
YIELD_FOR = 0.004


@dataclass(frozen=True)
class Limits:
    """The budget of ONE command's diagram code, set by the operator (environment), never by a pack.

    ``steps``: engine steps (gateways, script and service tasks, events) run without reaching a
    wait state; ``seconds``: wall-clock time spent running the workflow; ``memory``: bytes that
    diagram code may build (strings, sequences, numbers, iterations; approximate, conservative).
    """

    steps: int = 500
    seconds: float = 2.0
    memory: int = 64 * 2**20

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Limits:
        env = os.environ if environ is None else environ
        default = cls()
        return cls(
            steps=int(env.get("GOVFLOW_DIAGRAM_STEPS", default.steps)),
            seconds=float(env.get("GOVFLOW_DIAGRAM_SECONDS", default.seconds)),
            memory=int(float(env.get("GOVFLOW_DIAGRAM_MEMORY_MB", default.memory / 2**20)) * 2**20),
        )


_limits = [Limits.from_environ()]


def limits() -> Limits:
    """The limits every command runs under (read from the environment at start-up)."""
    return _limits[0]


def set_limits(new: Limits) -> Limits:
    """Replace the limits (operators' settings, tests); returns the previous ones."""
    old, _limits[0] = _limits[0], new
    return old


class Budget:
    """What one command has spent; once exceeded it stays exceeded (diagram code that catches the
    error cannot carry on: the next guard, iteration or engine step raises again)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        started = time.monotonic()
        self.deadline = started + limits.seconds
        self.steps = 0
        self.memory = 0
        self.exceeded: str | None = None
        self.yields = 0
        self._next_yield = started + YIELD_AFTER

    def refuse(self, reason: str) -> LimitExceeded:
        self.exceeded = self.exceeded or reason
        return LimitExceeded(self.exceeded)

    def check(self) -> None:
        """Called at every engine step, every call's result and every 256 items iterated: raise
        once a limit is exceeded; past :data:`YIELD_AFTER`, let other threads run now and then."""
        if self.exceeded:
            raise LimitExceeded(self.exceeded)
        now = time.monotonic()
        if now > self.deadline:
            raise self.refuse(f"the diagram ran longer than the {self.limits.seconds:g} s one command may take")
        if now >= self._next_yield:
            time.sleep(YIELD_FOR)  # releases the GIL: the requests waiting for it run meanwhile
            self.yields += 1
            self._next_yield = time.monotonic() + YIELD_EVERY

    def charge(self, size: int) -> None:
        self.memory += size
        if self.memory > self.limits.memory:
            raise self.refuse(f"the diagram built more than the {self.limits.memory // 2**20} MiB one command may")
        self.check()

    def step(self) -> None:
        self.steps += 1
        if self.steps > self.limits.steps:
            raise self.refuse(
                f"the diagram ran more than {self.limits.steps} engine steps without reaching a wait state "
                "(a loop of gateways and script tasks?)"
            )
        self.check()


_BUDGET: ContextVar[Budget | None] = ContextVar("govflow_diagram_budget", default=None)


@contextlib.contextmanager
def budget(limits_: Limits | None = None) -> Iterator[Budget]:
    """The budget of the current command: a new one, or the one already running (nested calls)."""
    current = _BUDGET.get()
    if current is not None:
        yield current
        return
    fresh = Budget(limits_ or limits())
    token = _BUDGET.set(fresh)
    try:
        yield fresh
    finally:
        _BUDGET.reset(token)


def _charge(size: int) -> None:
    current = _BUDGET.get()
    if current is not None:
        current.charge(size)


def _too_large(what: str) -> LimitExceeded:
    current = _BUDGET.get()
    reason = f"{what} would be too large for diagram code"
    return current.refuse(reason) if current is not None else LimitExceeded(reason)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_seq(x: Any) -> bool:
    return isinstance(x, (str, bytes, list, tuple))


def _cost(x: Any) -> int:
    """Approximate bytes of a value diagram code built (what the memory budget counts)."""
    if isinstance(x, (str, bytes)):
        return len(x)
    if isinstance(x, (list, tuple, dict, set, frozenset)):
        return 8 * len(x)
    if _is_int(x):
        return x.bit_length() // 8
    return 0


_SIZED = (str, bytes, list, tuple, dict, set, frozenset)


def _checked(x: Any) -> Any:
    """Every call's result: refused if too large, charged to the command's memory budget (values
    under 64 bytes are free: their number is bounded by the iterations and steps charged)."""
    kind = type(x)
    if kind is int:
        bits = x.bit_length()
        if bits > MAX_INT_BITS:
            raise _too_large("a number")
        if bits > 8192:
            _charge(bits // 8)
    elif kind is float or kind is bool or x is None:
        pass
    elif isinstance(x, _SIZED):
        if len(x) > MAX_SEQUENCE:
            raise _too_large("a string or sequence")
        cost = _cost(x)
        if cost >= 64:
            _charge(cost)
    return x


def _pow_(a: Any, b: Any, mod: Any = None) -> Any:
    if mod is None and type(a) is int and type(b) is int and b > 0 and a.bit_length() * b > MAX_INT_BITS + b:
        if abs(a) > 1:
            raise _too_large(f"the power {a.bit_length()}-bit number ** {b}")
    return _checked(pow(a, b) if mod is None else pow(a, b, mod))


def _mul_(a: Any, b: Any) -> Any:
    ta, tb = type(a), type(b)
    if ta is int and tb is int:
        if a.bit_length() + b.bit_length() > MAX_INT_BITS + 1:
            raise _too_large("the product")
        return a * b
    if ta is float or tb is float:
        return a * b
    if (_is_seq(a) and _is_int(b)) or (_is_int(a) and _is_seq(b)):
        seq, n = (a, b) if _is_seq(a) else (b, a)
        if len(seq) * max(n, 0) > MAX_SEQUENCE:
            raise _too_large(f"repeating a sequence of {len(seq)} {n} times")
    return _checked(a * b)


def _add_(a: Any, b: Any) -> Any:
    ta = type(a)
    if (ta is int or ta is float) and type(b) in (int, float):
        return a + b  # grows by a bit at most
    if _is_seq(a) and _is_seq(b) and len(a) + len(b) > MAX_SEQUENCE:
        raise _too_large("the concatenation")
    return _checked(a + b)


def _lshift_(a: Any, b: Any) -> Any:
    if _is_int(a) and _is_int(b) and a and b > 0 and a.bit_length() + b > MAX_INT_BITS:
        raise _too_large(f"shifting by {b} bits")
    return _checked(a << b)


_PERCENT_SPEC = re.compile(r"%[-+ #0]*(\*|\d+)?(?:\.(\*|\d+))?")


def _mod_(a: Any, b: Any) -> Any:
    if isinstance(a, (str, bytes)):
        text = a.decode("latin-1") if isinstance(a, bytes) else a
        for match in _PERCENT_SPEC.finditer(text):
            for part in match.groups():
                if part == "*" or (part and int(part) > MAX_FORMAT_WIDTH):
                    raise _too_large(f"the % format field {match.group(0)!r}")
    return _checked(a % b)


def _inplacevar_(op: str, x: Any, y: Any) -> Any:
    guarded = {"+=": _add_, "*=": _mul_, "**=": _pow_, "<<=": _lshift_, "%=": _mod_}
    plain = {
        "-=": operator.sub,
        "/=": operator.truediv,
        "//=": operator.floordiv,
        ">>=": operator.rshift,
        "&=": operator.and_,
        "|=": operator.or_,
        "^=": operator.xor,
        "@=": operator.matmul,
    }
    function = guarded.get(op) or plain.get(op)
    if function is None:
        raise SyntaxError(f"unsupported augmented assignment {op}")
    return function(x, y)


def _width(value: Any) -> int:
    return value if _is_int(value) else 0


def _method_size(obj: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[int, tuple[Any, ...]]:
    """The size a string method would build, before it builds it (and the args, iterables made lists)."""
    if name in ("ljust", "rjust", "center", "zfill"):
        return max(len(obj), _width(args[0] if args else kwargs.get("width"))), args
    if name == "expandtabs":
        tab = _width(args[0] if args else kwargs.get("tabsize", 8))
        return len(obj) * max(tab, 1), args
    if name == "replace" and len(args) >= 2:
        old, new = args[0], args[1]
        count = obj.count(old) if old else len(obj) + 1
        if len(args) > 2 and _is_int(args[2]) and args[2] >= 0:
            count = min(count, args[2])
        return len(obj) + count * max(len(new) - len(old), 0), args
    if name == "join" and args:
        items = list(_guarded_iter(args[0]))
        parts = sum(len(i) for i in items if isinstance(i, (str, bytes)))
        return len(obj) * max(len(items) - 1, 0) + parts, (items, *args[1:])
    if name == "translate" and args and isinstance(args[0], Mapping):
        longest = max((len(v) for v in args[0].values() if isinstance(v, (str, bytes))), default=1)
        return len(obj) * max(longest, 1), args
    if name == "extend" and args:
        if isinstance(args[0], _SIZED):
            return len(obj) + len(args[0]), args
        items = list(_guarded_iter(args[0]))
        return len(obj) + len(items), (items, *args[1:])
    return 0, args


_SIZED_METHODS = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs", "replace", "join", "translate"})


def _bounded_method(obj: Any, name: str, method: Any, *args: Any, **kwargs: Any) -> Any:
    size, args = _method_size(obj, name, args, kwargs)
    if size > MAX_SEQUENCE:
        raise _too_large(f"{type(obj).__name__}.{name}")
    _charge(size)
    return method(*args, **kwargs)


def _getattr_(obj: Any, name: str, *default: Any) -> Any:
    """``safer_getattr``, with the string methods that build by a caller's number bounded."""
    value = safer_getattr(obj, name, *default)
    if (isinstance(obj, (str, bytes)) and name in _SIZED_METHODS) or (isinstance(obj, list) and name == "extend"):
        return functools.partial(_bounded_method, obj, name, value)
    return value


def _guarded_iter(ob: Any) -> Iterator[Any]:
    """Iteration in diagram code: each item counts against the command's time and memory budget."""
    current = _BUDGET.get()
    iterator = default_guarded_getiter(ob)
    if current is None:
        yield from iterator
        return
    for count, item in enumerate(iterator):
        if not count & 255:
            current.charge(8 * 256)
        yield item


def _bounded_sum(iterable: Any, start: Any = 0) -> Any:
    items = list(_guarded_iter(iterable))
    if _is_seq(start) or any(_is_seq(i) for i in items):
        size = (len(start) if _is_seq(start) else 0) + sum(len(i) for i in items if _is_seq(i))
        if size > MAX_SEQUENCE:
            raise _too_large("the sum of sequences")
    return _checked(sum(items, start))


_bounded_sum.__name__ = "sum"
_pow_.__name__ = "pow"


class BoundedOps(RestrictingNodeTransformer):
    """RestrictedPython's policy, plus: ``**``, ``*``, ``<<``, ``+`` and ``%`` go through guards that
    refuse a too large result before it is built, every call's result is checked and charged, and
    f-string format specs must be short literal widths."""

    GUARDED: ClassVar[dict[type, str]] = {
        ast.Pow: "_pow_",
        ast.Mult: "_mul_",
        ast.LShift: "_lshift_",
        ast.Add: "_add_",
        ast.Mod: "_mod_",
    }

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        node = self.node_contents_visit(node)
        name = self.GUARDED.get(type(node.op))
        if name is None:
            return node
        call = ast.Call(func=ast.Name(name, ast.Load()), args=[node.left, node.right], keywords=[])
        return ast.fix_missing_locations(ast.copy_location(call, node))

    def visit_Call(self, node: ast.Call) -> Any:
        visited: Any = super().visit_Call(node)
        call = ast.Call(func=ast.Name("_checked_", ast.Load()), args=[visited], keywords=[])
        return ast.fix_missing_locations(ast.copy_location(call, node))

    def visit_FormattedValue(self, node: ast.FormattedValue) -> Any:
        spec = node.format_spec
        if spec is not None:
            parts = spec.values if isinstance(spec, ast.JoinedStr) else [spec]
            if not all(isinstance(p, ast.Constant) for p in parts):
                self.error(node, "f-string format specs must be literal in diagram code")
            else:
                texts = [str(p.value) for p in parts if isinstance(p, ast.Constant)]
                widths = [int(w) for text in texts for w in re.findall(r"\d+", text)]
                if any(w > MAX_FORMAT_WIDTH for w in widths):
                    self.error(node, f"f-string format widths above {MAX_FORMAT_WIDTH} are refused")
        return self.node_contents_visit(node)


def _fold(node: ast.AST) -> Any:
    """The value of a constant sub-expression, computed with the guards (LookupError: not constant)."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_fold(node.operand)
    if isinstance(node, (ast.Tuple, ast.List)):
        values = [_fold(e) for e in node.elts]
        return tuple(values) if isinstance(node, ast.Tuple) else values
    if isinstance(node, ast.BinOp):
        guard = {ast.Pow: _pow_, ast.Mult: _mul_, ast.LShift: _lshift_, ast.Add: _add_, ast.Mod: _mod_}.get(
            type(node.op)
        )
        if guard is not None:
            return guard(_fold(node.left), _fold(node.right))
    raise LookupError("not a constant")


def _constant_limits(tree: ast.AST) -> None:
    """Refuse at validation what would be refused at run time anyway: a constant too large result."""
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp):
            try:
                _fold(node)
            except LimitExceeded as exc:
                raise ScriptRejected(f"{exc.message} (line {node.lineno})") from None
            except Exception:  # not constant, or an ordinary error left to run time
                continue


_BUILTINS: dict[str, Any] = {**safe_builtins, **limited_builtins, **_EXTRA_BUILTINS}
_BUILTINS.update(pow=_pow_, sum=_bounded_sum)  # the same names, bounded

_GUARDS: dict[str, Any] = {
    "__builtins__": _BUILTINS,
    "_getattr_": _getattr_,
    "_getitem_": default_guarded_getitem,
    "_getiter_": _guarded_iter,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_unpack_sequence_": guarded_unpack_sequence,
    "_write_": full_write_guard,
    # bounded operators (BoundedOps rewrites ``**``, ``*``, ``<<``, ``+``, ``%`` and calls to these)
    "_pow_": _pow_,
    "_mul_": _mul_,
    "_add_": _add_,
    "_lshift_": _lshift_,
    "_mod_": _mod_,
    "_inplacevar_": _inplacevar_,
    "_checked_": _checked,
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
    compiled = (compile_restricted_eval if mode == "eval" else compile_restricted_exec)(source, policy=BoundedOps)
    if compiled.errors:
        raise ScriptRejected("; ".join(compiled.errors))
    _constant_limits(tree)


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
            result = (compile_restricted_eval if mode == "eval" else compile_restricted_exec)(source, policy=BoundedOps)
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
