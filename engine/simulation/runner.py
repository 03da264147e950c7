"""The discrete-event simulator: a pack version's real command path on a simulated clock.

Nothing here models the process. Every report, task completion and call-out is a real command
of :mod:`govflow.engine.cases` (dispatch, Casbin checks, the diagram, deadlines, forms) against
a throw-away database, and every deadline, reminder and escalation is the real timer worker
(:func:`govflow.engine.cases.timers.fire_due`). The simulator only plays the people:

* a **heap** of future happenings ordered by (time, sequence): reports arriving, a person
  finishing a piece of work, a department reporting in, a resident rating, the hourly sample
  of the queues; and the cases' ``next_due`` (read back after every command) for the timers;
* the **injected clock** (:class:`~govflow.engine.model.clock.ManualClock`) set to the time
  of each happening before its command runs: no sleeping, a month runs in minutes;
* each **unit** works its open tasks first come, first served, with ``people`` in parallel,
  in its hours (the pack's office hours and working days, or around the clock); the work of
  a step takes a draw from the scenario's handling-time distribution;
* **departments** report in (or reject the call) after a delay, **residents** rate (or stay
  silent and get a return visit).

Every draw about a case comes from its own random stream, keyed by the seed, the case's
arrival number, the step and the how-many-th time the step comes up. Two pack versions run
with the same seed therefore see the same reports and the same people (common random
numbers), and the same seed, scenario and pack give the same record, byte for byte.
"""

from __future__ import annotations

import datetime as dt
import heapq
import random
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from govflow.engine.access.identity import Principal, store_principals
from govflow.engine.cases.callouts import CallOut, CallOuts
from govflow.engine.cases.service import CaseService, NewCase
from govflow.engine.cases.timers import fire_due
from govflow.engine.model.calendar import WeekdayCalendar, WorkingTime
from govflow.engine.model.catalog import ROLE_FOR_KIND
from govflow.engine.model.clock import ManualClock, iso
from govflow.engine.model.errors import GovflowError, InvalidTransition
from govflow.engine.packs.loader import LoadedPack
from govflow.engine.simulation.arrivals import Arrival, generate
from govflow.engine.simulation.places import Places
from govflow.engine.simulation.scenario import CALL_OUT_STEP, Scenario
from govflow.engine.store.db import CaseRow, CaseTask

#: the principals simulated residents report as (citizens: report, rate, withdraw): ``sim.resident.<n>``
RESIDENT = "sim.resident"
HOUR = dt.timedelta(hours=1)
#: the worker's tick after a deadline (SpiffWorkflow fires a timer once its time has *passed*)
TICK = dt.timedelta(seconds=1)
#: the suffix of a unit's duty desk in the queues (the steps of ``capacity.duty_steps``)
DUTY = "/duty"


class World(Protocol):
    """What the composition root hands the simulator: the real services over a throw-away database."""

    @property
    def db(self) -> Engine: ...

    @property
    def cases(self) -> CaseService: ...

    @property
    def callouts(self) -> CallOuts: ...

    @property
    def packs(self) -> Any: ...


@dataclass
class Task:
    id: uuid.UUID
    case: int  # arrival number
    name: str  # the element id (the step)
    action: str
    unit: str | None
    user: str | None
    opened: dt.datetime
    occurrence: int  # the how-many-th time this step opened for the case
    queued_at: dt.datetime | None = None


@dataclass
class Case:
    arrival: Arrival
    id: uuid.UUID | None = None
    tasks: dict[uuid.UUID, Task] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)  # step -> how many times it opened
    called: list[str] = field(default_factory=list)
    caller: str | None = None  # the street that called the departments out
    next_due: dt.datetime | None = None
    reporter: str = RESIDENT
    rated: set[tuple[str, str, str]] = field(default_factory=set)  # (rater unit, target, dimension)


@dataclass
class Unit:
    code: str
    people: int
    busy: int = 0
    queue: deque[uuid.UUID] = field(default_factory=deque)
    waits: list[float] = field(default_factory=list)  # minutes from opened to work started
    starts: list[dt.datetime] = field(default_factory=list)  # heap: work taken but begun only later (hours)
    series: list[int] = field(default_factory=list)  # waiting tasks at each hourly sample
    waits_by_day: dict[int, list[float]] = field(default_factory=dict)  # day of the run -> waits of work begun
    done: int = 0


