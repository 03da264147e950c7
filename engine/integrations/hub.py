"""One object the composition root builds for the integrations of an application."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from govflow.engine.cases.unit_of_work import UnitOfWork
from govflow.engine.integrations.config import IntegrationSettings
from govflow.engine.integrations.delivery import DeliveryWorker, WebhookSink, http_client
from govflow.engine.integrations.feed import Feed, FeedProjector
from govflow.engine.integrations.open311 import Open311
from govflow.engine.integrations.webhooks import UrlPolicy, Webhooks
from govflow.engine.model.clock import Clock
from govflow.engine.model.errors import PermissionDenied
from govflow.engine.store.db import WebhookEndpoint

#: how long a worker keeps its list of webhook endpoints (and their owners' powers) before re-reading
ENDPOINTS_TTL = 5.0


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

    @functools.cached_property
    def urls(self) -> UrlPolicy:
        return UrlPolicy(self.settings.webhook_allowed_networks)

    @functools.cached_property
    def webhooks(self) -> Webhooks:
        return Webhooks(self.db, self.feed, self.clock, self.urls)

    @functools.cached_property
    def open311(self) -> Open311:
        return Open311(self.db, self.packs, self.access, self.cases, self.clock)

    # -- delivery -----------------------------------------------------------------------------
    def plugin_sinks(self) -> list[Any]:
        """Sinks the installed plugins offer (``govflow_outbox_sinks``), asked once per worker."""
        if self.plugins is None:
            return []
        found = [sink for result in self.plugins.hook.govflow_outbox_sinks() or [] for sink in result or []]
        names = [s.name for s in found]
        if len(set(names)) != len(names) or any(n.startswith("webhook:") for n in names):
            raise ValueError(f"outbox sinks need unique names, none starting with 'webhook:': {names}")
        return found

    def webhook_sinks(self, client: Any) -> list[WebhookSink]:
        """A sink per active endpoint whose owner still holds manage_webhooks in its district."""
        with self.db.connect() as conn:
            endpoints = conn.execute(select(WebhookEndpoint).where(WebhookEndpoint.active.is_(True))).all()
        sinks = []
        for endpoint in endpoints:
            owner = self.webhooks.owner_of(endpoint.owner)
            if owner is None:
                continue
            try:
                visibility = self.feed.visibility(owner, action="manage_webhooks", districts=[endpoint.district])
            except PermissionDenied:
                continue  # events wait in the outbox until the owner's powers return or the endpoint is disabled
            sinks.append(WebhookSink(endpoint, visibility, client, self.urls))
        return sinks

    def delivery_worker(self, *, owner: str | None = None, extra_sinks: Sequence[Any] = ()) -> DeliveryWorker:
        """A delivery worker over every webhook endpoint and plugin sink (plus ``extra_sinks``)."""
        client = http_client(self.settings)
        fixed = [*self.plugin_sinks(), *extra_sinks]
        cache: dict[str, Any] = {"at": 0.0, "sinks": []}
        lock = threading.Lock()

        def sinks() -> list[Any]:
            with lock:
                if time.monotonic() - cache["at"] > ENDPOINTS_TTL:
                    cache["sinks"], cache["at"] = self.webhook_sinks(client), time.monotonic()
                return [*cache["sinks"], *fixed]

        worker = DeliveryWorker(self.db, sinks, self.settings, owner=owner)
        worker.http = client  # type: ignore[attr-defined]
        return worker


__all__ = ["IntegrationSettings", "Integrations"]
