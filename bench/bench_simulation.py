"""Policy simulation at scale: the reference scenario through the real command path.

Target (issue 12): a month of Gulou-scale load — 1,000 reports a day, about 30,000 cases, each
through its whole lifecycle with call-outs and timers — in at most 60 s on 2 cores.

Runs the reference pack's ``simulation.yaml`` (scaled with ``--days`` and ``--per-day``) with
``govflow simulate``'s own wiring (a throw-away SQLite database, the full application on a
manual clock) and prints, from the same run:

* cases, commands, events on the record, timer ticks; wall seconds; **events per second**
  and cases per second;
* the baseline: the seconds spent inside the engine's commands and the timer worker, and
  reading cases back, against the whole run — the simulator's own share is the rest;
* the time a month of 30,000 cases would take at the measured cases per second, against the
  60 s target, and the machine's load average (the machine is shared: compare ratios).

Run: ``.venv/bin/python bench/bench_simulation.py [--days 1] [--per-day 300] [--seed 7]``
(``--days 30 --per-day 1000`` is the full month).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from govflow.engine.simulation import report
from govflow.engine.simulation.runner import Simulation
from govflow.settings import REFERENCE_PACK
from govflow.simulate_cli import _compile, _pack_files, _scenario, _workspace

TARGET_CASES, TARGET_SECONDS = 30_000, 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--per-day", type=float, default=300)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    load_before = os.getloadavg()
    with _workspace() as new_world:
        world, _ = new_world()
        pack = _compile(world, _pack_files(REFERENCE_PACK))
        scenario = _scenario(pack, None, args.days, args.per_day, False, None)
        world, clock = new_world()
        simulation = Simulation(world, clock, pack, scenario, seed=args.seed)
        simulation.prepare()
        started, cpu_started = time.perf_counter(), time.process_time()
        tally = simulation.run()
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        figures = report.figures(simulation, "reference")
    load_after = os.getloadavg()
    cases_per_second = tally.reported / wall
    month = TARGET_CASES / cases_per_second
    print(
        f"scenario: the reference simulation.yaml, {args.days} day(s) at {args.per_day:g} reports a day, seed {args.seed}"
    )
    print(
        f"cases {tally.reported}, commands {tally.commands}, events {figures.events}, timer ticks {tally.timer_ticks}, "
        f"refused {sum(tally.refused.values())}"
    )
    print(f"wall {wall:.1f} s: {figures.events / wall:,.0f} events/s, {cases_per_second:.1f} cases/s")
    print(
        f"CPU {cpu:.1f} s (one process; the figure least moved by the machine's load): "
        f"{figures.events / cpu:,.0f} events per CPU-second, {tally.reported / cpu:.1f} cases per CPU-second; "
        f"a month of {TARGET_CASES:,} cases: {TARGET_CASES * cpu / tally.reported:,.0f} CPU-seconds"
    )
    print(
        f"baseline in the same run: engine commands and timers {tally.engine_seconds:.1f} s "
        f"({tally.engine_seconds / wall:.0%}), reading cases back {tally.read_seconds:.1f} s "
        f"({tally.read_seconds / wall:.0%}), the simulator itself {wall - tally.engine_seconds - tally.read_seconds:.1f} s"
    )
    print(
        f"a month of {TARGET_CASES:,} cases at this rate: {month:,.0f} s "
        f"(target {TARGET_SECONDS:.0f} s: {month / TARGET_SECONDS:.1f}x the target)"
    )
    print(f"load average (1 min) before {load_before[0]:.1f}, after {load_after[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
