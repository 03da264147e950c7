"""Bounded diagram code (issue 14): limits a pack cannot lift.

Every result of ``**``, ``*``, ``<<``, ``+``, ``%`` and of every call is checked before (or as soon
as) it is built; each command has a step, wall-clock and memory budget; constant cases are refused
at validation with file, line and element; a loop of gateways and script tasks stops with a clear
error instead of being left half-run.
"""

from __future__ import annotations

import datetime as dt
import time

import pytest

from govflow.engine.model.clock import ManualClock
from govflow.engine.model.errors import DiagramFailed, LimitExceeded
from govflow.engine.workflow import sandbox
from govflow.engine.workflow.bpmn import compile_diagrams
from govflow.engine.workflow.runtime import Runtime
from govflow.engine.workflow.sandbox import Limits, RestrictedEnvironment, ScriptRejected, budget, check_script
from tests.engine.test_sandbox import HEAD, gated, script_process, unvalidated


@pytest.fixture
def env() -> RestrictedEnvironment:
    return RestrictedEnvironment()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(dt.datetime(2026, 9, 28, 1, 0, tzinfo=dt.UTC))


@pytest.fixture
def small_limits():
    old = sandbox.set_limits(Limits(steps=120, seconds=1.0, memory=8 * 2**20))
    yield sandbox.limits()
    sandbox.set_limits(old)


#: refused before any big value is built, whatever the operands' source (task data here)
HUGE = [
    ("a ** b ** b", {"a": 10, "b": 10}),
    ("pow(a, b ** b)", {"a": 10, "b": 10}),
    ("s * a ** b", {"s": "a", "a": 10, "b": 10}),
    ("[0] * a ** 9", {"a": 10}),
    ("(0,) * a ** 9", {"a": 10}),
    ("a ** 9 * [0]", {"a": 10}),
    ("1 << a ** b", {"a": 10, "b": 10}),
    ("s.ljust(a ** 8)", {"s": "x", "a": 10}),
    ("s.rjust(a ** 8)", {"s": "x", "a": 10}),
    ("s.center(a ** 8)", {"s": "x", "a": 10}),
    ("s.zfill(a ** 8)", {"s": "1", "a": 10}),
    ("(s * 1000).expandtabs(a ** 4)", {"s": "\t", "a": 10}),
    ("(s * 1000).replace('', s * 1000)", {"s": "xy"}),
    ("s.join([s * 100000] * 100)", {"s": "x"}),
    ("sum([[0] * 100000] * 100, [])", {}),
    ("f % (a ** 7, 1)", {"f": "%0*d", "a": 10}),
    ("f % 1", {"f": "%100000000d"}),
    ("(s * 600000) + (s * 600000)", {"s": "x"}),
    ("s.encode().hex().encode().hex().encode().hex()", {"s": "x" * 200_000}),
    ("(s * 600000).translate({120: 'yy'})", {"s": "x"}),
]


@pytest.mark.parametrize("expression, data", HUGE)
def test_too_large_results_are_refused_quickly(env, expression, data):
    started = time.perf_counter()
    with pytest.raises(LimitExceeded, match="too large"):
        env.evaluate(expression, dict(data))
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    "script",
    [
        "n = 10\nn **= 10 ** 10",
        "s = 'ab'\ns *= 10 ** 9",
        "n = 1\nn <<= 10 ** 10",
        "s = 'ab'\nfor i in range(40):\n    s += s",
        "xs = [1]\nfor i in range(40):\n    xs.extend(xs)",
    ],
)
def test_augmented_assignments_and_growth_in_loops_are_refused(env, script):
    with pytest.raises(LimitExceeded, match="too large"):
        env.execute(script, {})


