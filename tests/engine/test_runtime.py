"""Runtime over the reference process: start, complete, signal, persist without the spec,
and timers read from the injected clock."""

from __future__ import annotations

import datetime as dt
import json
import uuid
import zlib

import pytest
from SpiffWorkflow.spiff.parser import SpiffBpmnParser
from SpiffWorkflow.util.task import TaskState

from govflow.engine.model.clock import ManualClock, bound
from govflow.engine.model.errors import EngineFault, InvalidTransition, NotFound
from govflow.engine.workflow import runtime as runtime_module
from govflow.engine.workflow.bpmn import CompiledDiagrams
from govflow.engine.workflow.runtime import Runtime
from govflow.engine.workflow.sandbox import SandboxedScriptEngine
from govflow.engine.workflow.spiff_clock import install_spiff_clock

PID = "frontline_disposal"
UTC = dt.UTC


def case_data(**overrides):
    data = dict(
        case_id="c-1",
        district="gulou",
        owner_unit="gulou.dongjie",
        matter="road.pothole",
        tier="simple",
        review_approved=None,
    )
    data.update(overrides)
    return data


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(dt.datetime(2026, 9, 28, 1, 0, tzinfo=UTC))


@pytest.fixture
def runtime(reference_pack) -> Runtime:
    return reference_pack.runtime


def open_names(runtime, workflow) -> list[str]:
    return sorted(t.task_spec.name for t in runtime.open_tasks(workflow))


def complete_named(runtime, workflow, name, clock, **data):
    [task] = [t for t in runtime.open_tasks(workflow) if t.task_spec.name == name]
    return runtime.complete(workflow, str(task.id), data, clock)


def finished(workflow) -> set[str]:
    return {t.task_spec.name for t in workflow.get_tasks(state=TaskState.COMPLETED)}


def test_start_routed_case_opens_sign_for(runtime, clock):
    workflow = runtime.start(PID, case_data(), clock)
    assert open_names(runtime, workflow) == ["sign_for"]
    [task] = runtime.open_tasks(workflow)
    assert task.data["owner_unit"] == "gulou.dongjie" and task.data["case_id"] == "c-1"
    assert isinstance(workflow.script_engine, SandboxedScriptEngine)


def test_start_unroutable_case_goes_to_command_centre(runtime, clock):
    workflow = runtime.start(PID, case_data(owner_unit=None), clock)
    assert open_names(runtime, workflow) == ["dispatch"]
    complete_named(runtime, workflow, "dispatch", clock, owner_unit="gulou.gudong")
    assert open_names(runtime, workflow) == ["sign_for"]


def test_start_unknown_process_is_not_found(runtime, clock):
    with pytest.raises(NotFound):
        runtime.start("no_such_process", case_data(), clock)


def test_dump_load_round_trip_keeps_open_tasks_and_data(runtime, clock):
    workflow = runtime.start(PID, case_data(), clock)
    complete_named(runtime, workflow, "sign_for", clock, note="on my way")
    before = {str(t.id): (t.task_spec.name, dict(t.data)) for t in runtime.open_tasks(workflow)}
    restored = runtime.load(runtime.dump(workflow), PID)
    after = {str(t.id): (t.task_spec.name, dict(t.data)) for t in runtime.open_tasks(restored)}
    assert after == before and [name for name, _ in after.values()] == ["handle"]
    assert after[next(iter(after))][1]["note"] == "on my way"
    assert isinstance(restored.script_engine, SandboxedScriptEngine)
    # the restored case carries on to the end
    complete_named(runtime, restored, "handle", clock, result="filled")
    complete_named(runtime, restored, "review", clock, review_approved=True)
    complete_named(runtime, restored, "evaluate", clock, satisfaction=5)
    assert restored.is_completed() and "case_closed" in finished(restored)


def test_dumped_state_has_no_spec(runtime, clock):
    workflow = runtime.start(PID, case_data(), clock)
    raw = zlib.decompress(runtime.dump(workflow))
    state = json.loads(raw)
    assert state["format"] == 1 and state["spec_name"] == PID
    assert "spec" not in state and "subprocess_specs" not in state
    text = raw.decode()
    assert "task_specs" not in text
    for spec_only in ("owner_unit is not None", "review_approved is True", "Front-line disposal", "withdrawn_signal"):
        assert spec_only not in text
    for sub in state["subprocesses"].values():
        assert sub["spec"] == "intake"  # a subprocess names its spec; it does not embed it
        assert "task_specs" not in json.dumps(sub)


def test_open_case_blob_is_small(runtime, clock):
    workflow = runtime.start(PID, case_data(), clock)
    assert len(runtime.dump(workflow)) < 4096
    complete_named(runtime, workflow, "sign_for", clock)
    assert len(runtime.dump(workflow)) < 4096


def test_load_without_spec_of_that_process_is_an_engine_fault(runtime, clock):
    blob = runtime.dump(runtime.start(PID, case_data(), clock))
    with pytest.raises(EngineFault, match="of process 'another_process', which the pack does not have"):
        runtime.load(blob, "another_process")


