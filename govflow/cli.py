"""The govflow command line: serve, worker, pack, db, principals."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from sqlalchemy.orm import Session

from govflow.settings import Settings

app = typer.Typer(help="govflow: configurable front-line governance workflows.", no_args_is_help=True)
pack_app = typer.Typer(help="Process packs.", no_args_is_help=True)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
principals_app = typer.Typer(help="Principals (who may log in, with which unit and roles).", no_args_is_help=True)
app.add_typer(pack_app, name="pack")
app.add_typer(db_app, name="db")
app.add_typer(principals_app, name="principals")
console = Console(stderr=True)

DbOption = Annotated[Optional[str], typer.Option("--database-url", help="SQLAlchemy URL (default: GOVFLOW_DATABASE_URL or an SQLite file)")]


def _settings(database_url: str | None = None) -> Settings:
    settings = Settings()
    if database_url:
        settings.database_url = database_url
    if settings.database_url.startswith("sqlite:///") and not settings.database_url.startswith("sqlite:////"):
        Path(settings.database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return settings


def _build(settings: Settings):
    from govflow.bootstrap import build

    return build(settings.database_url)


def _load_principals(govflow_app, path: Path) -> int:
    from govflow.engine.identity import parse_principals, store_principals

    catalogs = [govflow_app.packs.active(d).catalog for d in govflow_app.packs.districts()]
    entries = parse_principals(path.read_text(encoding="utf-8"), catalogs, filename=str(path.name))
    with Session(govflow_app.db) as session, session.begin():
        count = store_principals(session, entries, govflow_app.clock.now())
    govflow_app.packs.refresh_grants()
    return count


@app.command()
def serve(
    pack: Annotated[Optional[Path], typer.Option(help="pack folder to deploy and activate at start (default: the reference pack)")] = None,
    demo: Annotated[bool, typer.Option(help="load the pack's demo principals (policies/demo-principals.yaml)")] = False,
    host: Annotated[Optional[str], typer.Option()] = None,
    port: Annotated[Optional[int], typer.Option()] = None,
    database_url: DbOption = None,
) -> None:
    """Run the REST API with the in-process timer loop (SQLite file by default)."""
    import uvicorn

    from govflow.api.app import create_app
    from govflow.bootstrap import deploy_folder
    from govflow.engine.migrate import upgrade
    from govflow.engine.timers import TimerLoop

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = _settings(database_url)
    govflow_app = _build(settings)
    upgrade(govflow_app.db)
    pack_path = pack or settings.pack_path
    loaded = deploy_folder(govflow_app, pack_path)
    console.print(f"[green]pack[/] {loaded.manifest.name} {loaded.manifest.version} active for {loaded.manifest.district}")
    if demo:
        count = _load_principals(govflow_app, pack_path / "policies" / "demo-principals.yaml")
        console.print(f"[green]demo principals[/] {count} loaded (tokens in policies/demo-principals.yaml)")
    loop = TimerLoop(govflow_app.cases, settings.timer_interval_seconds)
    loop.start()
    try:
        uvicorn.run(create_app(govflow_app, max_request_bytes=settings.max_request_bytes), host=host or settings.host, port=port or settings.port)
    finally:
        loop.stop()


@app.command()
def worker(
    database_url: DbOption = None,
    interval: Annotated[float, typer.Option(help="seconds between ticks")] = 1.0,
    batch: Annotated[int, typer.Option(help="due cases per batch")] = 200,
    once: Annotated[bool, typer.Option(help="run one tick and exit")] = False,
) -> None:
    """Fire due timers from the database (several workers may run at once)."""
    from govflow.engine.timers import fire_due

    govflow_app = _build(_settings(database_url))
    while True:
        report = fire_due(govflow_app.cases, batch=batch)
        if report.due:
            console.print(f"due {report.due} fired {report.fired} idle {report.idle} conflicts {report.conflicts} failed {report.failed}")
        if once:
            return
        if report.due < batch:
            time.sleep(interval)


@pack_app.command("validate")
def pack_validate(path: Path) -> None:
    """Validate a pack folder (or .zip): XML safety, schema, scripts, Spiff parse, catalog, policies."""
    from govflow.engine.errors import PackError
    from govflow.engine.packs import load_pack, read_folder, read_zip
    from govflow.plugins import plugin_manager

    pm = plugin_manager()
    try:
        files = read_zip(path.read_bytes()) if path.suffix == ".zip" else read_folder(path)
        pack = load_pack(files, available_plugins=[n for n, _ in pm.list_name_plugin()])
    except PackError as exc:
        console.print(f"[red]invalid:[/] {exc.message}")
        for issue in exc.issues:
            print(str(issue))
        raise typer.Exit(1) from None
    m = pack.manifest
    print(f"ok: {m.name} {m.version} ({m.district}): {len(pack.diagrams.specs)} process(es), "
          f"{len(pack.catalog.units)} units, {len(pack.catalog.matters)} matters, hash {pack.content_hash[:12]}")


@db_app.command("upgrade")
def db_upgrade(database_url: DbOption = None) -> None:
    """Create or migrate the schema to the latest version."""
    from govflow.engine.db import make_engine
    from govflow.engine.migrate import upgrade

    settings = _settings(database_url)
    upgrade(make_engine(settings.database_url))
    print("database is up to date")


@principals_app.command("load")
def principals_load(path: Path, database_url: DbOption = None) -> None:
    """Create or update principals from a YAML file (see policies/demo-principals.yaml)."""
    from govflow.engine.errors import GovflowError

    govflow_app = _build(_settings(database_url))
    try:
        count = _load_principals(govflow_app, path)
    except GovflowError as exc:
        console.print(f"[red]refused:[/] {exc.message}")
        for err in getattr(exc, "errors", []):
            print(err)
        raise typer.Exit(1) from None
    print(f"{count} principals loaded")


def main() -> None:  # pragma: no cover
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    main()