@pytest.mark.parametrize(
    "expression, expected",
    [
        ("2 ** 10 * 3", 3072),
        ("'ab' * 3", "ababab"),
        ("[0] * 3 + [1]", [0, 0, 0, 1]),
        ("1 << 8", 256),
        ("'%05d-%s' % (42, 'x')", "00042-x"),
        ("7 % 3", 1),
        ("f'{n:>5}|{n:.2f}'", "    3|3.00"),
        ("'x'.ljust(4, '.')", "x..."),
        ("', '.join(['a', 'b'])", "a, b"),
        ("'a-b'.replace('-', '+')", "a+b"),
        ("pow(2, 10)", 1024),
        ("pow(3, 4, 5)", 1),
        ("sum([1, 2, 3])", 6),
        ("sum([[1], [2]], [])", [1, 2]),
        ("2 ** 4000 > 0", True),
        ("1.5 * 2 + 0.5", 3.5),
    ],
)
def test_ordinary_arithmetic_is_unchanged(env, expression, expected):
    assert env.evaluate(expression, {"n": 3}) == expected


def test_list_extend_still_extends(env):
    context = {"xs": [1]}
    env.execute("xs.extend([2, 3])\nys = xs", context)
    assert context["ys"] == [1, 2, 3]


@pytest.mark.parametrize(
    "source, mode, reason",
    [
        ("10**10**10 > 0", "eval", "too large"),
        ("'a' * 10**10", "eval", "too large"),
        ("[0] * 10**9", "eval", "too large"),
        ("1 << 10**10", "eval", "too large"),
        ("x = (2 ** 64) ** 100", "exec", "too large"),
        ("'%0*d' % (10**7, 1)", "eval", "format field"),
        ("f'{x:>100000000}'", "eval", "format widths"),
        ("f'{x:>{n}}'", "eval", "format specs must be literal"),
    ],
)
def test_constant_cases_are_refused_at_validation(source, mode, reason):
    with pytest.raises(ScriptRejected, match=reason):
        check_script(source, mode=mode)


def test_validation_names_file_line_and_element(reference_pack):
    xml = gated("10**10**10 &gt; 0")
    _, issues = compile_diagrams({"processes/gated.bpmn": xml.encode()}, forms=reference_pack.forms, stages=[])
    [issue] = [i for i in issues if "too large" in i.message]
    assert issue.file == "processes/gated.bpmn"
    assert issue.element == "hit_flow"
    assert issue.line == xml.count("\n", 0, xml.index("10**10**10")) + 1


# -- the budget of one command -------------------------------------------------------------------
LOOP = (
    HEAD
    + """
  <bpmn:process id="loop" isExecutable="true">
    <bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="j" />
    <bpmn:exclusiveGateway id="j"><bpmn:incoming>f1</bpmn:incoming><bpmn:incoming>back</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="f2" sourceRef="j" targetRef="count" />
    <bpmn:scriptTask id="count"><bpmn:incoming>f2</bpmn:incoming><bpmn:outgoing>f3</bpmn:outgoing><bpmn:script>n = n + 1</bpmn:script></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f3" sourceRef="count" targetRef="gw" />
    <bpmn:exclusiveGateway id="gw" default="out"><bpmn:incoming>f3</bpmn:incoming><bpmn:outgoing>back</bpmn:outgoing><bpmn:outgoing>out</bpmn:outgoing></bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="back" sourceRef="gw" targetRef="j"><bpmn:conditionExpression>n &lt; limit</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="out" sourceRef="gw" targetRef="e" />
    <bpmn:endEvent id="e"><bpmn:incoming>out</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>"""
)


def test_a_loop_without_a_wait_state_stops_at_the_step_budget(clock, small_limits):
    runtime = Runtime(unvalidated(LOOP, "loop"))
    started = time.perf_counter()
    with pytest.raises(LimitExceeded, match="more than 120 engine steps") as caught:
        runtime.start("loop", {"n": 0, "limit": 10**6}, clock)
    assert caught.value.context["element"] in {"j", "count", "gw"}
    assert time.perf_counter() - started < 5


def test_a_bounded_loop_within_the_budget_completes(clock, small_limits):
    runtime = Runtime(unvalidated(LOOP, "loop"))
    workflow = runtime.start("loop", {"n": 0, "limit": 10}, clock)
    assert workflow.completed and workflow.data["n"] == 10