# -- state formats --------------------------------------------------------------------------
def _format_0(blob: bytes) -> bytes:
    """The blob as a (hypothetical) format-0 engine wrote it: tasks as a list, not keyed by id."""
    state = json.loads(zlib.decompress(blob))

    def listed(workflow: dict) -> None:
        workflow["tasks"] = list(workflow["tasks"].values())

    listed(state)
    for sub in state["subprocesses"].values():
        listed(sub)
    state["format"] = 0
    return zlib.compress(json.dumps(state).encode())


def _keyed_by_id(state: dict) -> None:
    """The format 0 -> 1 migration: tasks keyed by their id again."""
    for workflow in (state, *state["subprocesses"].values()):
        workflow["tasks"] = {task["id"]: task for task in workflow["tasks"]}


def test_an_older_state_format_is_upgraded_on_load_by_its_migration(runtime, clock, monkeypatch):
    workflow = runtime.start(PID, case_data(), clock)
    complete_named(runtime, workflow, "sign_for", clock, note="on my way")
    old = _format_0(runtime.dump(workflow))
    applied = []

    def upgrade_0(state: dict) -> None:
        applied.append(0)
        _keyed_by_id(state)

    monkeypatch.setattr(runtime_module, "_MIGRATIONS", {0: upgrade_0})
    restored = runtime.load(old, PID)
    assert applied == [0]
    assert [(t.id, t.task_spec.name) for t in runtime.open_tasks(restored)] == [
        (t.id, t.task_spec.name) for t in runtime.open_tasks(workflow)
    ]
    assert runtime.open_tasks(restored)[0].data["note"] == "on my way"
    assert json.loads(zlib.decompress(runtime.dump(restored)))["format"] == runtime_module.STATE_FORMAT
    complete_named(runtime, restored, "handle", clock, result="filled")  # and it carries on
    assert open_names(runtime, restored) == ["review"]


def test_state_format_migrations_run_in_order_up_to_the_current_format(runtime, clock, monkeypatch):
    old = _format_0(runtime.dump(runtime.start(PID, case_data(), clock)))
    applied = []

    def upgrade_0(state: dict) -> None:
        applied.append(0)
        _keyed_by_id(state)

    def upgrade_1(state: dict) -> None:
        applied.append(1)
        assert isinstance(state["tasks"], dict)  # format 0 -> 1 ran first

    monkeypatch.setattr(runtime_module, "STATE_FORMAT", 2)
    monkeypatch.setattr(runtime_module, "_MIGRATIONS", {1: upgrade_1, 0: upgrade_0})
    restored = runtime.load(old, PID)
    assert applied == [0, 1]
    current = runtime.dump(restored)
    assert json.loads(zlib.decompress(current))["format"] == 2
    applied.clear()
    assert open_names(runtime, runtime.load(current, PID)) == ["sign_for"]
    assert applied == []  # a current state needs no migration


def test_an_older_state_format_without_its_migration_is_refused(runtime, clock):
    old = _format_0(runtime.dump(runtime.start(PID, case_data(), clock)))
    with pytest.raises(EngineFault, match="has format 0, and no migration upgrades it"):
        runtime.load(old, PID)


@pytest.mark.parametrize("fmt", [2, 99, "1"])
def test_a_state_of_an_unknown_format_is_refused(runtime, clock, fmt):
    state = json.loads(zlib.decompress(runtime.dump(runtime.start(PID, case_data(), clock))))
    state["format"] = fmt
    with pytest.raises(EngineFault, match=f"has format {fmt!r}; this engine reads formats up to 1"):
        runtime.load(zlib.compress(json.dumps(state).encode()), PID)


def test_completing_a_non_ready_task_is_refused(runtime, clock):
    workflow = runtime.start(PID, case_data(), clock)
    started = [t for t in workflow.get_tasks(state=TaskState.COMPLETED) if t.task_spec.name == "case_reported"]
    assert len(started) == 1
    with pytest.raises(InvalidTransition):
        runtime.complete(workflow, str(started[0].id), {}, clock)
    not_manual = [t for t in workflow.get_tasks() if not t.task_spec.manual and t.state != TaskState.COMPLETED]
    assert not_manual
    with pytest.raises(InvalidTransition):
        runtime.complete(workflow, str(not_manual[0].id), {}, clock)
    assert open_names(runtime, workflow) == ["sign_for"]  # nothing moved


def test_completing_a_task_twice_is_refused(runtime, clock):
    workflow = runtime.start(PID, case_data(), clock)
    task = complete_named(runtime, workflow, "sign_for", clock)
    with pytest.raises(InvalidTransition):
        runtime.complete(workflow, str(task.id), {}, clock)
    assert open_names(runtime, workflow) == ["handle"]


@pytest.mark.parametrize("task_id", [str(uuid.uuid4()), "not-a-uuid", ""])
def test_unknown_task_id_is_not_found(runtime, clock, task_id):
    workflow = runtime.start(PID, case_data(), clock)
    with pytest.raises(NotFound):
        runtime.complete(workflow, task_id, {}, clock)
    with pytest.raises(NotFound):
        runtime.find_task(workflow, task_id)


