"""The sandbox at RUN time: escapes raise, ordinary expressions and scripts work, and a
workflow started or restored by the Runtime always runs through it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from SpiffWorkflow.spiff.parser import SpiffBpmnParser

from govflow.engine.model.clock import ManualClock
from govflow.engine.model.errors import EngineFault
from govflow.engine.workflow import sandbox
from govflow.engine.workflow.bpmn import CompiledDiagrams
from govflow.engine.workflow.runtime import Runtime
from govflow.engine.workflow.sandbox import RestrictedEnvironment, SandboxedScriptEngine, ScriptRejected, check_script

ESCAPES = [
    "__import__('os')",
    "open('/etc/passwd').read()",
    "().__class__.__bases__[0].__subclasses__()",
    "getattr(x, '__class__')",
    "(y for y in ()).gi_frame.f_back.f_globals",
    "type(1)",
    "eval('1')",
    "exec('x=1')",
    "globals()",
    "vars()",
    "'{0.__class__}'.format(1)",
    "'{0.__class__}'.format_map({})",
    "range(10**9)",
    "compile('1', 'f', 'eval')",
    "__builtins__",
    "x.__class__",
]


@pytest.fixture
def env() -> RestrictedEnvironment:
    return RestrictedEnvironment({"double": lambda x: x * 2, "greet": lambda name, punct="!": f"hi {name}{punct}"})


@pytest.mark.parametrize("expression", ESCAPES)
def test_escape_expression_never_evaluates(env, expression):
    with pytest.raises(Exception) as info:
        env.evaluate(expression, {"x": 1})
    assert isinstance(info.value, (ScriptRejected, NameError, NotImplementedError, ValueError, TypeError))
    # asking twice (cached code path) must fail the same way
    with pytest.raises(type(info.value)):
        env.evaluate(expression, {"x": 1})


@pytest.mark.parametrize("expression", ESCAPES)
def test_escape_script_never_executes(env, expression):
    context = {"x": 1}
    with pytest.raises(Exception):  # noqa: B017 (any refusal will do; what matters is that nothing ran)
        env.execute(f"result = {expression}", context)
    assert "result" not in context


def test_escape_via_context_object_attributes(env):
    # objects reachable from task data expose no frames or dunders either
    with pytest.raises(ScriptRejected):
        env.evaluate("f.__globals__", {"f": json.dumps})
    with pytest.raises(ScriptRejected):
        env.execute("g = (i for i in [1])\nframe = g.gi_frame.f_back.f_globals", {})


@pytest.mark.parametrize(
    "expression, context, expected",
    [
        ("owner_unit is not None", {"owner_unit": "gulou.dongjie"}, True),
        ("owner_unit is not None", {"owner_unit": None}, False),
        ("review_approved is False", {"review_approved": False}, True),
        ("review_approved is False", {"review_approved": None}, False),
        ("(a + b) * 3 - a / 2", {"a": 4, "b": 2}, 16.0),
        (
            "case['matter'] == 'road.pothole' and tags[1] == 'b'",
            {"case": {"matter": "road.pothole"}, "tags": ["a", "b"]},
            True,
        ),
        ("[i * i for i in range(4)]", {}, [0, 1, 4, 9]),
        ("{k: v for k, v in d.items() if v}", {"d": {"a": 1, "b": 0}}, {"a": 1}),
        ("sum(x for x in xs) + len(xs) + max(xs)", {"xs": [1, 2, 3]}, 12),
        ("sorted(names)[0].upper() + str(len({n for n in names}))", {"names": ["b", "a", "b"]}, "A2"),
        ('"PT10M"', {}, "PT10M"),
        ("matter in ('road.pothole', 'road.manhole_cover')", {"matter": "road.pothole"}, True),
    ],
)
def test_ordinary_expressions_still_work(env, expression, context, expected):
    assert env.evaluate(expression, context) == expected


def test_external_context_is_visible_but_task_data_wins(env):
    assert env.evaluate("a + b", {"a": 1}, {"a": 100, "b": 10}) == 11


def test_execute_writes_assignments_back_and_removes_deleted(env):
    context = {"x": 2, "gone": "bye", "keep": [1]}
    assert (
        env.execute(
            "y = x * 10\nz = [i for i in range(x)]\nkeep.append(2)\ndel gone\nfor a, b in [(1, 2)]:\n    w = a + b",
            context,
        )
        is True
    )
    assert context == {"x": 2, "keep": [1, 2], "y": 20, "z": [0, 1], "a": 1, "b": 2, "w": 3}
    assert not any(k.startswith("_") for k in context)


def test_execute_does_not_write_back_external_context(env):
    context = {"x": 1}
    env.execute("y = x + ext", context, {"ext": 5})
    assert context == {"x": 1, "y": 6}


def test_execute_refuses_attribute_writes_on_task_data(env):
    class Holder:
        value = 1

    with pytest.raises(TypeError):
        env.execute("h.value = 2", {"h": Holder()})
    assert Holder.value == 1


def test_call_service_by_name(env):
    params = {"x": {"value": 21, "type": "int"}}
    assert json.loads(env.call_service({}, operation_name="double", operation_params=params)) == 42
    assert (
        json.loads(env.call_service({}, operation_name="greet", operation_params={"name": {"value": "li"}})) == "hi li!"
    )


def test_call_service_refuses_unknown_name(env):
    with pytest.raises(LookupError, match=r"os\.system"):
        env.call_service({}, operation_name="os.system", operation_params={"command": {"value": "id"}})


def test_engine_validate_uses_check_script():
    engine = SandboxedScriptEngine()
    engine.validate("a is not None")
    with pytest.raises(ScriptRejected):
        engine.validate("__import__('os')")


# -- what check_script refuses, and why ------------------------------------------------------
@pytest.mark.parametrize(
    "source, reason",
    [
        ("x = 1\nimport os", "import statements are not allowed in diagram scripts (line 2)"),
        ("from os import path", "import statements are not allowed in diagram scripts (line 1)"),
        ("while x:\n    pass", "while loops are not allowed in diagram scripts (use a service task) (line 1)"),
        ("def f():\n    pass", "function definitions are not allowed in diagram scripts (use a service task) (line 1)"),
        ("async def f():\n    pass", "function definitions are not allowed in diagram scripts (line 1)"),
        ("y = 2\nclass A:\n    pass", "class definitions are not allowed in diagram scripts (line 2)"),
        ("f = lambda: 1", "lambdas are not allowed in diagram scripts (line 1)"),
        ("global x\nx = 1", "global statements are not allowed in diagram scripts (line 1)"),
        ("nonlocal x", "nonlocal statements are not allowed in diagram scripts (line 1)"),
    ],
)
def test_check_script_refuses_each_forbidden_construct_with_its_reason(source, reason):
    with pytest.raises(ScriptRejected) as info:
        check_script(source)
    assert str(info.value) == reason


@pytest.mark.parametrize("expression", ["lambda: 1", "[f for f in [lambda: 1]]"])
def test_check_script_refuses_lambdas_in_expressions(expression):
    with pytest.raises(ScriptRejected, match=r"^lambdas are not allowed in diagram scripts"):
        check_script(expression, mode="eval")


def test_check_script_accepts_ordinary_scripts_and_expressions():
    check_script("y = x + 1\nfor a in items:\n    total = a\nif y:\n    del y")
    check_script("x == 1 and y in ('a', 'b')", mode="eval")


def test_scripts_and_expressions_are_checked_in_their_own_mode():
    check_script("y = 1")  # a script by default
    with pytest.raises(ScriptRejected, match=r"^syntax error: invalid syntax \(line 1\)$"):
        check_script("y = 1", mode="eval")  # not an expression


def test_the_length_limit_is_4000_characters():
    check_script("x" * 4000, mode="eval")  # exactly at the limit
    with pytest.raises(ScriptRejected, match=r"^script longer than 4000 characters$"):
        check_script("x" * 4001, mode="eval")
    with pytest.raises(ScriptRejected, match=r"^script longer than 4000 characters$"):
        check_script("#" * 4001)  # counted before anything is parsed


@pytest.mark.parametrize("source, line", [("a +", 1), ("x = 1\ny = (", 2), ("if x:\nnope", 2)])
def test_a_syntax_error_is_a_refusal_with_its_line(source, line):
    with pytest.raises(ScriptRejected) as info:
        check_script(source)
    assert not isinstance(info.value, SyntaxError)
    assert str(info.value).startswith("syntax error: ") and str(info.value).endswith(f"(line {line})")
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_restricted_python_refusals_are_all_reported():
    with pytest.raises(ScriptRejected) as info:
        check_script("a._x + b._y", mode="eval")
    assert str(info.value) == (
        'Line 1: "_x" is an invalid attribute name because it starts with "_".; '
        'Line 1: "_y" is an invalid attribute name because it starts with "_".'
    )


def test_the_environment_checks_before_it_compiles(env):
    for expression in ("lambda: 1", "x._y", "y = 1"):
        with pytest.raises(ScriptRejected):
            env.evaluate(expression, {"x": 1})
    for script in ("while True:\n    pass", "f = lambda: 1", "import os"):
        with pytest.raises(ScriptRejected):
            env.execute(script, {})


def test_engine_validate_checks_expressions_not_scripts():
    with pytest.raises(ScriptRejected, match=r"^syntax error"):
        SandboxedScriptEngine().validate("x = 1")


# -- the builtins and guards ----------------------------------------------------------------------
#: every name a diagram can use without task data; a change here is a security review
BUILTINS = {
    *("ArithmeticError", "AssertionError", "AttributeError", "BaseException", "BufferError", "BytesWarning"),
    *("DeprecationWarning", "EOFError", "Ellipsis", "EnvironmentError", "Exception", "False", "FloatingPointError"),
    *("FutureWarning", "GeneratorExit", "IOError", "ImportError", "ImportWarning", "IndentationError", "IndexError"),
    *("KeyError", "KeyboardInterrupt", "LookupError", "MemoryError", "NameError", "None", "NotImplementedError"),
    *("OSError", "OverflowError", "PendingDeprecationWarning", "ReferenceError", "RuntimeError", "RuntimeWarning"),
    *("StopIteration", "SyntaxError", "SyntaxWarning", "SystemError", "SystemExit", "TabError", "True", "TypeError"),
    *("UnboundLocalError", "UnicodeDecodeError", "UnicodeEncodeError", "UnicodeError", "UnicodeTranslateError"),
    *("UnicodeWarning", "UserWarning", "ValueError", "Warning", "ZeroDivisionError", "__build_class__", "_getattr_"),
    *("abs", "all", "any", "bool", "callable", "chr", "complex", "delattr", "dict", "divmod", "enumerate", "filter"),
    *("float", "hash", "hex", "id", "int", "isinstance", "issubclass", "len", "list", "map", "max", "min", "oct"),
    *("ord", "pow", "range", "repr", "reversed", "round", "setattr", "slice", "sorted", "str", "sum", "tuple"),
}


def test_the_builtins_are_exactly_the_reviewed_set():
    assert set(sandbox._BUILTINS) == BUILTINS
    for name in ("eval", "exec", "open", "compile", "globals", "vars", "getattr", "type", "__import__", "input"):
        assert name not in sandbox._BUILTINS


def test_rules_describe_the_sandbox_for_diagram_authors():
    assert sandbox.rules() == {
        "max_source": 4000,
        "refused": [
            "class definitions are not allowed in diagram scripts",
            "function definitions are not allowed in diagram scripts",
            "function definitions are not allowed in diagram scripts (use a service task)",
            "global statements are not allowed in diagram scripts",
            "import statements are not allowed in diagram scripts",
            "lambdas are not allowed in diagram scripts",
            "nonlocal statements are not allowed in diagram scripts",
            "while loops are not allowed in diagram scripts (use a service task)",
        ],
        "builtins": sorted(name for name in BUILTINS if name[0].islower()),
        "private_names": "names and attributes starting with an underscore are refused",
    }
    assert "len" in sandbox.rules()["builtins"] and "_getattr_" not in sandbox.rules()["builtins"]


@pytest.mark.parametrize(
    "expression, expected",
    [
        ("dict(a=1)", {"a": 1}),
        ("list((1, 2))", [1, 2]),
        ("list('ab')", ["a", "b"]),  # the plain list, not RestrictedPython's limited_list (refuses strings)
        ("min(xs) + max(xs)", 4),
        ("sum(xs)", 6),
        ("any(x > 2 for x in xs) and not all(x > 2 for x in xs)", True),
        ("list(enumerate('ab'))", [(0, "a"), (1, "b")]),
        ("sorted(xs, reverse=True)", [3, 2, 1]),
        ("list(reversed(xs))", [2, 3, 1]),
        ("list(map(str, xs))", ["1", "3", "2"]),
        ("list(filter(None, [0, 1, 2]))", [1, 2]),
        ("tuple(range(3))", (0, 1, 2)),
    ],
)
def test_each_added_builtin_works(env, expression, expected):
    assert env.evaluate(expression, {"xs": [1, 3, 2]}) == expected


def test_range_stays_capped(env):
    with pytest.raises(ValueError):
        env.evaluate("range(10**9)", {})
    with pytest.raises(ValueError):
        env.execute("n = list(range(10**9))", {})


def test_task_data_cannot_replace_a_guard_or_the_builtins(env):
    class Holder:
        value = 1

    hostile = {
        "__builtins__": {"eval": eval, "open": open},
        "_getattr_": getattr,
        "_write_": lambda ob: ob,
        "h": Holder(),
    }
    with pytest.raises(NameError, match="open"):
        env.evaluate("open", dict(hostile))
    with pytest.raises(NameError, match="open"):
        env.execute("x = open", dict(hostile))
    with pytest.raises(TypeError):
        env.execute("h.value = 2", dict(hostile))
    assert Holder.value == 1
    assert env.evaluate("len('ab')", dict(hostile)) == 2  # the sandbox's builtins, not the task data's


def test_scripts_unpack_and_write_items_through_the_guards(env):
    context = {"pair": [1, 2], "d": {}}
    env.execute("a, b = pair\nd['k'] = a + b", context)
    assert context == {"pair": [1, 2], "d": {"k": 3}, "a": 1, "b": 2}


def test_the_same_text_as_script_and_as_expression(env):
    context = {"total": 5}
    assert env.execute("total", context) is True  # an expression statement: compiled as a script
    assert env.evaluate("total", context) == 5  # and as an expression: another compiled form


def test_compiled_code_is_cached_and_the_cache_is_bounded(env, monkeypatch):
    checked: list[str] = []
    real = sandbox.check_script
    monkeypatch.setattr(
        sandbox, "check_script", lambda source, mode="exec": (checked.append(source), real(source, mode=mode))
    )
    for expression in ("a", "a", "b", "a", "b"):
        env.evaluate(expression, {"a": 1, "b": 2})
    assert checked == ["a", "b"]
    sizes = set()
    for i in range(4200):  # more distinct expressions than the cache keeps
        env.evaluate(f"a + {i}", {"a": 1})
        sizes.add(len(env._eval_cache))
    assert max(sizes) == 4097  # 4,097 compiled forms at most, then it starts again
    assert min(sizes) == 1


# -- the environment: evaluation scope and task data ---------------------------------------------
def test_task_data_never_leaks_into_the_next_evaluation(env):
    assert env.evaluate("secret", {"secret": 1}) == 1
    with pytest.raises(NameError):
        env.evaluate("secret", {})
    env.execute("y = secret", {"secret": 1})
    with pytest.raises(NameError):
        env.execute("y = secret", {})


def test_engine_functions_are_callable_but_never_written_back():
    functions = {"twice": lambda x: 2 * x}
    env = RestrictedEnvironment(functions=functions)
    functions["later"] = lambda: "added after"  # the environment keeps its own copy
    assert env.evaluate("twice(a)", {"a": 2}) == 4
    context = {"a": 2}
    env.execute("b = twice(a)", context)
    assert context == {"a": 2, "b": 4}
    with pytest.raises(NameError):
        env.evaluate("later()", {})


def test_callables_made_by_a_script_are_not_written_back(env):
    context = {"xs": [2, 1]}
    env.execute("f = sorted\nys = f(xs)", context)
    assert context == {"xs": [2, 1], "ys": [1, 2]}


def test_services_are_copied_at_construction():
    services = {"ping": lambda: "pong"}
    env = RestrictedEnvironment(services)
    services["late"] = lambda: "added after"
    assert json.loads(env.call_service({}, operation_name="ping")) == "pong"
    with pytest.raises(LookupError, match="'late'"):
        env.call_service({}, operation_name="late")
    with pytest.raises(LookupError, match="no service function named '' is registered"):
        env.call_service({})


# -- the sandbox inside the Runtime --------------------------------------------------------
HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="t">'


def gated(condition: str) -> str:
    """start -> user task 'ask' -> gateway(condition ? hit : miss); validation is bypassed."""
    return (
        HEAD
        + f"""
  <bpmn:process id="gated" isExecutable="true">
    <bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="ask" />
    <bpmn:userTask id="ask"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:sequenceFlow id="f2" sourceRef="ask" targetRef="gw" />
    <bpmn:exclusiveGateway id="gw" default="miss_flow"><bpmn:incoming>f2</bpmn:incoming>
      <bpmn:outgoing>hit_flow</bpmn:outgoing><bpmn:outgoing>miss_flow</bpmn:outgoing></bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="hit_flow" sourceRef="gw" targetRef="hit"><bpmn:conditionExpression>{condition}</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="miss_flow" sourceRef="gw" targetRef="miss" />
    <bpmn:endEvent id="hit"><bpmn:incoming>hit_flow</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="miss"><bpmn:incoming>miss_flow</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>"""
    )


def unvalidated(xml: str, pid: str) -> CompiledDiagrams:
    parser = SpiffBpmnParser()
    parser.add_bpmn_str(xml.encode(), filename=f"{pid}.bpmn")
    return CompiledDiagrams({pid: parser.get_spec(pid)}, {pid: parser.get_subprocess_specs(pid)})


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(dt.datetime(2026, 9, 28, 1, 0, tzinfo=dt.UTC))


def hostile_conditions(target: Path) -> list[str]:
    return [
        f"__import__('os').system('touch {target}') == 0",
        f"open('{target}', 'w') is not None",
        f"[c for c in ().__class__.__bases__[0].__subclasses__() if c.__name__ == 'Popen'][0](['touch', '{target}']) is not None",
    ]


def test_benign_condition_runs_in_the_runtime(clock):
    runtime = Runtime(unvalidated(gated("flag is True"), "gated"))
    workflow = runtime.start("gated", {"flag": True}, clock)
    runtime.complete(workflow, str(runtime.open_tasks(workflow)[0].id), {}, clock)
    assert workflow.is_completed()
    assert [
        t.task_spec.name for t in workflow.get_tasks() if t.task_spec.name in ("hit", "miss") and t.state == 64
    ] == ["hit"]


@pytest.mark.parametrize("index", range(3))
def test_hostile_condition_faults_after_restore_and_does_nothing(tmp_path, clock, index):
    target = tmp_path / "pwned"
    runtime = Runtime(unvalidated(gated(hostile_conditions(target)[index]), "gated"))
    workflow = runtime.start("gated", {}, clock)
    assert isinstance(workflow.script_engine, SandboxedScriptEngine)
    restored = runtime.load(runtime.dump(workflow), "gated")
    assert isinstance(restored.script_engine, SandboxedScriptEngine)
    assert isinstance(restored.script_engine.environment, RestrictedEnvironment)
    [task] = runtime.open_tasks(restored)
    with pytest.raises(EngineFault):
        runtime.complete(restored, str(task.id), {}, clock)
    assert not target.exists()
    assert not restored.is_completed()


def test_hostile_condition_right_after_start_faults(tmp_path, clock):
    target = tmp_path / "pwned"
    xml = (
        gated(hostile_conditions(target)[0])
        .replace('targetRef="ask"', 'targetRef="gw"')
        .replace("<bpmn:incoming>f2</bpmn:incoming>", "<bpmn:incoming>f1</bpmn:incoming>")
    )
    xml = xml.replace(
        '<bpmn:userTask id="ask"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>', ""
    )
    xml = xml.replace('<bpmn:sequenceFlow id="f2" sourceRef="ask" targetRef="gw" />', "")
    runtime = Runtime(unvalidated(xml, "gated"))
    with pytest.raises(EngineFault):
        runtime.start("gated", {}, clock)
    assert not target.exists()


def script_process(script: str) -> str:
    return (
        HEAD
        + f"""
  <bpmn:process id="scripted" isExecutable="true">
    <bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="run" />
    <bpmn:scriptTask id="run"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing><bpmn:script>{script}</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f2" sourceRef="run" targetRef="e" />
    <bpmn:endEvent id="e"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>"""
    )


def test_open_in_a_validated_script_fails_at_run_time(tmp_path, clock, reference_pack):
    from govflow.engine.workflow.bpmn import compile_diagrams

    target = tmp_path / "written"
    diagrams, issues = compile_diagrams(
        {"processes/s.bpmn": script_process(f"f = open('{target}', 'w')").encode()},
        forms=reference_pack.forms,
        stages=[],
    )
    assert issues == []  # open is only a name statically ...
    with pytest.raises(EngineFault, match="open"):  # ... and not a builtin at run time
        Runtime(diagrams).start("scripted", {}, clock)
    assert not target.exists()


def test_script_task_results_land_in_task_data(clock):
    runtime = Runtime(unvalidated(script_process("total = sum([a, b])\ndel a"), "scripted"))
    workflow = runtime.start("scripted", {"a": 1, "b": 2}, clock)
    assert workflow.is_completed()
    assert workflow.data == {"b": 2, "total": 3}


def service_process(operation: str) -> str:
    return (
        HEAD
        + f"""
  <bpmn:process id="svc" isExecutable="true">
    <bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="call" />
    <bpmn:serviceTask id="call"><bpmn:extensionElements>
      <spiffworkflow:serviceTaskOperator id="{operation}" resultVariable="out"><spiffworkflow:parameters>
        <spiffworkflow:parameter id="x" type="int" value="n + 1" />
      </spiffworkflow:parameters></spiffworkflow:serviceTaskOperator></bpmn:extensionElements>
      <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:serviceTask>
    <bpmn:sequenceFlow id="f2" sourceRef="call" targetRef="e" />
    <bpmn:endEvent id="e"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>"""
    )


def test_service_task_calls_registered_function(clock):
    runtime = Runtime(unvalidated(service_process("double"), "svc"), {"double": lambda x: x * 2})
    workflow = runtime.start("svc", {"n": 20}, clock)
    assert workflow.is_completed() and workflow.data["out"] == 42


def test_service_task_with_unknown_function_faults(clock):
    runtime = Runtime(unvalidated(service_process("os.system"), "svc"), {"double": lambda x: x * 2})
    with pytest.raises(EngineFault):
        runtime.start("svc", {"n": 20}, clock)
