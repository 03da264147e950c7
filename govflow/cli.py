"""The govflow command line: serve, worker, init, pack, db, principals.

Every command fails in one clear line on standard error with a non-zero exit code
(1: refused or failed; 2: a migration that left cases behind); ``govflow --debug
COMMAND`` (or ``GOVFLOW_DEBUG=1``) shows the traceback instead.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy.orm import Session
from typer.core import TyperGroup

from govflow.dispatch_cli import dispatch_app
from govflow.incidents_cli import incidents_app
from govflow.outbox_cli import integration_settings, outbox_app, start_delivery
from govflow.rates_cli import rates_app
from govflow.settings import REFERENCE_PACK, Settings
from govflow.simulate_cli import simulate

console = Console(stderr=True, soft_wrap=True)  # one line stays one line
log = logging.getLogger("govflow.cli")


class CliRefusal(Exception):
    """A command refuses with one line (e.g. a database whose schema is not current)."""


def _command_line_exceptions() -> tuple[type[BaseException], ...]:
    """Exits, aborts and usage errors: click prints those itself (typer may vendor its own click)."""
    found: set[type[BaseException]] = {click.exceptions.Exit, click.exceptions.Abort, click.ClickException}
    found |= {typer.Exit, typer.Abort}
    try:
        from typer._click import exceptions as vendored
    except ImportError:  # pragma: no cover - typer using click itself
        return tuple(found)
    return tuple(found | {vendored.ClickException})


_PASS_THROUGH = _command_line_exceptions()


class OneLineErrors(TyperGroup):
    """Any error a command does not handle itself becomes one line on stderr and exit code 1."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except _PASS_THROUGH:
            raise
        except Exception as exc:
            if ctx.meta.get("govflow.debug") or os.environ.get("GOVFLOW_DEBUG") == "1":
                raise
            _print_error(exc)
            raise typer.Exit(1) from None


def _print_error(exc: Exception) -> None:
    from govflow.engine.model.errors import GovflowError, PackError

    if isinstance(exc, PackError):
        console.print(f"[red]refused:[/] {escape(exc.message)}")
        for issue in exc.issues:
            print(str(issue))
        return
    if isinstance(exc, GovflowError | CliRefusal):
        console.print(f"[red]refused:[/] {escape(str(exc))}")
        return
    console.print(f"[red]error:[/] {escape(one_line(exc))} (govflow --debug … shows the traceback)")


def one_line(exc: BaseException) -> str:
    """A one-line account of an unexpected error (database, file system, anything else)."""
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    if isinstance(exc, DBAPIError) and exc.orig is not None:
        detail = str(exc.orig).strip().splitlines()
        return f"database error: {detail[0] if detail else type(exc.orig).__name__}"
    if isinstance(exc, SQLAlchemyError):
        return f"database error: {str(exc).strip().splitlines()[0]}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


app = typer.Typer(
    help="govflow: configurable front-line governance workflows.",
    no_args_is_help=True,
    cls=OneLineErrors,
    pretty_exceptions_enable=False,
)
pack_app = typer.Typer(help="Process packs.", no_args_is_help=True)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
principals_app = typer.Typer(help="Principals (who may log in, with which unit and roles).", no_args_is_help=True)
app.add_typer(pack_app, name="pack")
app.add_typer(db_app, name="db")
app.add_typer(principals_app, name="principals")
app.add_typer(outbox_app, name="outbox")
app.add_typer(dispatch_app, name="dispatch")  # smart dispatch: train and stage a pack's model
app.add_typer(rates_app, name="rates")
app.add_typer(incidents_app, name="incidents")  # timer runs that failed: list, retry
app.command("simulate")(simulate)  # policy simulation on a simulated clock (docs/simulation.md)


@app.callback()
def _main(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="show the traceback of an unexpected error")] = False,
) -> None:
    """govflow: configurable front-line governance workflows."""
    ctx.meta["govflow.debug"] = debug


DbOption = Annotated[
    str | None,
    typer.Option("--database-url", help="SQLAlchemy URL (default: GOVFLOW_DATABASE_URL or an SQLite file)"),
]


def _settings(database_url: str | None = None) -> Settings:
    settings = Settings()
    if database_url:
        settings.database_url = database_url
    if settings.database_url.startswith("sqlite:///"):
        path = settings.database_url.removeprefix("sqlite:///").partition("?")[0]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    return settings


def _say(message: str) -> None:
    console.print(escape(message))


