"""The govflow command line: serve, worker, pack, db, principals."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Annotated

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

DbOption = Annotated[
    str | None,
    typer.Option("--database-url", help="SQLAlchemy URL (default: GOVFLOW_DATABASE_URL or an SQLite file)"),
]


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
    from govflow.engine.access.identity import parse_principals, store_principals

    catalogs = [govflow_app.packs.active(d).catalog for d in govflow_app.packs.districts()]
    entries = parse_principals(path.read_text(encoding="utf-8"), catalogs, filename=str(path.name))
    with Session(govflow_app.db) as session, session.begin():
        count = store_principals(session, entries, govflow_app.clock.now())
    govflow_app.access.refresh_grants()
    return count


@app.command()
def serve(
    pack: Annotated[
        Path | None, typer.Option(help="pack folder to deploy and activate at start (default: the reference pack)")
    ] = None,
    demo: Annotated[bool, typer.Option(help="load the pack's demo principals (policies/demo-principals.yaml)")] = False,
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    database_url: DbOption = None,
) -> None:
    """Run the REST API with the in-process timer loop (SQLite file by default)."""
    import uvicorn

    from govflow.api.app import create_app
    from govflow.bootstrap import deploy_folder
    from govflow.engine.cases.timers import TimerLoop
    from govflow.engine.store.migrate import upgrade

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("spiff").setLevel(logging.WARNING)  # per-task state changes are on the case record already
    settings = _settings(database_url)
    govflow_app = _build(settings)
    upgrade(govflow_app.db)
    pack_path = pack or settings.pack_path
    loaded = deploy_folder(govflow_app, pack_path)
    console.print(
        f"[green]pack[/] {loaded.manifest.name} {loaded.manifest.version} active for {loaded.manifest.district}"
    )
    if demo:
        count = _load_principals(govflow_app, pack_path / "policies" / "demo-principals.yaml")
        console.print(f"[green]demo principals[/] {count} loaded (tokens in policies/demo-principals.yaml)")
    _freeze_heap()
    loop = TimerLoop(govflow_app.cases, settings.timer_interval_seconds)
    loop.start()
    try:
        uvicorn.run(
            create_app(govflow_app, max_request_bytes=settings.max_request_bytes),
            host=host or settings.host,
            port=port or settings.port,
        )
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
    from govflow.engine.cases.timers import fire_due

    govflow_app = _build(_settings(database_url))
    while True:
        report = fire_due(govflow_app.cases, batch=batch)
        if report.due:
            console.print(
                f"due {report.due} fired {report.fired} idle {report.idle} conflicts {report.conflicts} failed {report.failed}"
            )
        if once:
            return
        if report.due < batch:
            time.sleep(interval)


BaseOption = Annotated[
    list[Path], typer.Option("--base", help="a base pack folder for `extends` (the reference pack is always known)")
]


def _read_pack_files(path: Path) -> dict[str, bytes]:
    from govflow.engine.packs.loader import read_folder, read_zip

    return read_zip(path.read_bytes()) if path.suffix == ".zip" else read_folder(path)


def _offline_resolver(bases: list[Path]):
    """Resolve `extends` from folders (the reference pack and --base folders), without a database."""
    from govflow.engine.packs.loader import load_pack, read_folder

    def resolve(name: str, version: str | None):
        for folder in [*bases, _settings().pack_path]:
            files = read_folder(folder)
            pack = load_pack(files, resolve_base=resolve)
            if pack.manifest.name == name and version in (None, pack.manifest.version):
                return pack.files
        raise LookupError(
            f"no base pack {name}{'@' + version if version else ''} among {[str(b) for b in bases] + ['the reference pack']}"
        )

    return resolve


def _refused(exc) -> None:
    console.print(f"[red]refused:[/] {exc.message}")
    for issue in getattr(exc, "issues", []):
        print(str(issue))
    for err in getattr(exc, "errors", []):
        print(err)
    raise typer.Exit(1)


@pack_app.command("validate")
def pack_validate(path: Path, base: BaseOption = []) -> None:  # noqa: B006 - typer reads the default
    """Validate a pack folder (or .zip): XML safety, schema, scripts, Spiff parse, catalog, policies,
    responsibility list, decisions, plugins — and its base when it `extends` one."""
    from govflow.engine.model.errors import PackError
    from govflow.engine.packs.loader import load_pack
    from govflow.plugins import plugin_manager

    pm = plugin_manager()
    try:
        pack = load_pack(
            _read_pack_files(path),
            available_plugins=[n for n, _ in pm.list_name_plugin()],
            resolve_base=_offline_resolver(base),
        )
    except PackError as exc:
        console.print(f"[red]invalid:[/] {exc.message}")
        for issue in exc.issues:
            print(str(issue))
        raise typer.Exit(1) from None
    m = pack.manifest
    print(
        f"ok: {m.name} {m.version} ({m.district}): {len(pack.diagrams.specs)} process(es), "
        f"{len(pack.catalog.units)} units, {len(pack.catalog.matters)} matters, hash {pack.content_hash[:12]}"
    )


@pack_app.command("show")
def pack_show(
    target: Annotated[str, typer.Argument(help="a pack folder/zip, or NAME@VERSION of a deployed version")],
    base: BaseOption = [],  # noqa: B006
    database_url: DbOption = None,
) -> None:
    """Print the effective pack (after `extends`): manifest, merged settings, every file and its origin."""
    import json

    from govflow.engine.model.errors import GovflowError
    from govflow.engine.packs.admin import describe
    from govflow.engine.packs.loader import load_pack

    try:
        if Path(target).exists():
            pack = load_pack(_read_pack_files(Path(target)), resolve_base=_offline_resolver(base))
        else:
            name, _, version = target.partition("@")
            govflow_app = _build(_settings(database_url))
            if not version:
                version = next(v.version for v in reversed(govflow_app.packs.versions()) if v.name == name)
            pack = govflow_app.packs.get(name, version)
    except (GovflowError, StopIteration) as exc:
        if isinstance(exc, StopIteration):
            console.print(f"[red]no deployed pack named {target}[/]")
            raise typer.Exit(1) from None
        _refused(exc)
    print(json.dumps(describe(pack), ensure_ascii=False, indent=2, default=str))


@pack_app.command("deploy")
def pack_deploy(
    path: Path,
    activate: Annotated[bool, typer.Option(help="make it the district's active version")] = True,
    database_url: DbOption = None,
) -> None:
    """Validate a pack folder (or .zip) and store it as a version (and activate it)."""
    from govflow.engine.model.errors import GovflowError

    govflow_app = _build(_settings(database_url))
    try:
        pack = govflow_app.packs.compile(_read_pack_files(path))
        created = govflow_app.packs.deploy(pack, actor="system.cli", now=govflow_app.clock.now(), activate=activate)
    except GovflowError as exc:
        _refused(exc)
    m = pack.manifest
    print(
        f"{'deployed' if created else 'already deployed'}: {m.name} {m.version} ({m.district}) hash {pack.content_hash[:12]}"
        + (", active" if activate else "")
    )


@pack_app.command("list")
def pack_list(district: Annotated[str | None, typer.Option()] = None, database_url: DbOption = None) -> None:
    """Deployed versions, oldest first; * marks the active version of each district."""
    govflow_app = _build(_settings(database_url))
    for v in govflow_app.packs.versions(district):
        print(
            f"{'*' if v.active else ' '} {v.district:12} {v.name:16} {v.version:10} {v.content_hash[:12]}  {v.deployed_at:%Y-%m-%d %H:%M} {v.deployed_by}"
        )


@pack_app.command("activate")
def pack_activate(name: str, version: str, database_url: DbOption = None) -> None:
    """Make a deployed version the active one of its district (new cases start on it)."""
    from govflow.engine.model.errors import GovflowError

    govflow_app = _build(_settings(database_url))
    try:
        pack = govflow_app.packs.activate(name, version)
    except GovflowError as exc:
        _refused(exc)
    print(f"active for {pack.manifest.district}: {name} {version}")


@pack_app.command("rollback")
def pack_rollback(district: str, database_url: DbOption = None) -> None:
    """Re-activate the version deployed before the active one (running cases are not touched)."""
    from govflow.engine.model.errors import GovflowError

    govflow_app = _build(_settings(database_url))
    try:
        pack = govflow_app.packs.rollback(district)
    except GovflowError as exc:
        _refused(exc)
    print(f"active for {district}: {pack.manifest.name} {pack.manifest.version}")


@pack_app.command("migrate")
def pack_migrate(
    name: str,
    source: Annotated[str, typer.Option("--from", help="the version the cases run on")],
    target: Annotated[str, typer.Option("--to", help="the version to move them to")],
    case: Annotated[list[str], typer.Option(help="only these case ids (repeatable)")] = [],  # noqa: B006
    dry_run: Annotated[bool, typer.Option(help="check only; change nothing")] = False,
    database_url: DbOption = None,
) -> None:
    """Move running cases to another version when safe; list those refused and why."""
    from govflow.engine.cases.migration import migrate
    from govflow.engine.model.errors import GovflowError

    govflow_app = _build(_settings(database_url))
    try:
        report = migrate(
            govflow_app.uow,
            govflow_app.packs,
            name,
            source,
            target,
            actor="system.cli",
            now=govflow_app.clock.now(),
            case_ids=case or None,
            dry_run=dry_run,
        )
    except GovflowError as exc:
        _refused(exc)
    verb = "would migrate" if dry_run else "migrated"
    print(
        f"{verb} {len(report.migrated)} case(s) from {report.source} to {report.target}; "
        f"refused {len(report.refused)}; conflicts {len(report.conflicts)}"
    )
    for case_id, reasons in report.refused.items():
        print(f"refused {case_id}: " + "; ".join(reasons))
    if report.refused or report.conflicts:
        raise typer.Exit(2)


@pack_app.command("export")
def pack_export(
    name: str, version: str, output: Annotated[Path, typer.Option("-o", "--output")], database_url: DbOption = None
) -> None:
    """Write a deployed version's zip (the effective pack) to a file."""
    from govflow.engine.model.errors import GovflowError

    govflow_app = _build(_settings(database_url))
    try:
        output.write_bytes(govflow_app.packs.archive(name, version))
    except GovflowError as exc:
        _refused(exc)
    print(f"wrote {output}")


@db_app.command("upgrade")
def db_upgrade(database_url: DbOption = None) -> None:
    """Create or migrate the schema to the latest version."""
    from govflow.engine.store.db import make_engine
    from govflow.engine.store.migrate import upgrade

    settings = _settings(database_url)
    upgrade(make_engine(settings.database_url))
    print("database is up to date")


@principals_app.command("load")
def principals_load(path: Path, database_url: DbOption = None) -> None:
    """Create or update principals from a YAML file (see policies/demo-principals.yaml)."""
    from govflow.engine.model.errors import GovflowError

    govflow_app = _build(_settings(database_url))
    try:
        count = _load_principals(govflow_app, path)
    except GovflowError as exc:
        console.print(f"[red]refused:[/] {exc.message}")
        for err in getattr(exc, "errors", []):
            print(err)
        raise typer.Exit(1) from None
    print(f"{count} principals loaded")


def _freeze_heap() -> None:
    """Move start-up objects (compiled specs, plugins, catalogs) out of the GC's reach.

    A long-running process then collects only what requests allocate (gc.freeze).
    """
    import gc

    gc.collect()
    gc.freeze()


def main() -> None:  # pragma: no cover
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    main()
