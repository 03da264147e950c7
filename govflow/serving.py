"""What ``govflow serve`` does around the API: start-up that never changes what is live,
and a graceful stop.

Start-up (:func:`start_up`) makes sure the folder pack's district can serve:

* the district has **no active version** → the folder pack is validated, deployed and
  activated (a first start, or a fresh database);
* the district **has one** → nothing changes: the version an operator activated (through
  the API or ``govflow pack activate``) stays active after a restart, and start-up says
  which version runs and whether the folder holds another;
* ``--deploy-pack`` (``deploy=True``) → the folder pack is deployed and activated, as
  ``govflow pack deploy`` would; a changed pack under an already deployed version is
  refused (versions are immutable).

Every outcome is one sentence returned to the caller, which prints it.

Stopping (:func:`run`): on SIGTERM or SIGINT uvicorn stops accepting connections and
waits up to ``graceful_timeout_seconds`` for requests in flight (each command commits or
rolls back whole); then the in-process timer loop is told to stop and joined, so a batch
being fired finishes its transaction and no new batch starts.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from govflow.bootstrap import App
from govflow.engine.packs.loader import read_folder

log = logging.getLogger("govflow.serve")

ACTOR = "system.serve"


@dataclass(frozen=True)
class StartUp:
    """What start-up did with the folder pack (``changed``: a version was deployed or activated)."""

    district: str
    name: str
    version: str
    changed: bool
    message: str


def start_up(app: App, pack_path: Path, *, deploy: bool = False) -> StartUp:
    """Deploy the folder pack only when its district has no active version, or when told to."""
    pack = app.packs.compile(read_folder(pack_path))
    m = pack.manifest
    active = next((v for v in app.packs.versions(m.district) if v.active), None)
    if deploy or active is None:
        was_active = active is not None and (active.name, active.version) == (m.name, m.version)
        created = app.packs.deploy(pack, actor=ACTOR, now=app.clock.now(), activate=True)
        why = "as told by --deploy-pack" if deploy else "the district had no active version"
        if was_active:
            message = f"{m.district} runs {m.name} {m.version}: deployed and active already, nothing changed"
        elif created:
            message = f"deployed and activated {m.name} {m.version} for {m.district} ({why})"
        else:
            message = f"activated {m.name} {m.version} for {m.district}, deployed before ({why})"
        return StartUp(m.district, m.name, m.version, not was_active, message)
    if (active.name, active.version) == (m.name, m.version):
        same = active.content_hash == pack.content_hash
        note = (
            "the folder holds the same version"
            if same
            else f"the folder's {m.name} {m.version} differs from the deployed one "
            f"({pack.content_hash[:12]} vs {active.content_hash[:12]}): give it a new version to deploy it"
        )
        return StartUp(
            m.district, active.name, active.version, False, f"{m.district} runs {active.name} {active.version}; {note}"
        )
    return StartUp(
        m.district,
        active.name,
        active.version,
        False,
        f"{m.district} runs {active.name} {active.version} (active version kept); the folder holds "
        f"{m.name} {m.version}, not deployed: `govflow pack deploy {pack_path}` or `serve --deploy-pack` deploys it",
    )


def run(
    app: App,
    asgi: Any,
    *,
    host: str,
    port: int,
    timer_interval: float,
    graceful_timeout: float,
    timer_loop: bool = True,
) -> None:
    """Serve ``asgi`` with the in-process timer loop until SIGTERM/SIGINT; stop gracefully."""
    import uvicorn

    from govflow.engine.cases.timers import TimerLoop

    loop = TimerLoop(app.cases, timer_interval) if timer_loop else None
    config = uvicorn.Config(
        asgi,
        host=host,
        port=port,
        log_config=None,  # govflow.logs configured every logger already
        access_log=False,  # the API logs each request with its request id
        timeout_graceful_shutdown=max(1, round(graceful_timeout)),
        server_header=False,
    )
    server = uvicorn.Server(config)
    # uvicorn re-raises a captured SIGTERM once it has shut down; with this handler in place
    # that is a no-op, so the timer loop below is stopped and the process exits 0.
    previous = signal.signal(signal.SIGTERM, _ignore) if _main_thread() else None
    if loop is not None:
        loop.start()
    try:
        server.run()
    finally:
        if loop is not None:
            loop.stop()
            loop.join(timeout=graceful_timeout)
            log.info("timer loop stopped" if not loop.is_alive() else "timer loop still firing a batch; leaving it")
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    log.info("govflow stopped")


#: the ASGI factory each API process of ``govflow serve --workers N`` calls (uvicorn imports it)
WORKER_APP = "govflow.serving:worker_app"
HEALTHCHECK_SECONDS = 60


def worker_app() -> Any:
    """The API of one process of ``govflow serve --workers N``: the application built on the
    settings' database (the parent already checked its schema, deployed the pack and loaded the
    principals), without a timer loop or a delivery loop (the parent runs those, once)."""
    from govflow.api.app import create_app
    from govflow.cli import _build, _freeze_heap, _settings
    from govflow.logs import configure

    settings = _settings()
    configure(settings.log_format)
    asgi = create_app(_build(settings, say=log.info), max_request_bytes=settings.max_request_bytes)
    _freeze_heap()
    return asgi


def run_workers(
    app: App,
    *,
    workers: int,
    host: str,
    port: int,
    timer_interval: float,
    graceful_timeout: float,
) -> None:
    """Serve the API from ``workers`` processes sharing one listening socket (uvicorn's
    supervisor, processes started with ``spawn``), with the timer loop in this parent process
    only: one loop however many API processes. SIGTERM/SIGINT stops the API processes (each
    finishes its requests in flight), then the timer loop. A process that dies is replaced."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from govflow.engine.cases.timers import TimerLoop

    config = uvicorn.Config(
        WORKER_APP,
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=max(1, round(graceful_timeout)),
        server_header=False,
        # the supervisor replaces a process that does not answer its ping in time: starting one
        # (imports, packs compiled) takes seconds, more on a loaded machine than uvicorn's default 5
        timeout_worker_healthcheck=HEALTHCHECK_SECONDS,
    )
    loop = TimerLoop(app.cases, timer_interval)
    sock = config.bind_socket()
    loop.start()
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()
        loop.stop()
        loop.join(timeout=graceful_timeout)
        log.info("timer loop stopped" if not loop.is_alive() else "timer loop still firing a batch; leaving it")
    log.info("govflow stopped")


def _ignore(signum: int, frame: Any) -> None:
    """Handled by uvicorn while it runs; afterwards nothing is left to do."""


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
