"""Prometheus metrics at ``/metrics`` (prometheus-client).

* ``govflow_http_request_duration_seconds{method,route,status}`` — request latency
  (the route template, never the concrete path: it may hold ids);
* ``govflow_events_total{kind}`` — committed case events by kind (every command
  appends events: ``case.reported``, ``task.completed``, ``callout.made`` …);
* ``govflow_commands_total{kind}`` — committed commands by the kind of their first event;
* ``govflow_timers_fired_total`` / ``govflow_timers_failed_total`` — timer facts
  recorded by timer runs (actor ``system.timer``) / ``timer.failed``;
* ``govflow_open_cases{stage}`` and ``govflow_overdue_tasks`` — read from the
  database at scrape time, so every API process reports the same.

Counters are per process. With several API processes (``govflow serve --workers N``)
set ``PROMETHEUS_MULTIPROC_DIR`` to an empty folder: the counters are then
aggregated over the processes (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from typing import Any

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from govflow.bootstrap import App
from govflow.engine.model.clock import Clock
from govflow.engine.oversight.rates import overdue_open_tasks
from govflow.engine.store.db import CaseRow, Incident

TIMER_ACTOR = "system.timer"


class Metrics:
    """The metrics of one API process."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram(
            "govflow_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.events = Counter("govflow_events_total", "Committed case events by kind", ["kind"], registry=self.registry)
        self.commands = Counter(
            "govflow_commands_total",
            "Committed commands by the kind of their first event",
            ["kind"],
            registry=self.registry,
        )
        self.timers_fired = Counter("govflow_timers_fired_total", "Timer facts recorded", registry=self.registry)
        self.timers_failed = Counter("govflow_timers_failed_total", "Timers that failed", registry=self.registry)
        self.registry.register(_DatabaseCollector(app.db, app.clock))

    def hear(self, events: Sequence[dict[str, Any]]) -> None:
        """A unit-of-work listener: count what was committed."""
        first_of_case: set[Any] = set()
        for event in events:
            self.events.labels(event["kind"]).inc()
            if event["case_id"] not in first_of_case:
                first_of_case.add(event["case_id"])
                if event.get("actor") != TIMER_ACTOR:
                    self.commands.labels(event["kind"]).inc()
            if event.get("actor") == TIMER_ACTOR:
                (self.timers_failed if event["kind"] == "timer.failed" else self.timers_fired).inc()

    def exposition(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            registry.register(_DatabaseCollector(self.app.db, self.app.clock))
            return generate_latest(registry)
        return generate_latest(self.registry)


class _DatabaseCollector(Collector):
    """Gauges read from the database at scrape time (the same in every process)."""

    def __init__(self, db: Any, clock: Clock) -> None:
        self.db, self.clock = db, clock

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        open_cases = GaugeMetricFamily("govflow_open_cases", "Open cases by stage", labels=["stage"])
        overdue = GaugeMetricFamily("govflow_overdue_tasks", "Open tasks past their due time")
        incidents = GaugeMetricFamily(
            "govflow_open_incidents", "Open incidents (timer runs that failed) by district", labels=["district"]
        )
        with self.db.connect() as conn:
            query = select(CaseRow.status, func.count()).where(CaseRow.closed_at.is_(None)).group_by(CaseRow.status)
            for stage, count in conn.execute(query):
                open_cases.add_metric([stage], count)
            # tasks whose deadline fired keep the due time they opened with (on the record)
            overdue.add_metric([], len(overdue_open_tasks(self.db, self.clock.now())))
            failing = select(Incident.district, func.count()).where(Incident.status == "open")
            for district, count in conn.execute(failing.group_by(Incident.district)):
                incidents.add_metric([district], count)
        yield open_cases
        yield overdue
        yield incidents


class RequestTimer:
    """Observe each HTTP request's latency under its route template."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.latency.labels(scope["method"], template, str(status)).observe(time.perf_counter() - started)


def install(api: FastAPI, app: App) -> Metrics:
    """Count committed events, time requests, and serve ``/metrics``."""
    metrics = Metrics(app)
    app.uow.listeners.append(metrics.hear)

    @api.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    api.add_middleware(RequestTimer, metrics=metrics)
    return metrics


__all__ = ["Metrics", "install"]
