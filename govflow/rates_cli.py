"""``govflow rates``: the supervision projection from the command line (rebuild, verify)."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

rates_app = typer.Typer(
    help="Supervision rates: verify or rebuild the projection from the event log.", no_args_is_help=True
)

DbOption = Annotated[str | None, typer.Option("--database-url", help="SQLAlchemy URL (default: GOVFLOW_DATABASE_URL)")]


def _app(database_url: str | None) -> Any:
    from govflow.cli import _build, _settings

    return _build(_settings(database_url))


def _report(check: Any, seconds: float) -> None:
    print(f"events {check.events} counters {check.counters} in {seconds:.1f} s")
    if check.equal:
        print("the projection equals a full recomputation from the event log")
        return
    for key, expected, stored in check.counter_differences[:20]:
        district, day, unit, matter, metric = key
        print(f"differs: {district} {day} {unit or '-'} {matter or '-'} {metric}: record {expected}, stored {stored}")
    if check.context_differences:
        print(f"differs: the remembered context of {len(check.context_differences)} case(s)")
    raise typer.Exit(1)


@rates_app.command("verify")
def verify(database_url: DbOption = None) -> None:
    """Recompute every counter from the event log and compare with the stored projection (exit 1 if not equal)."""
    from govflow.engine.oversight import projection

    started = time.perf_counter()
    check = projection.verify(_app(database_url).db)
    _report(check, time.perf_counter() - started)


@rates_app.command("rebuild")
def rebuild(
    verify_after: Annotated[bool, typer.Option("--verify", help="then verify the rebuilt projection")] = False,
    database_url: DbOption = None,
) -> None:
    """Replace the projection by a full recomputation from the event log (one transaction)."""
    from govflow.engine.oversight import projection

    db = _app(database_url).db
    started = time.perf_counter()
    fresh = projection.rebuild(db)
    print(
        f"rebuilt {len(fresh.counters)} counters of {len(fresh.contexts)} cases from {fresh.events} events "
        f"in {time.perf_counter() - started:.1f} s"
    )
    if verify_after:
        started = time.perf_counter()
        _report(projection.verify(db), time.perf_counter() - started)


@rates_app.command("warnings")
def scan_warnings(
    district: Annotated[str | None, typer.Option(help="the district (default: the only one)")] = None,
    database_url: DbOption = None,
) -> None:
    """Scan for early warnings now (bursts, rising matters, repeats) and record the new ones (run it from cron)."""
    app = _app(database_url)
    raised = app.oversight.scan_warnings(None, district)
    for warning in raised:
        evidence = warning["evidence"]
        print(
            f"{warning['kind']} {warning['unit'] or warning['place'] or '-'} {warning['matter']}: "
            f"{evidence['observed']} against a baseline of {evidence['expected']} ({warning['id']})"
        )
    print(f"{len(raised)} new warning(s)")
