"""``govflow simulate``: try a deadline, staffing or routing change on a month of cases before it goes live.

The composition for a simulation: each run gets its own throw-away SQLite database (a copy of
one migrated template in a temporary folder, deleted afterwards) and a full application built
by :func:`govflow.bootstrap.build` on a manual clock, so the simulated cases go through the
same dispatch, Casbin checks, diagrams, timers and projections as real ones. The engine side
is :mod:`govflow.engine.simulation`; docs/simulation.md explains the scenario and the figures.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from govflow.settings import REFERENCE_PACK

err = Console(stderr=True, soft_wrap=True)
MAX_REPLICATIONS = 50
MAX_JOBS = 16


class SimulationRefused(Exception):
    """A bad option or scenario: one line (and the scenario's issues), before anything runs."""

    def __init__(self, message: str, issues: list[Any] | None = None) -> None:
        super().__init__(message)
        self.issues = issues or []


def simulate(
    pack: Annotated[
        Path | None, typer.Option(help="the pack folder or zip to simulate (default: the reference pack)")
    ] = None,
    scenario: Annotated[
        Path | None,
        typer.Option(help="a scenario file (default: the pack's simulation.yaml, else one from its catalog)"),
    ] = None,
    days: Annotated[int | None, typer.Option(help="simulate this many days (overrides the scenario's period)")] = None,
    per_day: Annotated[
        float | None, typer.Option("--per-day", help="reports on an ordinary day (scales the scenario)")
    ] = None,
    seed: Annotated[int, typer.Option(help="the random seed: the same seed and scenario give the same figures")] = 7,
    compare: Annotated[
        str | None,
        typer.Option(help="another version: a pack folder/zip, or VERSION / NAME@VERSION deployed in the database"),
    ] = None,
    replications: Annotated[
        int | None, typer.Option(help="runs per version with seeds seed, seed+1, … (default: 5 with --compare, else 1)")
    ] = None,
    from_history: Annotated[
        bool, typer.Option("--from-history", help="scenario defaults from the district's record in the database")
    ] = False,
    html: Annotated[Path, typer.Option(help="where to write the HTML report")] = Path("simulation-report.html"),
    jobs: Annotated[
        int | None, typer.Option(help="runs at a time in separate processes (default: 2 with several runs, else 1)")
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="the database of --from-history and deployed --compare versions"),
    ] = None,
) -> None:
    """Run a pack version through the real engine on a simulated clock and report the supervision rates."""
    from govflow.engine.model.errors import PackError

    try:
        _simulate(
            pack or REFERENCE_PACK,
            scenario,
            days,
            per_day,
            seed,
            compare,
            replications,
            from_history,
            html,
            database_url,
            jobs,
        )
    except SimulationRefused as exc:
        err.print(f"[red]refused:[/] {exc}", markup=True, highlight=False)
        for issue in exc.issues:
            print(str(issue))
        raise typer.Exit(1) from None
    except PackError as exc:
        err.print(f"[red]refused:[/] {exc.message}", highlight=False)
        for issue in exc.issues:
            print(str(issue))
        raise typer.Exit(1) from None


