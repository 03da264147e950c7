"""The outbox at the edge: its settings from the environment, the delivery loop of ``serve`` and
``worker``, and ``govflow outbox`` (status, dead letters and replays of every sink).

Settings (environment, ``GOVFLOW_`` prefix): ``WEBHOOK_ALLOWED_NETWORKS`` (comma-separated CIDRs
webhook URLs may point into although private or loopback, e.g. ``10.0.0.0/8``),
``WEBHOOK_CONNECT_TIMEOUT`` / ``WEBHOOK_READ_TIMEOUT`` (seconds), ``WEBHOOK_ATTEMPTS_PER_ROUND``,
``WEBHOOK_MAX_ROUNDS``, ``WEBHOOK_BACKOFF_INITIAL`` / ``WEBHOOK_BACKOFF_MAX`` (seconds between
rounds), ``DELIVERY_LEASE_SECONDS``, ``DELIVERY_CONCURRENCY``, ``DELIVERY_PER_SINK``,
``DELIVERY_INTERVAL_SECONDS``, ``DELIVERY_LOG_DAYS``, ``SERVE_DELIVERY`` (false: ``serve`` leaves
delivery to workers).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from pydantic_settings import BaseSettings, SettingsConfigDict

from govflow.engine.integrations.config import IntegrationSettings

outbox_app = typer.Typer(help="The outbox: delivery to webhooks and plugin sinks.", no_args_is_help=True)


class OutboxEnvironment(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GOVFLOW_", extra="ignore")

    webhook_allowed_networks: str = ""
    webhook_connect_timeout: float = 3.0
    webhook_read_timeout: float = 5.0
    webhook_attempts_per_round: int = 3
    webhook_max_rounds: int = 8
    webhook_backoff_initial: float = 5.0
    webhook_backoff_max: float = 900.0
    delivery_lease_seconds: float = 60.0
    delivery_concurrency: int = 8
    delivery_per_sink: int = 4
    delivery_interval_seconds: float = 1.0
    delivery_log_days: int = 14
    #: false: `govflow serve` leaves delivery to `govflow worker` processes
    serve_delivery: bool = True

    def settings(self) -> IntegrationSettings:
        values = self.model_dump()
        values.pop("delivery_interval_seconds")
        values.pop("serve_delivery")
        networks = tuple(n.strip() for n in values.pop("webhook_allowed_networks").split(",") if n.strip())
        return IntegrationSettings(webhook_allowed_networks=networks, **values)


def integration_settings() -> IntegrationSettings:
    return OutboxEnvironment().settings()


class _Stopped:
    def stop(self) -> None:
        pass


def start_delivery(govflow_app: Any, *, once: bool = False, serving: bool = False) -> Any:
    """Start the delivery loop (a background thread) for ``serve`` or ``worker``; ``stop()`` ends it.

    With ``once``, deliver what is due now and return (``govflow worker --once``); when
    ``serving`` and ``GOVFLOW_SERVE_DELIVERY`` is false, start nothing (workers deliver).
    """
    from govflow.engine.integrations.delivery import DeliveryLoop

    environment = OutboxEnvironment()
    if serving and not environment.serve_delivery:
        return _Stopped()

    worker = govflow_app.integrations.delivery_worker()
    if once:
        worker.tick()
        worker.close()
        return _Stopped()
    loop = DeliveryLoop(worker, environment.delivery_interval_seconds)
    govflow_app.integrations.projector.on_append.append(loop.wake.set)  # commits in this process wake it
    loop.start()
    return loop


def _app(database_url: str | None) -> Any:
    from govflow.cli import _build, _settings

    return _build(_settings(database_url))


DbOption = Annotated[str | None, typer.Option("--database-url", help="SQLAlchemy URL (default: GOVFLOW_DATABASE_URL)")]


@outbox_app.command("status")
def status(database_url: DbOption = None) -> None:
    """Every sink: shards behind the feed's head, retries scheduled, dead letters by status."""
    from sqlalchemy import func, select

    from govflow.engine.integrations.feed import head
    from govflow.engine.store.db import DeadLetter, OutboxStream

    govflow_app = _app(database_url)
    with govflow_app.db.connect() as conn:
        top = head(conn)
        streams = conn.execute(select(OutboxStream)).all()
        letters = conn.execute(
            select(DeadLetter.sink, DeadLetter.status, func.count()).group_by(DeadLetter.sink, DeadLetter.status)
        ).all()
    print(f"feed head {top}")
    for sink in sorted({s.sink for s in streams}):
        mine = [s for s in streams if s.sink == sink]
        dead = ", ".join(f"{st} {n}" for sk, st, n in letters if sk == sink) or "none"
        retrying = sum(1 for s in mine if s.attempts)
        print(
            f"{sink}: behind {sum(1 for s in mine if s.position < top)}/{len(mine)} shards, retrying {retrying}, dead letters: {dead}"
        )


def _known_sink(db: Any, sink: str) -> None:
    """NotFound (one line, exit 1) for a sink no worker has ever delivered to."""
    from sqlalchemy import select

    from govflow.engine.model.errors import NotFound
    from govflow.engine.store.db import OutboxStream

    with db.connect() as conn:
        sinks = sorted(set(conn.execute(select(OutboxStream.sink).distinct()).scalars()))
    if sink not in sinks:
        known = ", ".join(sinks[:20]) + (", …" if len(sinks) > 20 else "") if sinks else "none yet"
        raise NotFound(f"no sink named {sink[:200]!r} (known: {known})")


@outbox_app.command("dead-letters")
def dead_letters(sink: str, limit: int = 100, database_url: DbOption = None) -> None:
    """The dead letters of a sink (``webhook:<id>`` or a plugin sink's name), oldest first."""
    from govflow.engine.integrations.webhooks import list_dead_letters

    db = _app(database_url).db
    _known_sink(db, sink)
    for letter in list_dead_letters(db, sink, limit):
        print(f"{letter['id']} {letter['status']:9} {letter['event_id']} {letter['kind']}: {letter['reason']}")


@outbox_app.command("replay")
def replay(
    sink: str,
    ids: Annotated[list[int], typer.Option("--id", help="only these dead letters (repeatable)")] = [],  # noqa: B006
    database_url: DbOption = None,
) -> None:
    """Deliver a sink's parked dead letters again, in order, before anything new."""
    govflow_app = _app(database_url)
    from govflow.engine.integrations.webhooks import request_replay

    _known_sink(govflow_app.db, sink)
    count = request_replay(govflow_app.db, sink, "system.cli", govflow_app.clock.now(), ids or None)
    print(f"{count} dead letter(s) of {sink} will be delivered again")