@pytest.mark.parametrize("owner, steps", [("gulou.dongjie", 0), ("gulou.dongjie", 1), (None, 0)])
def test_withdraw_before_completion_ends_in_case_withdrawn(runtime, clock, owner, steps):
    workflow = runtime.start(PID, case_data(owner_unit=owner), clock)
    if steps:
        complete_named(runtime, workflow, "sign_for", clock)
    runtime.send_signal(workflow, "withdrawn", {"reason": "fixed myself"}, clock)
    assert workflow.is_completed()
    assert "case_withdrawn" in finished(workflow) and "case_closed" not in finished(workflow)
    assert runtime.open_tasks(workflow) == []


def test_signal_after_review_stage_is_invalid(runtime, clock):
    workflow = runtime.start(PID, case_data(), clock)
    complete_named(runtime, workflow, "sign_for", clock)
    complete_named(runtime, workflow, "handle", clock, result="r")
    assert open_names(runtime, workflow) == ["review"]
    with pytest.raises(InvalidTransition):
        runtime.send_signal(workflow, "withdrawn", {}, clock)
    assert open_names(runtime, workflow) == ["review"] and not workflow.is_completed()


def test_review_sent_back_returns_to_handling(runtime, clock):
    workflow = runtime.start(PID, case_data(), clock)
    complete_named(runtime, workflow, "sign_for", clock)
    complete_named(runtime, workflow, "handle", clock, result="r")
    complete_named(runtime, workflow, "review", clock, review_approved=False)
    assert open_names(runtime, workflow) == ["handle"]  # rework skips sign-for
    restored = runtime.load(runtime.dump(workflow), PID)
    complete_named(runtime, restored, "handle", clock, result="again")
    complete_named(runtime, restored, "review", clock, review_approved=True)
    assert open_names(runtime, restored) == ["evaluate"]


def test_reference_process_sign_for_deadline_is_ten_minutes(runtime, clock):
    workflow = runtime.start(PID, case_data(), clock)
    assert Runtime.next_due(workflow) == clock.now() + dt.timedelta(minutes=10)
    sign_for = runtime.open_tasks(workflow)[0]
    assert Runtime.task_deadline(sign_for) == clock.now() + dt.timedelta(minutes=10)


# -- timers --------------------------------------------------------------------------------
TIMED = b"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="d" targetNamespace="t">
  <bpmn:process id="timed" isExecutable="true">
    <bpmn:startEvent id="s"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="wait" />
    <bpmn:userTask id="wait"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>
    <bpmn:sequenceFlow id="f2" sourceRef="wait" targetRef="done" />
    <bpmn:endEvent id="done"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:boundaryEvent id="overdue" attachedToRef="wait" cancelActivity="true">
      <bpmn:outgoing>f3</bpmn:outgoing>
      <bpmn:timerEventDefinition id="td"><bpmn:timeDuration>"PT10M"</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="f3" sourceRef="overdue" targetRef="late" />
    <bpmn:endEvent id="late"><bpmn:incoming>f3</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>"""


@pytest.fixture
def timed() -> Runtime:
    install_spiff_clock()
    parser = SpiffBpmnParser()
    parser.add_bpmn_str(TIMED, filename="timed.bpmn")
    return Runtime(
        CompiledDiagrams({"timed": parser.get_spec("timed")}, {"timed": parser.get_subprocess_specs("timed")})
    )


def test_timer_due_time_follows_the_manual_clock(timed, clock):
    workflow = timed.start("timed", {}, clock)
    [event] = workflow.waiting_events()
    assert dt.datetime.fromisoformat(event.value) == clock.now() + dt.timedelta(minutes=10)


def test_next_due_is_ten_minutes_after_start(timed, clock):
    workflow = timed.start("timed", {}, clock)
    assert Runtime.next_due(workflow) == clock.now() + dt.timedelta(minutes=10)
    restored = timed.load(timed.dump(workflow), "timed")
    assert Runtime.next_due(restored) == clock.now() + dt.timedelta(minutes=10)


def test_timer_fires_only_once_due(timed, clock):
    workflow = timed.start("timed", {}, clock)
    clock.advance(dt.timedelta(minutes=9))
    timed.advance(workflow, clock)
    assert open_names(timed, workflow) == ["wait"]
    clock.advance(dt.timedelta(minutes=2))
    restored = timed.load(timed.dump(workflow), "timed")
    timed.advance(restored, clock)
    assert restored.is_completed()
    assert "late" in finished(restored) and "done" not in finished(restored)


def test_clock_binding_is_scoped(clock):
    install_spiff_clock()
    from SpiffWorkflow.bpmn.specs.event_definitions import timer

    with bound(clock):
        assert timer.datetime.now(UTC) == clock.now()
    assert abs(timer.datetime.now(UTC) - dt.datetime.now(UTC)) < dt.timedelta(minutes=1)