def _shown(url: str) -> str:
    """A database URL fit to print (no password)."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _build(settings: Settings, say: Callable[[str], None] = _say):
    """The application on the settings' database, its schema checked first.

    An embedded SQLite database is created or upgraded on the spot (and says so); any
    other database whose schema is not current is refused with the command to run.
    """
    from govflow.bootstrap import build

    govflow_app = build(settings.database_url)
    govflow_app.integration_settings = integration_settings()  # webhooks and delivery (GOVFLOW_WEBHOOK_*)
    _ensure_schema(govflow_app.db, settings.database_url, say)
    return govflow_app


def _ensure_schema(engine, url: str, say: Callable[[str], None]) -> None:
    from govflow.engine.store.migrate import status, upgrade

    found = status(engine)
    if found.is_current:
        return
    if engine.dialect.name != "sqlite":
        raise CliRefusal(f"{found.describe()} ({_shown(url)}): run `govflow db upgrade` first")
    say(_upgraded(upgrade(engine), url))


def _upgraded(done, url: str) -> str:
    if done.current is None:
        return f"created the database schema ({done.head}) in {_shown(url)}"
    if done.is_current:
        return f"the database schema is already current ({done.head}) in {_shown(url)}"
    return f"upgraded the database schema from {done.current} to {done.head} in {_shown(url)}"


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
        Path | None,
        typer.Option(help="the pack folder for its district (default: the reference pack); see --deploy-pack"),
    ] = None,
    deploy_pack: Annotated[
        bool,
        typer.Option(
            "--deploy-pack",
            help="deploy and activate the folder pack even if its district has an active version",
        ),
    ] = False,
    demo: Annotated[bool, typer.Option(help="load the pack's demo principals (policies/demo-principals.yaml)")] = False,
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    database_url: DbOption = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="API processes sharing the port (the timer loop runs once, in the parent process); "
            "for PostgreSQL (SQLite has one writer at a time)",
        ),
    ] = 1,
) -> None:
    """Run the REST API with the in-process timer loop (SQLite file by default).

    Start-up never changes what is live: the folder pack is deployed and activated only
    when its district has no active version (a first start), or with --deploy-pack; it
    says what it did. SIGTERM stops gracefully (requests in flight finish, then the
    timer loop stops between batches).
    """
    from govflow import serving
    from govflow.api.app import create_app
    from govflow.logs import configure

    settings = _settings(database_url)
    configure(settings.log_format)
    serve_log = logging.getLogger("govflow.serve")
    serve_log.info("database %s", _shown(settings.database_url))
    govflow_app = _build(settings, say=serve_log.info)
    pack_path = pack or settings.pack_path
    outcome = serving.start_up(govflow_app, pack_path, deploy=deploy_pack)
    serve_log.info(outcome.message, extra={"district": outcome.district, "pack_changed": outcome.changed})
    if demo:
        count = _load_principals(govflow_app, pack_path / "policies" / "demo-principals.yaml")
        serve_log.info("demo principals: %d loaded (tokens in policies/demo-principals.yaml)", count)
    if workers > 1:
        _serve_workers(govflow_app, settings, workers, host=host or settings.host, port=port or settings.port)
        return
    _freeze_heap()
    delivery = start_delivery(govflow_app, serving=True)  # the outbox: webhooks and plugin sinks
    serving.run(
        govflow_app,
        create_app(govflow_app, max_request_bytes=settings.max_request_bytes),
        host=host or settings.host,
        port=port or settings.port,
        timer_interval=settings.timer_interval_seconds,
        graceful_timeout=settings.graceful_timeout_seconds,
    )
    delivery.stop()


def _serve_workers(govflow_app, settings: Settings, workers: int, *, host: str, port: int) -> None:
    """``serve --workers N``: N API processes on the port; timers and the outbox's delivery here, once."""
    import tempfile

    from govflow import serving

    # the API processes read the same settings from the environment (spawned, they inherit it)
    os.environ["GOVFLOW_DATABASE_URL"] = settings.database_url
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # /metrics adds up every process's counters
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="govflow-metrics-")
    logging.getLogger("govflow.serve").info("%d API processes on %s:%d; the timer loop runs here", workers, host, port)
    delivery = start_delivery(govflow_app, serving=True)
    serving.run_workers(
        govflow_app,
        workers=workers,
        host=host,
        port=port,
        timer_interval=settings.timer_interval_seconds,
        graceful_timeout=settings.graceful_timeout_seconds,
    )
    delivery.stop()


@app.command()
def worker(
    database_url: DbOption = None,
    interval: Annotated[float, typer.Option(help="seconds between ticks")] = 1.0,
    batch: Annotated[int, typer.Option(help="due cases per batch")] = 200,
    once: Annotated[bool, typer.Option(help="run one tick and exit")] = False,
) -> None:
    """Fire due timers from the database (several workers may run at once).

    SIGTERM or SIGINT stops it between batches: the batch being fired commits first.
    """
    import signal
    import threading

    from govflow.engine.cases.timers import fire_due

    govflow_app = _build(_settings(database_url))
    delivery = start_delivery(govflow_app, once=once)  # the outbox, in a background thread
    stopping = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stopping.set())
    while not stopping.is_set():
        report = fire_due(govflow_app.cases, batch=batch)
        if report.due:
            console.print(
                f"due {report.due} fired {report.fired} idle {report.idle} conflicts {report.conflicts} failed {report.failed}"
            )
        if once:
            return
        if report.due < batch:
            stopping.wait(interval)
    delivery.stop()
    console.print("worker stopped")


@app.command()
def init(
    folder: Annotated[Path, typer.Argument(help="a new (or empty) folder for the pack")],
    district: Annotated[str, typer.Option(help="the district's code, e.g. cangshan (lower-case ascii)")],
) -> None:
    """Scaffold a district pack that extends the reference pack and validates at once.

    Its files say in comments what to change: the district's units, street boundaries
    and responsibility list.
    """
    from govflow.scaffold import scaffold

    try:
        written = scaffold(folder, district, REFERENCE_PACK)
    except ValueError as exc:
        raise CliRefusal(str(exc)) from None
    for path in written:
        print(f"wrote {path}")
    pack_validate(folder, [])
    print(f"next: edit the files (each says what to change), then `govflow pack deploy {folder}`")


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
        for folder in [*bases, REFERENCE_PACK]:
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
    from govflow.engine.model.clock import iso

    govflow_app = _build(_settings(database_url))
    for v in govflow_app.packs.versions(district):
        print(
            f"{'*' if v.active else ' '} {v.district:12} {v.name:16} {v.version:10} {v.content_hash[:12]}  {iso(v.deployed_at)} {v.deployed_by}"
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
    engine = make_engine(settings.database_url)
    try:
        print(_upgraded(upgrade(engine), settings.database_url))
    finally:
        engine.dispose()


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