def _simulate(
    pack_path: Path,
    scenario_path: Path | None,
    days: int | None,
    per_day: float | None,
    seed: int,
    compare: str | None,
    replications: int | None,
    from_history: bool,
    html_path: Path,
    database_url: str | None,
    jobs: int | None = None,
) -> None:
    from govflow.engine.simulation import report

    runs = replications if replications is not None else (5 if compare else 1)
    if not 1 <= runs <= MAX_REPLICATIONS:
        raise SimulationRefused(f"--replications must be 1 to {MAX_REPLICATIONS}, not {runs}")
    if seed < 0:
        raise SimulationRefused(f"--seed must be 0 or more, not {seed}")
    if not pack_path.exists():
        raise SimulationRefused(f"--pack {pack_path}: no such folder or zip")
    with _workspace() as new_world:
        first = new_world()
        pack_a = _compile(first[0], _pack_files(pack_path))
        scenario_a = _scenario(pack_a, scenario_path, days, per_day, from_history, database_url)
        where = "the reference pack" if pack_path == REFERENCE_PACK else pack_path
        versions = [(pack_a, scenario_a, _label(pack_a, where))]
        if compare is not None:
            files_b, where = _version_files(compare, pack_a, database_url)
            pack_b = _compile(first[0], files_b)
            scenario_b = (
                scenario_a
                if scenario_path is not None
                else _scenario(pack_b, None, days, per_day, from_history, database_url)
            )
            versions.append((pack_b, scenario_b, _label(pack_b, where)))
        plan = [(index, seed + r) for r in range(runs) for index in range(len(versions))]
        workers = jobs if jobs is not None else (min(2, os.cpu_count() or 1) if len(plan) > 1 else 1)
        if not 1 <= workers <= MAX_JOBS:
            raise SimulationRefused(f"--jobs must be 1 to {MAX_JOBS}, not {workers}")
        results: dict[int, list[Any]] = {i: [] for i in range(len(versions))}
        if workers == 1 or len(plan) == 1:
            for n, (index, run_seed) in enumerate(plan):
                pack, scenario, label = versions[index]
                simulation = _run(new_world, pack, scenario, run_seed, label, f"{n + 1}/{len(plan)}")
                results[index].append(report.figures(simulation, label))
        else:
            shipped = [(dict(pack.files), scenario, label) for pack, scenario, label in versions]
            done = _in_parallel(workers, shipped, plan)
            for key in plan:
                results[key[0]].append(done[key])
        total_events = sum(f.events for runs_of in results.values() for f in runs_of)
        total_seconds = sum(f.wall_seconds for runs_of in results.values() for f in runs_of)
    if compare is None:
        text = report.table(results[0][0]) if runs == 1 else "".join(report.table(f) for f in results[0])
        page = report.html_report(results[0])
    else:
        comparison = report.compare(results[0], results[1])
        text = report.comparison_table(comparison)
        page = report.html_report([results[0][0], results[1][0]], comparison)
    print(text, end="")
    html_path.write_text(page, encoding="utf-8")
    rate = total_events / total_seconds if total_seconds else 0.0
    err.print(
        f"{total_events} events in {total_seconds:.1f} s of simulation ({rate:,.0f} events/s); report: {html_path}",
        highlight=False,
    )


@contextmanager
def _workspace() -> Iterator[Callable[[], tuple[Any, Any]]]:
    """A temporary folder with a migrated template database; each world gets its own copy."""
    from govflow.bootstrap import build
    from govflow.engine.model.clock import ManualClock
    from govflow.engine.store.db import make_engine
    from govflow.engine.store.migrate import upgrade

    folder = Path(tempfile.mkdtemp(prefix="govflow-simulation-"))
    template = folder / "template.sqlite3"
    engine = make_engine(f"sqlite:///{template}")
    upgrade(engine)
    engine.dispose()
    made = [0]
    worlds: list[Any] = []

    def new_world() -> tuple[Any, Any]:
        made[0] += 1
        path = folder / f"run-{made[0]}.sqlite3"
        shutil.copyfile(template, path)
        clock = ManualClock()
        world = build(f"sqlite:///{path}", clock=clock)
        worlds.append(world)
        return world, clock

    try:
        yield new_world
    finally:
        for world in worlds:
            world.db.dispose()
        shutil.rmtree(folder, ignore_errors=True)


def _pack_files(path: Path) -> dict[str, bytes]:
    from govflow.cli import _offline_resolver, _read_pack_files
    from govflow.engine.packs.loader import resolve_extends

    return resolve_extends(_read_pack_files(path), _offline_resolver([]))


def _compile(world: Any, files: dict[str, bytes]) -> Any:
    return world.packs.compile(files)


def _label(pack: Any, where: Any) -> str:
    return f"{pack.manifest.name} {pack.manifest.version} ({where if isinstance(where, str) else Path(where).name})"


def _version_files(compare: str, pack_a: Any, database_url: str | None) -> tuple[dict[str, bytes], str]:
    """The files of the version to compare with: a folder/zip, else a version deployed in the database."""
    path = Path(compare)
    if path.exists():
        return _pack_files(path), path.name
    name, _, version = compare.rpartition("@")
    name = name or pack_a.manifest.name
    from govflow.cli import _build, _settings
    from govflow.engine.model.errors import NotFound

    app = _build(_settings(database_url))
    try:
        return dict(app.packs.get(name, version).files), f"{name}@{version}"
    except NotFound:
        raise SimulationRefused(
            f"--compare {compare}: no such folder or zip, and no version {version} of {name} in the database"
        ) from None


