"""Where the time of one command goes: intake, complete a task, fire a timer (cProfile).

Runs each path ``--n`` times on a fresh database (PostgreSQL by default) under cProfile and
prints, per command, the mean wall time and the cumulative time of its parts (SpiffWorkflow
start/run, state load and dump, the database statements, the projectors, authorization,
dispatch), then the functions with the most own time. ``--top`` sets how many.
Run: ``.venv/bin/python bench/profile_commands.py [--n 300] [--backend postgresql|sqlite]``
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from bench_cases import new_case
from common import fresh_database, ready_app, reference_pack
from sqlalchemy import event, select, update

from govflow.engine.cases.timers import fire_due
from govflow.engine.model.clock import ManualClock
from govflow.engine.store.db import CaseRow, CaseTask

NOW = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)  # Monday 10:00 in Fuzhou

#: (label, file suffix, function name) of the parts reported for each command
PARTS = [
    ("spiff: start + run", "workflow/runtime.py", "start"),
    ("spiff: complete + run", "workflow/runtime.py", "complete"),
    ("spiff: advance (timers)", "workflow/runtime.py", "advance"),
    ("state: load (decompress, parse, restore)", "workflow/runtime.py", "load"),
    ("state: dump (to dict, JSON, compress)", "workflow/runtime.py", "dump"),
    ("plan (rows, events)", "cases/unit_of_work.py", "plan"),
    ("authorize (Casbin)", "cases/service.py", "authorize"),
    ("visibility (may read)", "cases/service.py", "require_visible"),
    ("decide the report (dispatch, spiff, plan)", "cases/service.py", "_decide_report"),
    ("uow: read case + tasks", "cases/unit_of_work.py", "load"),
    ("uow: case of task", "cases/unit_of_work.py", "case_of_task"),
    ("uow: read a task's case + tasks", "cases/unit_of_work.py", "load_of_task"),
    ("uow: commit (writes + projectors)", "cases/unit_of_work.py", "commit"),
    ("projectors", "cases/unit_of_work.py", "project"),
    ("db: statements (execute)", "sqlalchemy/engine/base.py", "execute"),
    ("db: waiting on the server", "psycopg/connection.py", "wait"),
]


class Statements:
    """Counts what a command sends to the database: statements, and connections taken from the
    pool (each one a liveness ping on PostgreSQL: ``pool_pre_ping``)."""

    def __init__(self, engine: Any) -> None:
        self.statements = self.checkouts = 0
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine.pool, "checkout", self._checkout)

    def _statement(self, *_: Any) -> None:
        self.statements += 1

    def _checkout(self, *_: Any) -> None:
        self.checkouts += 1

    def reset(self) -> None:
        self.statements = self.checkouts = 0


def profiled(label: str, n: int, fn: Callable[[int], Any], top: int, counter: Statements) -> None:
    prof = cProfile.Profile()
    counter.reset()
    start = time.perf_counter()
    prof.enable()
    for i in range(n):
        fn(i)
    prof.disable()
    wall = (time.perf_counter() - start) / n * 1000
    stats = pstats.Stats(prof)
    print(f"\n== {label}: {wall:.2f} ms per command under the profiler ({n} commands)")
    print(
        f"   statements per command: {counter.statements / n:.1f} "
        f"(+ BEGIN/COMMIT of each transaction), connections taken: {counter.checkouts / n:.1f}"
    )
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for name, suffix, func in PARTS:
        cum = sum(v[3] for (file, _, fname), v in raw.items() if fname == func and file.endswith(suffix))
        if cum:
            print(f"   {name:44s} {cum / n * 1000:7.2f} ms")
    if top <= 0:
        return
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    lines = [ln for ln in out.getvalue().splitlines() if ln.strip()]
    start_at = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("ncalls"))
    print("   own time, top functions:")
    for ln in lines[start_at : start_at + top + 1]:
        print("   " + ln.replace(str(Path(sys.prefix)), "").replace(str(Path(__file__).parent.parent), ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--backend", default="postgresql", choices=["postgresql", "sqlite"])
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    _, engine = fresh_database(args.backend)
    clock = ManualClock(NOW - dt.timedelta(minutes=30))
    app = ready_app(engine, reference_pack(), clock=clock)
    citizen = app.access.authenticate("demo-citizen-zhang")
    street = app.access.authenticate("demo-dongjie")
    for _ in range(30):  # warm caches (spec, authorizer, connections)
        app.cases.report(citizen, new_case(0))
    with engine.begin() as conn:  # only the profiled cases count below
        conn.execute(update(CaseRow).values(next_due=None))
        conn.execute(CaseTask.__table__.delete())
    counter = Statements(engine)
    profiled(
        "intake (report → first task)", args.n, lambda i: app.cases.report(citizen, new_case(0)), args.top, counter
    )
    with engine.connect() as conn:
        tasks = [str(t) for t in conn.execute(select(CaseTask.id).where(CaseTask.name == "sign_for")).scalars()]
    # half of the cases get their sign-for completed; the other half keep their deadline timers
    signed, waiting = tasks[: len(tasks) // 2], tasks[len(tasks) // 2 :]
    profiled(
        "complete a task (sign for)",
        len(signed),
        lambda i: app.cases.complete_task(street, signed[i], {}),
        args.top,
        counter,
    )
    clock.set(NOW + dt.timedelta(days=3))
    fired = [0]

    def tick(_: int) -> None:
        fired[0] += fire_due(app.cases, batch=50).fired

    batches = max(1, len(waiting) // 50)
    profiled("due timers (fire_due, batches of 50; per batch)", batches, tick, args.top, counter)
    print(f"\n(timers fired: {fired[0]} over {batches} batches; per timer divide the batch time by 50)")


if __name__ == "__main__":
    main()
