"""One object the composition root builds for the integrations of an application."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from govflow.engine.cases.unit_of_work import UnitOfWork
from govflow.engine.integrations.feed import Feed, FeedProjector
from govflow.engine.model.clock import Clock


@dataclass(frozen=True)
class IntegrationSettings:
    """Operator settings of the integrations (``GOVFLOW_WEBHOOK_*``, read at the edge by govflow.settings)."""

    #: networks webhook URLs may point into although they are loopback, private, link-local or reserved
    webhook_allowed_networks: tuple[str, ...] = ()
    #: seconds to connect to a receiver / to wait for its answer
    webhook_connect_timeout: float = 3.0
    webhook_read_timeout: float = 5.0
    #: attempts at one event within one delivery round (exponential back-off with jitter between them)
    webhook_attempts_per_round: int = 3
    #: delivery rounds (spaced by the worker's back-off) before an event becomes a dead letter
    webhook_max_rounds: int = 8
    #: first and longest wait between rounds, in seconds
    webhook_backoff_initial: float = 5.0
    webhook_backoff_max: float = 900.0
    #: how long a worker holds a stream before another may take it over (it renews while working)
    delivery_lease_seconds: float = 60.0
    #: streams one worker process delivers at once, and at most per sink
    delivery_concurrency: int = 8
    delivery_per_sink: int = 4
    #: delivery log entries are kept this many days
    delivery_log_days: int = 14
    extra: dict[str, Any] = field(default_factory=dict)


class Integrations:
    """The change feed, webhooks, outbox delivery and Open311 of one application."""

    def __init__(
        self,
        *,
        db: Engine,
        uow: UnitOfWork,
        packs: Any,
        access: Any,
        cases: Any,
        clock: Clock,
        plugins: Any = None,
        settings: IntegrationSettings | None = None,
    ) -> None:
        self.db, self.uow, self.packs, self.access, self.cases, self.clock = db, uow, packs, access, cases, clock
        self.plugins = plugins
        self.settings = settings or IntegrationSettings()
        found = [p for p in uow.projectors if isinstance(p, FeedProjector)]
        if found:
            self.projector = found[0]
        else:
            self.projector = FeedProjector()
            uow.projectors.append(self.projector)

    @functools.cached_property
    def feed(self) -> Feed:
        return Feed(self.db, self.packs, self.access)


__all__ = ["IntegrationSettings", "Integrations"]
