"""Operator settings of the integrations (read from the environment at the edge, by govflow.settings)."""

from __future__ import annotations

from dataclasses import dataclass


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


__all__ = ["IntegrationSettings"]