def test_a_loop_deeper_than_spiff_can_walk_is_a_failure_not_a_half_run_case(clock):
    """Spiff's task iterator gives up silently deep in a long loop; the engine notices."""
    old = sandbox.set_limits(Limits(steps=10**6, seconds=120, memory=2**30))
    try:
        runtime = Runtime(unvalidated(LOOP, "loop"))
        with pytest.raises(DiagramFailed, match=r"before a wait state|without completing"):
            runtime.start("loop", {"n": 0, "limit": 10**6}, clock)
    finally:
        sandbox.set_limits(old)


def test_a_slow_script_stops_at_the_time_budget_even_if_it_catches_the_error(clock):
    old = sandbox.set_limits(Limits(steps=120, seconds=1.0, memory=2**30))  # the time runs out first
    script = (
        "t = 0\nfor a in range(999):\n    for b in range(999):\n        for c in range(999):\n"
        "            try:\n                t = t - 1\n            except Exception:\n                t = 0"
    )
    runtime = Runtime(unvalidated(script_process(script), "scripted"))
    started = time.perf_counter()
    try:
        with pytest.raises(LimitExceeded, match=r"longer than the 1 s") as caught:
            runtime.start("scripted", {}, clock)
    finally:
        sandbox.set_limits(old)
    assert caught.value.context["element"] == "run"
    assert time.perf_counter() - started < 3


def test_building_too_much_stops_at_the_memory_budget(clock, small_limits):
    script = "xs = []\nfor a in range(999):\n    xs.append('x' * 100000)"
    runtime = Runtime(unvalidated(script_process(script), "scripted"))
    with pytest.raises(LimitExceeded, match="MiB") as caught:
        runtime.start("scripted", {}, clock)
    assert caught.value.context["element"] == "run"


def test_the_budget_is_one_per_command_and_nested_calls_share_it(small_limits):
    with budget() as outer:
        with budget() as inner:
            assert inner is outer
    with budget() as other:
        assert other is not outer and other.steps == 0


def test_limits_come_from_the_operators_environment():
    assert Limits.from_environ(
        {"GOVFLOW_DIAGRAM_STEPS": "50", "GOVFLOW_DIAGRAM_SECONDS": "0.5", "GOVFLOW_DIAGRAM_MEMORY_MB": "16"}
    ) == Limits(steps=50, seconds=0.5, memory=16 * 2**20)
    assert Limits.from_environ({}) == Limits()


def test_a_runtime_failure_names_the_element(clock):
    runtime = Runtime(unvalidated(script_process("x = no_such_function(1)"), "scripted"))
    with pytest.raises(DiagramFailed, match=r"at run: .*no_such_function") as caught:
        runtime.start("scripted", {}, clock)
    assert caught.value.context == {"element": "run"}


def test_long_running_diagram_code_yields_the_interpreter_and_short_code_never_does(clock, monkeypatch):
    """Past YIELD_AFTER, diagram code sleeps (GIL released) most of the time, so the other requests
    of the API process are served meanwhile (bench/bench_hostile.py measures the effect)."""
    naps: list[tuple[float, float]] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        naps.append((time.monotonic(), seconds))
        real_sleep(seconds)

    monkeypatch.setattr(sandbox.time, "sleep", sleep)
    old = sandbox.set_limits(Limits(steps=10**6, seconds=0.5, memory=2**30))
    try:
        short = Runtime(unvalidated(script_process("t = sum([a * a for a in range(99)])"), "scripted"))
        assert short.start("scripted", {}, clock).completed and naps == []
        # nine million steps of a comprehension that keeps almost nothing: longer than 0.5 s on any machine
        slow = Runtime(
            unvalidated(
                script_process("t = len([a for a in range(999) for b in range(999) for c in range(9) if c > 8])"),
                "scripted",
            )
        )
        started = time.monotonic()
        with pytest.raises(LimitExceeded, match=r"longer than the 0\.5 s"):
            slow.start("scripted", {}, clock)
    finally:
        sandbox.set_limits(old)
    assert naps and naps[0][0] - started >= sandbox.YIELD_AFTER
    assert {seconds for _, seconds in naps} == {sandbox.YIELD_FOR}
    # about 90 naps on an idle machine (one per YIELD_EVERY + YIELD_FOR); fewer when the machine
    # is loaded (the code's own time stretches), never none
    assert len(naps) >= 10, naps
