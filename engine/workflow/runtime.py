"""The workflow runtime over SpiffWorkflow: start, advance, complete, persist.

A case's workflow state is stored **without its spec**: specs are immutable,
parsed once per pack version and shared (:mod:`govflow.engine.packs.loader`); the
state references them by the pack version the case runs on. The stored blob is
``zlib(json)`` (written and read with orjson) of Spiff's own dictionary form minus ``spec`` and
``subprocess_specs``, plus ``format`` (this module's state-format version) so a
future change of layout is one small migration function in ``_MIGRATIONS``.

The sandboxed script engine is not persisted by Spiff; :meth:`Runtime.load`
re-attaches it every time, so a restored workflow never falls back to Spiff's
unrestricted engine.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter, WorkflowConverter
from SpiffWorkflow.bpmn.util.event import BpmnEvent
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.spiff.specs.event_definitions import SignalEventDefinition
from SpiffWorkflow.util.task import TaskState

from govflow.engine.model import clock as clock_mod
from govflow.engine.model.calendar import DeadlinePolicy
from govflow.engine.model.errors import DiagramFailed, EngineFault, InvalidTransition, LimitExceeded, NotFound
from govflow.engine.model.lifecycle import DEADLINE_KINDS
from govflow.engine.workflow.bpmn import CompiledDiagrams
from govflow.engine.workflow.sandbox import Budget, SandboxedScriptEngine, budget
from govflow.engine.workflow.spiff_clock import install_spiff_clock

STATE_FORMAT = 1

#: Spiff reports pending timers under their concrete class names.
_TIMER_EVENT_TYPES = frozenset(
    {"TimerEventDefinition", "TimeDateEventDefinition", "DurationTimerEventDefinition", "CycleTimerEventDefinition"}
)

#: states of a task a workflow that is not complete can wait in
_ALIVE = TaskState.READY | TaskState.WAITING | TaskState.STARTED

#: state-format migrations: from-version -> function(dict) that upgrades in place.
_MIGRATIONS: dict[int, Callable[[dict[str, Any]], None]] = {}


class WorkflowCache:
    """The workflows this process's last commands left, by (case id, version): the next command on
    such a case runs on the object instead of restoring it from the row (about a third of a
    completion's work, docs/performance.md).

    Safe under optimistic locking: an entry is kept only after its command committed, under the
    version that commit wrote and with the state bytes it wrote; a command **takes** it (no other
    command can run on the same object), finds it only if the row it read still has that version
    and those very bytes (a state changed by any other means is restored from the row), and its
    own write is version-checked as always. A case another process moved since has another
    version: the entry is never used and ages out. Bounded (least recently kept out first), so
    memory stays flat.
    """

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._items: OrderedDict[tuple[Any, int], tuple[Runtime, bytes, BpmnWorkflow]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, case_id: Any, version: int, runtime: Runtime, state: bytes) -> BpmnWorkflow | None:
        with self._lock:
            found = self._items.pop((case_id, version), None)
        return found[2] if found is not None and found[0] is runtime and found[1] == state else None

    def keep(self, case_id: Any, version: int, runtime: Runtime, state: bytes, workflow: BpmnWorkflow) -> None:
        with self._lock:
            self._items[(case_id, version)] = (runtime, state, workflow)
            self._items.move_to_end((case_id, version))
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


#: the process's cache of workflows (see :class:`WorkflowCache`)
WORKFLOWS = WorkflowCache()


class _StateOnlyConverter(BpmnWorkflowConverter):
    """Spiff's workflow converter without the embedded spec (specs come from the cache)."""

    def to_dict(self, workflow: BpmnWorkflow) -> dict[str, Any]:
        dct = WorkflowConverter.to_dict(self, workflow)
        dct["spec_name"] = workflow.spec.name
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct: dict[str, Any], spec: Any = None, subprocess_specs: Any = None) -> BpmnWorkflow:
        if spec is None:
            raise ValueError("workflow state restored without its spec")
        workflow = self.target_class(spec, subprocess_specs, deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


@dataclass(frozen=True)
class Record:
    """A fact a diagram element asks to put on the case's record when it completes.

    Elements declare it with spiffworkflow properties: ``record`` (the event
    kind, e.g. ``deadline.overdue``) and any other properties (``step``,
    ``escalate_to``), which travel as the event's data.
    """

    kind: str
    element: str
    data: dict[str, str]


def _recorder(records: list[Record] | None) -> Callable[[Any], None] | None:
    if records is None:
        return None

    def did_complete(task: Any) -> None:
        props = (getattr(task.task_spec, "extensions", None) or {}).get("properties") or {}
        kind = props.get("record")
        if kind:
            data = {k: v for k, v in props.items() if k != "record"}
            records.append(Record(kind, task.task_spec.name, data))

    return did_complete


def _check_settled(workflow: BpmnWorkflow) -> None:
    """After engine steps a workflow waits for a person, a timer or a signal, or is complete; Spiff
    may also stop silently (its task iterator gives up deep in a long loop): that is a failure."""
    tasks = workflow.tasks.values()
    if any(t.state == TaskState.READY and not t.task_spec.manual for t in tasks):
        raise RuntimeError("the engine stopped before a wait state (the workflow is too deep: a loop?)")
    if not workflow.completed and not any(t.state & _ALIVE for t in tasks):
        raise RuntimeError("the workflow stopped without completing and without a step to wait for")


def _element(task: Any) -> str | None:
    spec = getattr(task, "task_spec", None)
    return getattr(spec, "bpmn_id", None) or getattr(spec, "name", None)


def diagram_failure(exc: BaseException, spent: Budget, element: str | None, doing: str) -> DiagramFailed:
    """The error a command reports when diagram code failed: the element, and why (a limit first:
    diagram code may have caught the limit's own error and failed otherwise afterwards)."""
    element = _element(getattr(exc, "task", None)) or element
    where = f" at {element}" if element else ""
    if spent.exceeded or isinstance(exc, (LimitExceeded, RecursionError)):
        reason = spent.exceeded or (
            exc.message if isinstance(exc, LimitExceeded) else "the diagram nested too deeply (a loop?)"
        )
        return LimitExceeded(f"the diagram was stopped{where}: {reason}", element=element)
    cause = exc.__cause__ or getattr(exc, "exception", None)
    detail = f"{type(exc).__name__}: {exc}"
    if cause is not None and not isinstance(exc, SpiffWorkflowException):
        detail = f"{type(cause).__name__}: {cause}"
    return DiagramFailed(f"{doing}{where}: {detail}", element=element)


class Runtime:
    """Runs diagrams of one compiled pack version with the sandbox and an injected clock."""

    def __init__(
        self,
        diagrams: CompiledDiagrams,
        services: Mapping[str, Callable[..., Any]] | None = None,
        deadlines: DeadlinePolicy | None = None,
    ) -> None:
        install_spiff_clock()  # Spiff's timers read the injected clock, whoever builds a runtime
        self.diagrams = diagrams
        self.deadlines = deadlines
        self.script_engine = SandboxedScriptEngine(services, self._deadline_functions() if deadlines else None)
        registry = BpmnWorkflowSerializer.configure(SPIFF_CONFIG)
        _StateOnlyConverter(BpmnWorkflow, registry)
        self._serializer = BpmnWorkflowSerializer(registry)

    def _deadline_functions(self) -> dict[str, Callable[..., str]]:
        """``due(step, tier)`` and ``remind(step, tier)`` for timer expressions (ISO-8601 UTC)."""
        policy = self.deadlines
        assert policy is not None

        def due(step: str, tier: str | None = None) -> str:
            return policy.due(step, tier, clock_mod.current().now()).isoformat()

        def remind(step: str, tier: str | None = None) -> str:
            return policy.remind(step, tier, clock_mod.current().now()).isoformat()

        return {"due": due, "remind": remind}

    # -- lifecycle ----------------------------------------------------------
    def start(
        self, process_id: str, data: Mapping[str, Any], clock: clock_mod.Clock, records: list[Record] | None = None
    ) -> BpmnWorkflow:
        try:
            spec = self.diagrams.specs[process_id]
        except KeyError:
            raise NotFound(f"the pack has no process {process_id!r}") from None
        workflow = BpmnWorkflow(spec, self.diagrams.subprocess_specs[process_id], script_engine=self.script_engine)
        for task in workflow.get_tasks(state=TaskState.READY):
            task.data.update(data)
        with budget():  # one budget for the whole command
            self.advance(workflow, clock, records)
        return workflow

    def advance(self, workflow: BpmnWorkflow, clock: clock_mod.Clock, records: list[Record] | None = None) -> None:
        """Fire due timers and run engine steps until human input is needed.

        Elements with a ``record`` property that complete are appended to ``records``.
        """
        with clock_mod.bound(clock), budget() as spent:
            current: list[str | None] = [None]

            def will_complete(task: Any) -> None:  # one engine step: within the command's budget
                current[0] = _element(task)
                spent.step()

            try:
                # do_engine_steps refreshes waiting tasks only at its end, so a timer that
                # became due must be refreshed first to run its path in this same step.
                workflow.refresh_timers()
                workflow.do_engine_steps(will_complete_task=will_complete, did_complete_task=_recorder(records))
                spent.check()
                _check_settled(workflow)
            except Exception as exc:  # a script/expression error inside the sandbox, or a limit
                raise diagram_failure(exc, spent, current[0], "the diagram failed while running") from exc

    def open_tasks(self, workflow: BpmnWorkflow) -> list[Any]:
        """The user tasks waiting for a person."""
        return list(workflow.get_tasks(state=TaskState.READY, manual=True))

    @staticmethod
    def element_of(task: Any) -> str:
        """The diagram element id of a task (multi-instance instances share their activity's)."""
        return task.task_spec.bpmn_id

    @staticmethod
    def task_data(task: Any) -> Mapping[str, Any]:
        """A task's workflow variables (read-only use)."""
        return task.data

    @staticmethod
    def is_complete(workflow: BpmnWorkflow) -> bool:
        """True once the workflow has run to its end."""
        return bool(workflow.completed)

    @staticmethod
    def reached_any(workflow: BpmnWorkflow, elements: Iterable[str]) -> bool:
        """True if any of these elements (by id, in any sub-process) has completed."""
        wanted = set(elements)
        return any(task.task_spec.bpmn_id in wanted for task in workflow.get_tasks(state=TaskState.COMPLETED))

    @staticmethod
    def element_states(workflow: BpmnWorkflow) -> dict[str, list[str]]:
        """Where a case stands on its diagram, by element id (sub-processes included).

        ``completed``: elements that have run; ``open``: user tasks waiting for a person;
        ``waiting``: other elements the workflow waits in (a running sub-process, a pending
        timer or signal); ``cancelled``: elements left when an interrupting event fired.
        Each id appears once per list (multi-instance instances share their activity's id).
        """
        states: dict[str, dict[str, None]] = {"completed": {}, "open": {}, "waiting": {}, "cancelled": {}}
        for task in workflow.get_tasks():
            element = getattr(task.task_spec, "bpmn_id", None)
            if not element:
                continue
            if task.state == TaskState.COMPLETED:
                states["completed"][element] = None
            elif task.state == TaskState.READY and task.task_spec.manual:
                states["open"][element] = None
            elif task.state in (TaskState.READY, TaskState.STARTED, TaskState.WAITING):
                states["waiting"][element] = None
            elif task.state == TaskState.CANCELLED:
                states["cancelled"][element] = None
        return {name: list(ids) for name, ids in states.items()}

    def complete(
        self,
        workflow: BpmnWorkflow,
        task_id: str,
        data: Mapping[str, Any],
        clock: clock_mod.Clock,
        records: list[Record] | None = None,
    ) -> Any:
        task = self.find_task(workflow, task_id)
        if not (task.state == TaskState.READY and task.task_spec.manual):
            raise InvalidTransition("the task is not open", task=task_id)
        task.set_data(**data)
        with clock_mod.bound(clock), budget() as spent:
            try:
                task.run()
            except Exception as exc:
                failure = diagram_failure(exc, spent, _element(task), "completing the task failed")
                failure.context["task"] = task_id
                raise failure from exc
            self.advance(workflow, clock, records)
        return task

    def find_task(self, workflow: BpmnWorkflow, task_id: str) -> Any:
        try:
            task = workflow.get_task_from_id(UUID(task_id))
        except (ValueError, KeyError, SpiffWorkflowException):
            task = None
        if task is None:
            raise NotFound("no such task on this case", task=task_id)
        return task

    def send_signal(
        self,
        workflow: BpmnWorkflow,
        name: str,
        payload: Mapping[str, Any],
        clock: clock_mod.Clock,
        records: list[Record] | None = None,
    ) -> None:
        event = BpmnEvent(SignalEventDefinition(name), payload=dict(payload))
        with clock_mod.bound(clock), budget() as spent:
            try:
                workflow.send_event(event)
            except SpiffWorkflowException:
                if spent.exceeded:
                    raise LimitExceeded(f"the diagram was stopped: {spent.exceeded}") from None
                raise InvalidTransition(f"nothing in the case waits for {name!r} now") from None
            self.advance(workflow, clock, records)

    # -- timers -------------------------------------------------------------
    @staticmethod
    def task_deadline(task: Any) -> dt.datetime | None:
        """The due time of an open user task: its earliest pending deadline timer (:data:`DEADLINE_KINDS`).

        Boundary timers hang beside the task, or beside its multi-instance parent.
        """
        due: list[dt.datetime] = []
        holder, candidates = task, []
        for _ in range(2):
            if holder.parent is None:
                break
            candidates += [s for s in holder.parent.children if s is not holder]
            holder = holder.parent
        for sibling in candidates:
            spec = sibling.task_spec
            props = (getattr(spec, "extensions", None) or {}).get("properties") or {}
            if props.get("record") not in DEADLINE_KINDS:
                continue
            value = sibling._get_internal_data("event_value") if sibling.state == TaskState.WAITING else None
            if isinstance(value, str):
                try:
                    due.append(clock_mod.to_utc(dt.datetime.fromisoformat(value)))
                except ValueError:
                    continue
        return min(due) if due else None

    @staticmethod
    def next_due(workflow: BpmnWorkflow) -> dt.datetime | None:
        """The earliest pending timer of the workflow (aware UTC), or None."""
        due: list[dt.datetime] = []
        for event in workflow.waiting_events():
            if event.event_type in _TIMER_EVENT_TYPES and isinstance(event.value, str):
                try:
                    due.append(clock_mod.to_utc(dt.datetime.fromisoformat(event.value)))
                except ValueError:
                    continue
        return min(due) if due else None

    # -- persistence --------------------------------------------------------
    def dump(self, workflow: BpmnWorkflow) -> bytes:
        registry = self._serializer.registry
        registry._encoder_mode = True  # Spiff's own switch for JSON-safe conversion
        try:
            dct = self._serializer.to_dict(workflow)
        finally:
            registry._encoder_mode = False
        dct["format"] = STATE_FORMAT
        dct[self._serializer.VERSION_KEY] = self._serializer.VERSION
        try:  # orjson: ten times the standard library's speed here, the same bytes
            raw = orjson.dumps(dct)
        except TypeError:  # a value only Spiff's own encoder knows
            raw = json.dumps(dct, separators=(",", ":"), cls=self._serializer._encoder_cls).encode()
        return zlib.compress(raw, 1)

    def load_case(self, case: Any) -> BpmnWorkflow:
        """The workflow of a case row, for a command that will change it: the one this process's
        last command on the case left at this very version (taken: see :class:`WorkflowCache`),
        else restored from the row's state."""
        cached = WORKFLOWS.take(case.id, case.version, self, case.state)
        return cached if cached is not None else self.load(case.state, case.process_id)

    def keep(self, case_id: Any, version: int, state: bytes, workflow: BpmnWorkflow) -> None:
        """Remember ``workflow`` as the case's at ``version`` with ``state`` its stored bytes (call
        only once that version is committed)."""
        WORKFLOWS.keep(case_id, version, self, state, workflow)

    def load(self, blob: bytes, process_id: str) -> BpmnWorkflow:
        try:
            raw = zlib.decompress(blob)
            try:
                dct = orjson.loads(raw)
            except orjson.JSONDecodeError:  # what only the standard library reads (NaN, Infinity)
                dct = json.loads(raw)
        except (zlib.error, ValueError) as exc:
            raise EngineFault(f"the stored workflow state is unreadable: {exc}") from exc
        if not isinstance(dct, dict):
            raise EngineFault("the stored workflow state is unreadable: not a workflow")
        fmt = dct.pop("format", STATE_FORMAT)
        if not isinstance(fmt, int) or fmt > STATE_FORMAT:
            raise EngineFault(
                f"the stored workflow state has format {fmt!r}; this engine reads formats up to {STATE_FORMAT}"
            )
        while fmt < STATE_FORMAT:
            if fmt not in _MIGRATIONS:
                raise EngineFault(f"the stored workflow state has format {fmt}, and no migration upgrades it")
            _MIGRATIONS[fmt](dct)
            fmt += 1
        spec = self.diagrams.specs.get(process_id)
        if spec is None:
            raise EngineFault(f"the stored workflow state is of process {process_id!r}, which the pack does not have")
        try:  # Spiff raises assorted errors (KeyError, TypeError, ...) on a state that does not fit
            self._serializer.migrate(dct)
            workflow = self._serializer.from_dict(
                dct, spec=spec, subprocess_specs=self.diagrams.subprocess_specs[process_id]
            )
        except Exception as exc:
            raise EngineFault(f"the stored workflow state does not restore: {type(exc).__name__}: {exc}") from exc
        workflow.script_engine = self.script_engine  # never the stock, unrestricted engine
        return workflow
