"""A regression guard without timed tests: today's figures against the last recorded ones.

Measures, on one fresh database (PostgreSQL by default, ``--backend sqlite`` for the embedded
one), each figure of the command path next to its baseline measured in the same run, and
prints the current value, the recorded one (``bench/figures.json``) and their ratio. The
figures that count across machines are the **ratios to a baseline** and the **statements
per command** (no clock in them); absolute rates move with the machine and its load, which is
printed too. ``--record`` stores today's figures as the new reference (commit the JSON with
the change that moved them, so a slowdown shows in review).

* intake: cases/s through ``CaseService.report`` vs raw inserts of the same rows;
* complete a task: p50/p95 ms of completing a sign-for;
* lifecycle: report → evaluated (sign for, handle, review, evaluate) cases/s vs SpiffWorkflow
  alone running the same path in memory;
* timers: fired/s by one worker (``fire_due``) vs plain updates of as many rows;
* statements per intake, per completion, per fired timer; stored state bytes per open case.

Run: ``.venv/bin/python bench/compare.py [--n 200] [--backend postgresql|sqlite] [--record]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from bench_cases import new_case, raw_insert
from common import fresh_database, ready_app, reference_pack
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine, TaskDataEnvironment
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.parser import SpiffBpmnParser
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import event, func, select, update

from govflow.engine.cases.timers import fire_due
from govflow.engine.model.clock import ManualClock
from govflow.engine.store.db import CaseRow, CaseTask

FIGURES = Path(__file__).with_name("figures.json")
NOW = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)  # Monday 10:00 in Fuzhou
#: the form data of each step of the reference lifecycle (a satisfied citizen: no return visit)
STEPS = {
    "sign_for": {},
    "handle": {"result": "已补装井盖"},
    "review": {"approved": True},
    "evaluate": {"satisfaction": 5},
}
#: figure -> (unit, which way is better)
UNITS = {
    "intake_per_s": ("cases/s", "higher"),
    "intake_vs_raw_insert": ("×", "higher"),
    "complete_p50_ms": ("ms", "lower"),
    "complete_p95_ms": ("ms", "lower"),
    "lifecycle_per_s": ("cases/s", "higher"),
    "lifecycle_vs_spiff_alone": ("×", "higher"),
    "timers_per_s": ("timers/s", "higher"),
    "timers_vs_plain_updates": ("×", "higher"),
    "statements_per_intake": ("statements", "lower"),
    "statements_per_complete": ("statements", "lower"),
    "statements_per_timer": ("statements", "lower"),
    "state_bytes_per_open_case": ("bytes", "lower"),
}


def spiff_lifecycle(n: int) -> float:
    """SpiffWorkflow alone, in memory, its stock script engine: the same path, cases/s."""
    parser = SpiffBpmnParser()
    parser.add_bpmn_file(str(Path(__file__).parent.parent / "processes" / "frontline_disposal.bpmn"))
    spec, subs = parser.get_spec("frontline_disposal"), parser.get_subprocess_specs("frontline_disposal")
    far = "2030-01-01T00:00:00+00:00"
    engine = PythonScriptEngine(
        environment=TaskDataEnvironment({"due": lambda step, tier=None: far, "remind": lambda step, tier=None: far})
    )
    variables = {"sign_for": {}, "handle": {"result": "done"}, "review": {"review_approved": True}}
    variables["evaluate"] = {"satisfaction": 5}
    start = time.perf_counter()
    for _ in range(n):
        wf = BpmnWorkflow(spec, subs, script_engine=engine)
        for task in wf.get_tasks(state=TaskState.READY):
            task.data.update(
                {"owner_unit": "gulou.dongjie", "matter": "road.pothole", "tier": "simple", "review_approved": None}
            )
        wf.do_engine_steps()
        for _ in range(10):
            ready = wf.get_tasks(state=TaskState.READY, manual=True)
            if not ready:
                break
            for task in ready:
                task.set_data(**variables.get(task.task_spec.bpmn_id, {}))
                task.run()
            wf.do_engine_steps()
        assert wf.completed, "the in-memory lifecycle did not reach its end"
    return n / (time.perf_counter() - start)


class Counter:
    def __init__(self, engine: Any) -> None:
        self.n = 0
        event.listen(engine, "before_cursor_execute", self._one)

    def _one(self, *_: Any) -> None:
        self.n += 1


def measure(backend: str, n: int) -> dict[str, float]:
    _, engine = fresh_database(backend)
    clock = ManualClock(NOW - dt.timedelta(minutes=30))
    app = ready_app(engine, reference_pack(), clock=clock)
    citizen = app.access.authenticate("demo-citizen-zhang")
    street = app.access.authenticate("demo-dongjie")
    for _ in range(30):  # warm caches (specs, authorizers, connections)
        app.cases.report(citizen, new_case(0))
    with engine.begin() as conn:
        conn.execute(update(CaseRow).values(next_due=None))
        conn.execute(CaseTask.__table__.delete())
    counter = Counter(engine)
    out: dict[str, float] = {}

    counter.n = 0
    start = time.perf_counter()
    for _ in range(n):
        app.cases.report(citizen, new_case(0))
    out["intake_per_s"] = n / (time.perf_counter() - start)
    out["statements_per_intake"] = counter.n / n
    with engine.connect() as conn:
        blob = conn.execute(select(CaseRow.state).where(CaseRow.next_due.is_not(None)).limit(1)).scalar_one()
        out["state_bytes_per_open_case"] = float(
            conn.execute(select(func.avg(func.length(CaseRow.state))).where(CaseRow.next_due.is_not(None))).scalar_one()
        )
        signs = [str(t) for t in conn.execute(select(CaseTask.id).where(CaseTask.name == "sign_for")).scalars()]
    out["intake_vs_raw_insert"] = out["intake_per_s"] / raw_insert(engine, n, blob, repeat=1)

    half = signs[: len(signs) // 2]
    counter.n = 0
    times = []
    for task in half:
        t0 = time.perf_counter()
        app.cases.complete_task(street, task, {})
        times.append((time.perf_counter() - t0) * 1000)
    out["statements_per_complete"] = counter.n / len(half)
    out["complete_p50_ms"] = statistics.median(times)
    out["complete_p95_ms"] = sorted(times)[int(0.95 * len(times)) - 1]

    # the other half keeps its deadline timers: fire them, one worker, batches of 100
    clock.set(NOW + dt.timedelta(days=3))
    counter.n = 0
    fired, start = 0, time.perf_counter()
    while (report := fire_due(app.cases, batch=100)).due:
        fired += report.fired
    spent = time.perf_counter() - start
    out["timers_per_s"] = fired / spent
    out["statements_per_timer"] = counter.n / max(fired, 1)
    with engine.connect() as conn:
        ids = conn.execute(select(CaseRow.id).limit(fired)).scalars().all()
    start = time.perf_counter()
    for i in range(0, len(ids), 100):
        with engine.begin() as conn:
            for case_id in ids[i : i + 100]:
                conn.execute(update(CaseRow).where(CaseRow.id == case_id).values(version=CaseRow.version + 1))
    out["timers_vs_plain_updates"] = out["timers_per_s"] / (len(ids) / (time.perf_counter() - start))

    # the whole lifecycle, engine-level, with the clock still: no timer fires on the way
    clock.set(NOW)
    lifecycle_n = max(n // 4, 20)
    start = time.perf_counter()
    for _ in range(lifecycle_n):
        case_id = app.cases.report(citizen, new_case(0)).case_id
        for step, data in STEPS.items():
            who = citizen if step == "evaluate" else street
            with engine.connect() as conn:
                task = conn.execute(
                    select(CaseTask.id).where(CaseTask.case_id == case_id, CaseTask.name == step)
                ).scalar_one()
            app.cases.complete_task(who, str(task), data)
    out["lifecycle_per_s"] = lifecycle_n / (time.perf_counter() - start)
    out["lifecycle_vs_spiff_alone"] = out["lifecycle_per_s"] / spiff_lifecycle(lifecycle_n)
    engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="cases per figure")
    parser.add_argument("--backend", default="postgresql", choices=["postgresql", "sqlite"])
    parser.add_argument("--record", action="store_true", help=f"store today's figures in {FIGURES.name}")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    current = measure(args.backend, args.n)
    recorded = json.loads(FIGURES.read_text(encoding="utf-8")) if FIGURES.exists() else {}
    before = recorded.get(args.backend, {})
    print(
        f"{args.backend}, n={args.n}, machine load {load:.1f} (recorded at load {before.get('load', float('nan')):.1f})"
    )
    print(f"{'figure':28s} {'now':>10s} {'recorded':>10s} {'ratio':>7s}")
    for name, value in current.items():
        unit, better = UNITS[name]
        old = before.get("figures", {}).get(name)
        ratio = value / old if old else float("nan")
        worse = old is not None and ((ratio < 0.9) if better == "higher" else (ratio > 1.1))
        flag = "  ← worse" if worse else ""
        shown_old = f"{old:10.2f}" if old is not None else f"{'-':>10s}"
        print(f"{name:28s} {value:10.2f} {shown_old} {ratio:7.2f}  {unit}{flag}")
    if args.record:
        recorded[args.backend] = {
            "recorded": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
            "load": round(load, 1),
            "n": args.n,
            "figures": {k: round(v, 3) for k, v in current.items()},
        }
        FIGURES.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        print(f"recorded in bench/{FIGURES.name}")


if __name__ == "__main__":
    main()