@dataclass
class Tally:
    """What the run did, for the report and for an interruption's message."""

    reported: int = 0
    commands: int = 0
    timer_ticks: int = 0
    refused: dict[str, int] = field(default_factory=dict)  # "action: ErrorType" -> count
    withdrawn: int = 0  # reports the resident withdrew (撤回)
    withdraw_late: int = 0  # … or tried to, after the result was submitted (the engine refused)
    evaluations: dict[str, int] = field(default_factory=dict)  # mutual evaluations given, by dimension
    arrivals_by_hour: list[int] = field(default_factory=lambda: [0] * 24)
    arrivals_by_day_hour: dict[str, int] = field(default_factory=dict)
    clock: dt.datetime | None = None
    #: wall seconds inside the engine's commands and timer worker, and reading cases back
    #: (for the benchmark: what the command path costs against the simulator's own work)
    engine_seconds: float = 0.0
    read_seconds: float = 0.0


class Progress(Protocol):
    def __call__(self, done: float, tally: Tally) -> None: ...


class Simulation:
    """One run of one pack version through one scenario with one seed."""

    # happenings at the same instant: arrivals, then work done, then the hourly sample
    ARRIVE, FINISH, RESPOND, SAMPLE = 0, 1, 1, 2

    def __init__(
        self,
        world: World,
        clock: ManualClock,
        pack: LoadedPack,
        scenario: Scenario,
        *,
        seed: int,
        progress: Progress | None = None,
    ) -> None:
        self.world, self.clock, self.pack, self.scenario, self.seed = world, clock, pack, scenario, seed
        self.progress = progress
        self.catalog = pack.catalog
        policy = pack.runtime.deadlines
        self.tz = policy.working_time.tz if policy is not None else dt.UTC
        self.working_time = policy.working_time if policy is not None else WorkingTime(WeekdayCalendar())
        self.places = Places(pack)
        self.arrivals = generate(scenario, self.tz, seed)
        self.start = dt.datetime.combine(scenario.start, dt.time(0), self.tz).astimezone(dt.UTC)
        self.end = self.start + dt.timedelta(days=scenario.days + scenario.drain_days)
        self.cases: dict[int, Case] = {}
        self.by_id: dict[uuid.UUID, int] = {}
        self.units: dict[str, Unit] = {}
        self.heap: list[tuple[dt.datetime, int, int, tuple[Any, ...]]] = []
        self.timers: list[tuple[dt.datetime, int]] = []
        self.sequence = 0
        self.tally = Tally()
        self.principals: dict[str, Principal] = {}
        self.task_case: dict[uuid.UUID, int] = {}  # open task -> its case
        self.samples = 0  # hourly samples of the queues taken so far
        self.wall_seconds = 0.0

    # -- set-up ------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Deploy the pack into the throw-away database and create one principal per unit."""
        self.clock.set(self.start - HOUR)
        self.world.packs.deploy(self.pack, actor="system.simulation", now=self.clock.now())
        entries = [(self._principal_of(code), f"simulation-token-{code}") for code in self.catalog.units]
        for index in range(1, self.scenario.reporters + 1):
            resident = Principal(f"{RESIDENT}.{index}", f"居民{index}", "person", None, None, ("citizen",))
            entries.append((resident, f"simulation-resident-{index}"))
        with Session(self.world.db) as session, session.begin():
            store_principals(session, entries, self.clock.now())
        self.principals = {p.unit or p.id: p for p, _ in entries}

    def _principal_of(self, code: str) -> Principal:
        unit = self.catalog.units[code]
        role = ROLE_FOR_KIND.get(unit.kind, "street_dispatcher")
        return Principal(f"sim.{code}", code, "person", self.catalog.district, code, (role,))

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> Tally:
        """Run the whole period (and its drain days); the tally says how far it got if interrupted."""
        started = time.perf_counter()
        try:
            for arrival in self.arrivals:
                self.cases[arrival.n] = Case(arrival)
                self._push(arrival.at, self.ARRIVE, ("arrive", arrival.n))
            sample = self.start
            while sample <= self.end:
                self._push(sample, self.SAMPLE, ("sample",))
                sample += HOUR
            total = (self.end - self.start).total_seconds()
            while True:
                due = self._next_timer()
                due = due + TICK if due is not None else None
                nxt = self.heap[0][0] if self.heap else None
                if due is not None and (nxt is None or due < nxt) and due <= self.end:
                    self._fire(due)
                    continue
                if nxt is None or nxt > self.end:
                    break
                at, _, _, action = heapq.heappop(self.heap)
                self.clock.set(at)
                self.tally.clock = at
                self._happen(action)
                if self.progress is not None and action[0] == "sample":
                    self.progress(min(1.0, (at - self.start).total_seconds() / total), self.tally)
        finally:
            self.wall_seconds = time.perf_counter() - started
        return self.tally

    def _push(self, at: dt.datetime, order: int, action: tuple[Any, ...]) -> None:
        self.sequence += 1
        heapq.heappush(self.heap, (at, order, self.sequence, action))

    def _happen(self, action: tuple[Any, ...]) -> None:
        kind = action[0]
        if kind == "arrive":
            self._report(self.cases[action[1]])
        elif kind == "finish":
            self._finish(action[1], action[2], action[3])
        elif kind == "respond":
            self._respond(action[1], action[2])
        elif kind == "withdraw":
            self._withdraw(self.cases[action[1]])
        elif kind == "rate":
            self._rate(self.cases[action[1]], action[2], action[3], action[4], action[5])
        elif kind == "sample":
            now = self.clock.now()
            self.samples += 1
            for unit in self.units.values():
                while unit.starts and unit.starts[0] <= now:
                    heapq.heappop(unit.starts)
                waiting = sum(1 for task_id in unit.queue if task_id in self.task_case)  # not cancelled meanwhile
                unit.series.append(waiting + len(unit.starts))

    # -- timers ------------------------------------------------------------------------------------
    def _next_timer(self) -> dt.datetime | None:
        while self.timers:
            due, n = self.timers[0]
            if self.cases[n].next_due == due:
                return due
            heapq.heappop(self.timers)  # superseded by a later read of the case
        return None

    def _fire(self, due: dt.datetime) -> None:
        """The real timer worker at the due instant, then every case it may have moved read back."""
        self.clock.set(due)
        self.tally.clock = due
        batch = 500
        started = time.perf_counter()
        while fire_due(self.world.cases, batch=batch).due >= batch:
            pass
        self.tally.engine_seconds += time.perf_counter() - started
        self.tally.timer_ticks += 1
        moved = []
        while self.timers and self.timers[0][0] < due:
            _, n = heapq.heappop(self.timers)
            next_due = self.cases[n].next_due
            if next_due is not None and next_due < due:
                moved.append(n)
        for n in sorted(set(moved)):
            self._refresh(n)

    # -- reading a case back -------------------------------------------------------------------------
    def _refresh(self, n: int) -> None:
        """Learn the case's open tasks and next deadline after a command or a timer."""
        case = self.cases[n]
        started = time.perf_counter()
        query = (  # one statement: the case's next deadline and its open tasks (none: one row of NULLs)
            select(
                CaseRow.next_due,
                CaseTask.id,
                CaseTask.name,
                CaseTask.action,
                CaseTask.unit_code,
                CaseTask.assignee_user,
            )
            .select_from(CaseRow)
            .outerjoin(CaseTask, CaseTask.case_id == CaseRow.id)
            .where(CaseRow.id == case.id)
        )
        with self.world.db.connect() as conn:
            joined = conn.execute(query).all()
        rows = [row for row in joined if row.id is not None]
        case.next_due = joined[0].next_due if joined else None
        self.tally.read_seconds += time.perf_counter() - started
        if case.next_due is not None:
            case.next_due = case.next_due if case.next_due.tzinfo else case.next_due.replace(tzinfo=dt.UTC)
            heapq.heappush(self.timers, (case.next_due, n))
        now = self.clock.now()
        current = {row.id for row in rows}
        for gone in [t for t in case.tasks if t not in current]:
            del case.tasks[gone]  # done, or cancelled by a timer (a queued entry is skipped later)
            self.task_case.pop(gone, None)
        for row in sorted(rows, key=lambda r: (r.name, str(r.unit_code), str(r.id))):
            if row.id in case.tasks:
                continue
            occurrence = case.seen.get(row.name, 0) + 1
            case.seen[row.name] = occurrence
            task = Task(row.id, n, row.name, row.action, row.unit_code, row.assignee_user, now, occurrence)
            case.tasks[row.id] = task
            self.task_case[row.id] = n
            self._assign(task)

    def _assign(self, task: Task) -> None:
        if task.user is not None:  # the reporter: a resident rates after a while, or never
            rng = self._rng(task, "resident")
            if rng.random() >= self.scenario.silent:
                delay = self.scenario.resident_delay.sample(rng)
                self._push(task.opened + dt.timedelta(minutes=delay), self.RESPOND, ("respond", task.case, task.id))
            return
        if task.action == "report_in" and task.unit is not None:  # a department answers a call
            behaviour = self.scenario.department(task.unit)
            delay = behaviour.report_in_delay.sample(self._rng(task, "delay"))
            at = self._after(task.unit, task.name, task.opened, delay)
            self._push(at, self.RESPOND, ("respond", task.case, task.id))
            return
        code = task.unit or self.catalog.command_centre
        # a duty desk's steps (值班: sign for at night) have their own queue, never behind daytime work
        duty = task.name in self.scenario.duty_steps and self.scenario.capacity_of(code).hours != "always"
        unit = self._unit(f"{code}{DUTY}" if duty else code)
        task.queued_at = task.opened
        unit.queue.append(task.id)
        self._start_work(unit)

    # -- units at work ----------------------------------------------------------------------------------
    def _unit(self, code: str) -> Unit:
        unit = self.units.get(code)
        if unit is None:
            capacity = self.scenario.capacity_of(code.removesuffix(DUTY))
            unit = self.units[code] = Unit(code, capacity.people)
            unit.series = [0] * self.samples  # nothing waited there before its first task
        return unit

    def _after(self, unit: str, step: str, start: dt.datetime, minutes: float) -> dt.datetime:
        """``start`` plus ``minutes`` of the unit's time for this step (office hours, or around the clock)."""
        if self.scenario.always(unit, step):
            return start + dt.timedelta(minutes=minutes)
        return self.working_time.add_working_minutes(start, minutes)

    def _start_work(self, unit: Unit) -> None:
        now = self.clock.now()
        while unit.busy < unit.people and unit.queue:
            task_id = unit.queue.popleft()
            task = self._open_task(task_id)
            if task is None:
                continue  # cancelled while it waited
            step = task.name
            begin = (
                now
                if self.scenario.always(unit.code.removesuffix(DUTY), step)
                else self.working_time.add_working_minutes(now, 0)
            )
            call = task.action == "handle" and self._decides_call_out(task)
            rng = self._rng(task, "work")
            minutes = self.scenario.handling_of(CALL_OUT_STEP if call else step, self._matter(task)).sample(rng)
            done = self._after(unit.code.removesuffix(DUTY), step, begin, minutes)
            unit.busy += 1
            if begin > now:
                heapq.heappush(unit.starts, begin)
            wait = (begin - (task.queued_at or now)).total_seconds() / 60
            unit.waits.append(wait)
            unit.waits_by_day.setdefault((begin - self.start).days, []).append(wait)
            self._push(done, self.FINISH, ("finish", unit.code, task.case, task.id))

    def _finish(self, code: str, n: int, task_id: uuid.UUID) -> None:
        unit = self.units[code]
        unit.busy -= 1
        unit.done += 1
        task = self.cases[n].tasks.get(task_id)
        if task is not None:
            self._act(task)
        self._start_work(unit)

    def _respond(self, n: int, task_id: uuid.UUID) -> None:
        task = self.cases[n].tasks.get(task_id)
        if task is not None:
            self._act(task)

    def _open_task(self, task_id: uuid.UUID) -> Task | None:
        n = self.task_case.get(task_id)
        return self.cases[n].tasks.get(task_id) if n is not None else None

    # -- commands -------------------------------------------------------------------------------------
    def _report(self, case: Case) -> None:
        arrival = case.arrival
        case.reporter = f"{RESIDENT}.{self._case_rng(arrival.n, 'reporter').randrange(self.scenario.reporters) + 1}"
        matter = self.catalog.matters[arrival.matter]
        place, lat, lng = self.places.point(arrival.street, self._case_rng(arrival.n, "place"))
        new = NewCase(
            channel=arrival.channel,
            description=f"{matter.name}（{place}）",
            category=arrival.matter,
            lat=lat if arrival.located else None,
            lng=lng if arrival.located else None,
            address=place if arrival.located else None,
            reporter_name=self.principals[case.reporter].name,
            district=self.catalog.district,
        )
        local = arrival.at.astimezone(self.tz)
        self.tally.arrivals_by_hour[local.hour] += 1
        key = local.strftime("%Y-%m-%d %H:00")
        self.tally.arrivals_by_day_hour[key] = self.tally.arrivals_by_day_hour.get(key, 0) + 1
        started = time.perf_counter()
        try:
            outcome = self.world.cases.report(self.principals[case.reporter], new)
        except GovflowError as exc:
            self._refused("report", exc)
            return
        finally:
            self.tally.engine_seconds += time.perf_counter() - started
        self.tally.reported += 1
        self.tally.commands += 1
        case.id = outcome.case_id
        self.by_id[case.id] = arrival.n
        rng = self._case_rng(arrival.n, "withdraw")
        if rng.random() < self.scenario.withdraw:  # the resident withdraws the report after a while (撤回)
            delay = self.scenario.withdraw_delay.sample(rng)
            self._push(self.clock.now() + dt.timedelta(minutes=delay), self.RESPOND, ("withdraw", arrival.n))
        self._refresh(arrival.n)

    def _withdraw(self, case: Case) -> None:
        if case.id is None:
            return
        started = time.perf_counter()
        try:
            self.world.cases.withdraw(self.principals[case.reporter], str(case.id), "问题已自行解决（模拟）")
        except InvalidTransition:
            self.tally.withdraw_late += 1  # the result was submitted (or the case closed) first
            return
        except GovflowError as exc:
            self._refused("withdraw", exc)
            return
        finally:
            self.tally.engine_seconds += time.perf_counter() - started
        self.tally.withdrawn += 1
        self.tally.commands += 1
        self._refresh(case.arrival.n)

    def _rate(self, case: Case, rater: str, target: str, dimension: str, score: int) -> None:
        """A mutual evaluation of a call-out (互评) through the real rating command."""
        key = (rater, target, dimension)
        if case.id is None or key in case.rated:
            return
        case.rated.add(key)
        started = time.perf_counter()
        try:
            self.world.callouts.rate(
                self.principals[rater], str(case.id), target=target, dimension=dimension, score=score, comment=None
            )
        except GovflowError as exc:
            self._refused(f"rate {dimension}", exc)
            return
        finally:
            self.tally.engine_seconds += time.perf_counter() - started
        self.tally.commands += 1
        self.tally.evaluations[dimension] = self.tally.evaluations.get(dimension, 0) + 1

    def _evaluate(self, case: Case, task: Task, data: dict[str, Any]) -> None:
        """After a report-in or a disposal, the parties of the call rate each other (a while later)."""
        if task.unit is None or case.caller is None:
            return
        rates: list[tuple[str, str, str]] = []
        if task.action == "report_in":
            rates.append((task.unit, case.caller, "accuracy"))  # the department rates the call
            if data.get("decision") == "accept":
                rates.append((case.caller, task.unit, "report_in"))  # the street rates the report-in
        elif task.action == "dispose":
            rates.append((case.caller, task.unit, "disposal"))  # the street rates the disposal
        for rater, target, dimension in rates:
            rng = self._rng(task, f"evaluate/{dimension}")
            if rng.random() < self.scenario.evaluations_silent:
                continue
            score = self._rating(rng, self.scenario.evaluations[dimension])
            self._push(self.clock.now(), self.RESPOND, ("rate", task.case, rater, target, dimension, score))

    def _act(self, task: Task) -> None:
        """Complete a task as its person would (or call out instead of handling alone)."""
        case = self.cases[task.case]
        if task.action == "handle" and self._decides_call_out(task) and self._call_out(case, task):
            return
        principal = self.principals.get(task.user or task.unit or self.catalog.command_centre)
        if principal is None:  # a task of a unit the catalog does not name: nobody can act on it
            key = f"{task.action}: no unit {task.unit} in the catalog"
            self.tally.refused[key] = self.tally.refused.get(key, 0) + 1
            return
        data = self._form(case, task)
        started = time.perf_counter()
        try:
            self.world.cases.complete_task(principal, str(task.id), data)
        except GovflowError as exc:
            self._refused(task.action, exc)
            done = False
        else:
            self.tally.commands += 1
            done = True
        finally:
            self.tally.engine_seconds += time.perf_counter() - started
        self._refresh(task.case)
        if done and task.action in ("report_in", "dispose"):
            self._evaluate(case, task, data)

    def _call_out(self, case: Case, task: Task) -> bool:
        found = self.pack.responsibility.lookup(case.arrival.matter) if self.pack.responsibility else None
        street = self.principals.get(task.unit or "")
        if found is None or street is None:
            return False
        departments = [found.main]
        if found.cooperating and self._rng(task, "cooperating").random() < self.scenario.decisions["cooperating"]:
            departments.append(found.cooperating[0])
        started = time.perf_counter()
        try:
            self.world.callouts.call_out(street, str(case.id), CallOut(departments, "需要职能部门协同处置（模拟）"))
        except GovflowError as exc:
            self._refused("call_out", exc)
            return False
        finally:
            self.tally.engine_seconds += time.perf_counter() - started
        self.tally.commands += 1
        case.called = departments
        case.caller = street.unit
        self._refresh(task.case)
        return True

    def _decides_call_out(self, task: Task) -> bool:
        if task.occurrence > 1 or self.cases[task.case].called:
            return False  # a case handled again after a dropped call is handled alone
        return self._rng(task, "call_out").random() < self.scenario.decisions["call_out"]

    def _form(self, case: Case, task: Task) -> dict[str, Any]:
        """The form a person fills for this task (the reference pack's forms; others from their fields)."""
        rng, now = self._rng(task, "form"), self.clock.now()
        decisions, action = self.scenario.decisions, task.action
        main = case.called[0] if case.called else None
        if action == "dispatch":
            return {"street": case.arrival.street, "matter": case.arrival.matter, "note": "按地址分拨（模拟）"}
        if action == "supervise":
            return {"street": self._owner(case) or case.arrival.street, "note": "督促签收（模拟）"}
        if action == "sign_for":
            return {}
        if action in ("handle", "dispose"):
            return {"result": "已处置完毕（模拟）"}
        if action == "report_in":
            assert task.unit is not None
            if rng.random() < self.scenario.department(task.unit).reject:
                return {"decision": "reject", "reason": "不属于本部门职责（模拟）"}
            return {"decision": "accept", "attendee": "值班员"}
        if action == "consult" and main is not None:
            due = self._consult_due(case, now)
            return {
                "opinion": "会商确定由主责部门处置（模拟）",
                "assignments": [{"unit": main, "duty": "按职责处置", "due": iso(due)}],
            }
        if action == "review":
            approved = rng.random() >= decisions["review_send_back"]
            return {"approved": approved, "opinion": "现场核实（模拟）"}
        if action == "evaluate":
            return {"satisfaction": self._rating(rng, self.scenario.ratings), "comment": "模拟评价"}
        if action == "return_visit":  # a dissatisfied resident (1 or 2) has the case redone for a share
            score = self._rating(rng, self.scenario.ratings)
            reopen = score <= 2 and rng.random() < self.scenario.reopen
            return {"return_visit": score, "outcome": "reopen" if reopen else "close", "note": "回访（模拟）"}
        if action == "answer_rejection":
            return {"maintain": rng.random() < decisions["maintain_rejected_call"], "reason": "模拟"}
        if action == "rule_dispute":  # release to the street, or refer to the standing meeting (联席会议)
            if main is not None and rng.random() < decisions["refer_dispute"]:
                return {"ruling": "refer", "opinion": "提交长效责任联席会议（模拟）"}
            return {"ruling": "release", "opinion": "裁定由街道自行处置（模拟）"}
        if action == "rule_responsibility" and main is not None:  # the meeting names the called department
            return {"department": main, "decision": "联席会议裁定由该部门主责（模拟）"}
        return self._generic_form(case, task, now)

    def _generic_form(self, case: Case, task: Task, now: dt.datetime) -> dict[str, Any]:
        form = self.pack.forms.get(task.action)
        data: dict[str, Any] = {}
        for name, spec in form.fields.items() if form else ():
            if not spec.required:
                continue
            if spec.type == "text":
                data[name] = "模拟"
            elif spec.type == "integer":
                data[name] = spec.max if spec.max is not None else (spec.min if spec.min is not None else 1)
            elif spec.type == "boolean":
                data[name] = True
            elif spec.type == "choice":
                data[name] = spec.options[0]
            elif spec.type == "matter":
                data[name] = case.arrival.matter
            elif spec.type == "unit":
                data[name] = (
                    (case.called[0] if case.called else None) if spec.kind == "department" else case.arrival.street
                )
            elif spec.type == "datetime":
                data[name] = iso(now + dt.timedelta(days=1))
            elif spec.type == "assignments" and case.called:
                data[name] = [{"unit": case.called[0], "duty": "模拟", "due": iso(now + dt.timedelta(days=1))}]
        return data

    def _consult_due(self, case: Case, now: dt.datetime) -> dt.datetime:
        policy = self.pack.runtime.deadlines
        tier = self.catalog.matters[case.arrival.matter].tier
        return policy.due("handle", tier, now) if policy is not None else now + dt.timedelta(days=3)

    def _owner(self, case: Case) -> str | None:
        with self.world.db.connect() as conn:
            return conn.execute(select(CaseRow.owner_unit).where(CaseRow.id == case.id)).scalar()

    @staticmethod
    def _rating(rng: random.Random, scores: tuple[tuple[int, float], ...]) -> int:
        total = sum(w for _, w in scores)
        point = rng.random() * total
        for score, weight in scores:
            point -= weight
            if point < 0:
                return score
        return scores[-1][0]

    def _matter(self, task: Task) -> str:
        return self.cases[task.case].arrival.matter

    def _refused(self, action: str, exc: GovflowError) -> None:
        key = f"{action}: {type(exc).__name__}"
        self.tally.refused[key] = self.tally.refused.get(key, 0) + 1

    # -- random streams -----------------------------------------------------------------------------
    def _rng(self, task: Task, purpose: str) -> random.Random:
        return random.Random(f"govflow-simulation/{self.seed}/{task.case}/{task.name}/{task.occurrence}/{purpose}")

    def _case_rng(self, n: int, purpose: str) -> random.Random:
        return random.Random(f"govflow-simulation/{self.seed}/{n}/{purpose}")


def run_once(
    make_world: Callable[[ManualClock], World],
    pack: LoadedPack,
    scenario: Scenario,
    *,
    seed: int,
    progress: Progress | None = None,
    on_start: Callable[[Simulation], None] | None = None,
) -> Simulation:
    """Build a world on a fresh clock, prepare it, run; the finished simulation holds its world."""
    clock = ManualClock()
    simulation = Simulation(make_world(clock), clock, pack, scenario, seed=seed, progress=progress)
    simulation.prepare()
    if on_start is not None:
        on_start(simulation)
    simulation.run()
    return simulation


__all__ = ["RESIDENT", "Simulation", "Tally", "World", "run_once"]