def _scenario(
    pack: Any, path: Path | None, days: int | None, per_day: float | None, from_history: bool, database_url: str | None
) -> Any:
    from govflow.engine.simulation.scenario import FILENAME, parse_scenario, read_scenario

    if path is not None:
        if not path.is_file():
            raise SimulationRefused(f"--scenario {path}: no such file")
        content, filename = path.read_bytes(), str(path)
    else:
        content, filename = pack.files.get(FILENAME, b""), FILENAME
    data, lines, issues = read_scenario(content, filename)
    if data is None:
        raise SimulationRefused(f"the scenario {filename} is invalid", issues)
    defaults = _history(pack, database_url) if from_history else None
    steps = list(pack.diagrams.user_tasks)
    scenario, issues = parse_scenario(
        data, pack.catalog, steps=steps, lines=lines, filename=filename, defaults=defaults
    )
    if scenario is None:
        raise SimulationRefused(f"the scenario {filename} is invalid: {len(issues)} issue(s)", issues)
    if days is not None or per_day is not None:
        raw = scenario.with_overrides(days=days, per_day=per_day)
        scenario, issues = parse_scenario(raw, pack.catalog, steps=steps, filename="the command line")
        if scenario is None:
            messages = "; ".join(i.message for i in issues)
            raise SimulationRefused(
                f"--days/--per-day: {messages.replace('period.days', '--days').replace('arrivals.per_day', '--per-day')}"
            )
    return scenario


def _history(pack: Any, database_url: str | None) -> dict[str, Any]:
    from govflow.cli import _build, _settings
    from govflow.engine.simulation.history import history_defaults

    app = _build(_settings(database_url))
    policy = pack.runtime.deadlines
    tz = policy.working_time.tz if policy is not None else dt.UTC
    return history_defaults(app.db, pack.catalog.district, tz)


def _run(new_world: Callable[[], tuple[Any, Any]], pack: Any, scenario: Any, seed: int, label: str, which: str) -> Any:
    from govflow.engine.simulation.runner import Simulation

    world, clock = new_world()
    simulation = Simulation(world, clock, pack, scenario, seed=seed)
    simulation.prepare()
    columns = (
        TextColumn(f"{label} seed {seed} [{which}]"),
        BarColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True) as progress:
        bar = progress.add_task("", total=1.0)

        def advance(done: float, tally: Any) -> None:
            progress.update(bar, completed=done, description=f"{tally.reported} reports, {tally.commands} commands")

        simulation.progress = advance
        try:
            simulation.run()
        except KeyboardInterrupt:
            progress.stop()
            _interrupted(simulation)
            raise typer.Exit(130) from None
    return simulation


def _worker_runs(
    versions: list[tuple[dict[str, bytes], Any, str]], runs: list[tuple[int, int]]
) -> list[tuple[int, int, Any]]:
    """Some runs in a worker process: each version compiled once there, each run on its own database."""
    from govflow.engine.simulation import report
    from govflow.engine.simulation.runner import Simulation

    out = []
    with _workspace() as new_world:
        world, _ = new_world()
        packs = [_compile(world, files) for files, _, _ in versions]
        for index, seed in runs:
            world, clock = new_world()
            simulation = Simulation(world, clock, packs[index], versions[index][1], seed=seed)
            simulation.prepare()
            simulation.run()
            out.append((index, seed, report.figures(simulation, versions[index][2])))
            world.db.dispose()
    return out


def _in_parallel(
    workers: int, versions: list[tuple[dict[str, bytes], Any, str]], plan: list[tuple[int, int]]
) -> dict[tuple[int, int], Any]:
    """The runs of ``plan`` split over ``workers`` processes; figures by (version, seed)."""
    chunks = [plan[w::workers] for w in range(workers)]
    results: dict[tuple[int, int], Any] = {}
    columns = (TextColumn(f"{len(plan)} runs in {workers} processes"), BarColumn(), TimeElapsedColumn())
    context = multiprocessing.get_context("spawn")  # no fork of a process holding connections and threads
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(_worker_runs, versions, chunk) for chunk in chunks if chunk]
        try:
            with Progress(*columns, console=err, transient=True) as progress:
                bar = progress.add_task("", total=len(futures))
                for future in as_completed(futures):
                    results.update({(index, seed): figures for index, seed, figures in future.result()})
                    progress.update(bar, advance=1)
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            err.print(
                f"interrupted: {len(results)} of {len(plan)} runs finished; nothing is reported for a partial comparison"
            )
            raise typer.Exit(130) from None
    return results


def _interrupted(simulation: Any) -> None:
    tally, scenario = simulation.tally, simulation.scenario
    at = tally.clock or simulation.start
    day = (at - simulation.start).days + 1
    local = at.astimezone(simulation.tz).strftime("%Y-%m-%d %H:%M")
    err.print(
        f"interrupted at simulated {local} (day {day} of {scenario.days + scenario.drain_days}): "
        f"{tally.reported} of {len(simulation.arrivals)} reports made, {tally.commands} commands, "
        f"{tally.timer_ticks} timer ticks; nothing is reported for a partial run",
        highlight=False,
    )


__all__ = ["simulate"]
