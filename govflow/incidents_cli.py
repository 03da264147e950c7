"""``govflow incidents list|retry``: timer runs that failed, and running their case again after
fixing the cause (e.g. ``govflow pack migrate`` to a fixed version). The API offers the same
(``GET /api/v1/incidents``, ``POST /api/v1/incidents/{id}/retry``)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

incidents_app = typer.Typer(help="Incidents: timer runs that failed, listed and retried.", no_args_is_help=True)

DbOption = Annotated[str | None, typer.Option("--database-url", help="SQLAlchemy URL (default: GOVFLOW_DATABASE_URL)")]


def _app(database_url: str | None) -> Any:
    from govflow.cli import _build, _settings

    return _build(_settings(database_url))


@incidents_app.command("list")
def list_(
    status: Annotated[str, typer.Option(help="open, resolved or all")] = "open",
    district: Annotated[str | None, typer.Option(help="only this district")] = None,
    database_url: DbOption = None,
) -> None:
    """One line per incident: id, case, element, attempts, next automatic try, error."""
    from govflow.engine.cases.incidents import list_incidents
    from govflow.engine.model.clock import iso

    found = list_incidents(
        _app(database_url).db, status=None if status == "all" else status, district=district, limit=1000
    )
    for i in found:
        retry = iso(i.retry_at) if i.retry_at and i.status == "open" else "-"
        typer.echo(f"{i.id}\t{i.status}\t{i.case_id}\t{i.element or '-'}\t{i.attempts}\t{retry}\t{i.error}")
    typer.echo(f"{len(found)} incident(s)", err=True)


@incidents_app.command("retry")
def retry(
    incident: int,
    actor: Annotated[str, typer.Option(help="who retries, for the record")] = "operator",
    database_url: DbOption = None,
) -> None:
    """Run the incident's case again now; exits 1 (the incident stays open) if it fails again."""
    from govflow.engine.cases.timers import retry_incident
    from govflow.engine.model.errors import GovflowError

    try:
        done = retry_incident(_app(database_url).cases, incident, actor=actor)
    except GovflowError as exc:
        typer.echo(f"incident {incident}: {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"incident {done.id} resolved: case {done.case_id} ran again")
