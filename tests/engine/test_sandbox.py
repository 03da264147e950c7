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
from govflow.engine.workflow.bpmn import CompiledDiagrams
from govflow.engine.workflow.runtime import Runtime
from govflow.engine.workflow.sandbox import RestrictedEnvironment, SandboxedScriptEngine, ScriptRejected

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
