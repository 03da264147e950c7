"""Delivering the outbox: every sink takes the feed through leased streams, at least once, in per-case order.

A **sink** is anything that takes committed events out of govflow: an integrator's webhook
(:class:`WebhookSink`) or a plugin's publisher (``govflow_outbox_sinks``, e.g. the RabbitMQ example
package). Each sink reads the feed (:mod:`.feed`, which is the outbox: written in the transaction
of the change itself) through one **stream per shard** (``outbox_streams``: sink, shard, position).
A case always falls in the same shard and a stream is worked by one worker at a time, so a sink
gets the events of a case in their order; different shards and sinks go in parallel.

A worker (:class:`DeliveryWorker`, inside ``govflow worker`` and the loop of ``govflow serve``)
repeatedly

1. reads the feed's head position ``H`` (every position ≤ H is committed or never will be);
2. **leases** due streams that are behind ``H`` (or have dead letters to replay): a conditional
   ``UPDATE`` sets the lease owner and expiry, so each stream has one worker; a killed worker's
   lease runs out and another continues from the stream's saved position;
3. delivers the stream's events after its position, oldest first. Each event is tried a few
   times at once (tenacity: exponential back-off with jitter, per-request timeouts bounded by the
   settings); the position is saved, with the lease renewed and the delivery log written, every
   few events — so a killed worker re-delivers at most the events since the last save (**at least
   once**; receivers de-duplicate on the event id);
4. when an event keeps failing, the stream stops there (later events of the shard wait: per-case
   order) and is due again after a back-off computed by tenacity's ``wait_exponential_jitter``
   (the worker never sleeps on a dead receiver; other streams go on). After ``max_rounds`` rounds —
   or at once for an answer that retrying cannot change (a 4xx other than 408/425/429) — the event
   becomes a **dead letter** and the stream moves on; later events *of the same case* are parked
   behind it as dead letters too, so replaying keeps their order;
5. an operator's **replay** marks dead letters; the stream's next worker delivers them first, in
   order, before anything new.

Every attempt is in ``delivery_log`` (outcome, HTTP status, error, duration).
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import tenacity
from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.engine import Engine

from govflow.engine.integrations.config import IntegrationSettings
from govflow.engine.integrations.feed import SHARDS, Visibility, head
from govflow.engine.integrations.webhooks import UrlPolicy, UrlRefused, kind_matches, signed_headers, webhook_sink_name
from govflow.engine.model.clock import Clock, SystemClock
from govflow.engine.store.db import DeadLetter, DeliveryLogEntry, FeedEvent, OutboxStream

log = logging.getLogger("govflow.delivery")

#: events read per query, and how often the position is saved (events)
BATCH = 200
CHECKPOINT = 50
#: statuses a receiver may answer that retrying could change
RETRYABLE_4XX = frozenset({408, 425, 429})


class DeliveryFailed(Exception):
    """A sink could not take an event; ``retryable`` False when trying again cannot help."""

    def __init__(self, message: str, *, retryable: bool = True, status_code: int | None = None) -> None:
        super().__init__(message)
        self.retryable, self.status_code = retryable, status_code


class Sink(Protocol):
    """What the delivery worker needs of a sink."""

    #: unique and stable (the streams, dead letters and log are keyed by it)
    name: str

    def condition(self) -> Any:
        """A SQL condition on ``feed_events`` for the events this sink may receive (None: all)."""
        ...

    def wants(self, kind: str) -> bool:
        """Whether the sink wants events of this kind."""
        ...

    def deliver(self, event: dict[str, Any]) -> int | None:
        """Hand one event over; returns a status code or None; raises DeliveryFailed."""
        ...


@dataclass
class WebhookSink:
    """An integrator's endpoint: signed HTTP POSTs of one event each (see :mod:`.webhooks`)."""

    endpoint: Any
    visibility: Visibility
    client: httpx.Client
    urls: UrlPolicy
    name: str = ""

    def __post_init__(self) -> None:
        self.name = webhook_sink_name(self.endpoint.id)

    def condition(self) -> Any:
        return and_(FeedEvent.district == self.endpoint.district, self.visibility.condition())

    def wants(self, kind: str) -> bool:
        return kind_matches(self.endpoint.kinds, kind)

    def deliver(self, event: dict[str, Any]) -> int | None:
        try:
            self.urls.check(self.endpoint.url)
        except UrlRefused as exc:
            raise DeliveryFailed(exc.message, retryable=True) from None
        body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {
            "content-type": "application/json",
            "user-agent": "govflow-webhooks/1",
            "govflow-event-kind": event["kind"],
            **signed_headers(self.endpoint.secret, event["id"], body),
        }
        try:
            with self.client.stream("POST", self.endpoint.url, content=body, headers=headers) as response:
                seen = 0
                for chunk in response.iter_bytes():  # read a little (keeps the connection reusable), never all
                    seen += len(chunk)
                    if seen > 65536:
                        break
                status = response.status_code
        except httpx.TimeoutException as exc:
            raise DeliveryFailed(f"timed out: {type(exc).__name__}") from None
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}"[:300]) from None
        if 200 <= status < 300:
            return status
        retryable = status >= 500 or status in RETRYABLE_4XX or 300 <= status < 400
        raise DeliveryFailed(f"the receiver answered {status}", retryable=retryable, status_code=status)


def http_client(settings: IntegrationSettings) -> httpx.Client:
    timeout = httpx.Timeout(
        connect=settings.webhook_connect_timeout,
        read=settings.webhook_read_timeout,
        write=settings.webhook_read_timeout,
        pool=settings.webhook_connect_timeout,
    )
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=32)
    return httpx.Client(timeout=timeout, follow_redirects=False, limits=limits, trust_env=False)


@dataclass
class DeliveryReport:
    streams: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    held: int = 0
    redelivered: int = 0

    def add(self, other: DeliveryReport) -> None:
        for name in ("streams", "delivered", "failed", "dead", "held", "redelivered"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


class LeaseLost(Exception):
    """Another worker took the stream over (this one was too slow to renew)."""


@dataclass
class _Run:
    """One leased stream being worked."""

    sink: Any
    shard: int
    position: int
    attempts: int
    horizon: int
    report: DeliveryReport = field(default_factory=DeliveryReport)
    log: list[dict[str, Any]] = field(default_factory=list)
    saved_at: float = field(default_factory=time.monotonic)
    unsaved: int = 0


class DeliveryWorker:
    """Delivers the outbox to every sink (see module doc). Several may run, in any processes."""

    def __init__(
        self,
        db: Engine,
        sinks: Callable[[], Sequence[Any]],
        settings: IntegrationSettings | None = None,
        *,
        clock: Clock | None = None,
        owner: str | None = None,
    ) -> None:
        self.db, self.sinks = db, sinks
        self.settings = settings or IntegrationSettings()
        self.clock = clock or SystemClock()  # leases and back-off are real time, whatever the cases' clock
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max(1, self.settings.delivery_concurrency), thread_name_prefix="govflow-delivery"
        )
        self._halt = threading.Event()
        self._pruned_at = 0.0
        s = self.settings
        self._round_wait = tenacity.wait_exponential_jitter(
            multiplier=s.webhook_backoff_initial, max=s.webhook_backoff_max, jitter=s.webhook_backoff_initial
        )
        self._rounds = tenacity.Retrying()  # only to number the rounds for the back-off's wait strategy
        self._lease = dt.timedelta(seconds=s.delivery_lease_seconds)
        # one event's attempts never take longer than a third of the lease: the lease is renewed in time
        self._budget = max(1.0, s.delivery_lease_seconds / 3)

    # -- the loop ----------------------------------------------------------------------------
    def tick(self) -> DeliveryReport:
        """Lease the due streams and deliver them (in parallel); returns what happened."""
        report = DeliveryReport()
        sinks = {s.name: s for s in self.sinks()}
        if not sinks:
            return report
        self._ensure_streams(sinks.values())
        now = self.clock.now()
        top = self._fast_forward(sinks, now)
        with self.db.connect() as conn:
            due = and_(
                OutboxStream.sink.in_(sorted(sinks)),
                or_(OutboxStream.lease_until.is_(None), OutboxStream.lease_until < now),
                or_(OutboxStream.next_attempt_at.is_(None), OutboxStream.next_attempt_at <= now),
            )
            replays = select(DeadLetter.sink, DeadLetter.shard).where(DeadLetter.status == "replay").distinct()
            wanted = {(r.sink, r.shard) for r in conn.execute(replays) if r.sink in sinks}
            candidates = conn.execute(
                select(OutboxStream.sink, OutboxStream.shard, OutboxStream.position, OutboxStream.attempts)
                .where(due, OutboxStream.position < top)
                .order_by(OutboxStream.position)
                .limit(self.settings.delivery_concurrency * 8)
            ).all()
            if wanted:
                extra = conn.execute(
                    select(OutboxStream.sink, OutboxStream.shard, OutboxStream.position, OutboxStream.attempts).where(
                        due, or_(*[and_(OutboxStream.sink == k, OutboxStream.shard == s) for k, s in wanted])
                    )
                ).all()
                candidates = list(dict.fromkeys([*extra, *candidates]))
        per_sink: dict[str, int] = {}
        runs: list[_Run] = []
        for row in candidates:
            if len(runs) >= self.settings.delivery_concurrency:
                break
            if per_sink.get(row.sink, 0) >= self.settings.delivery_per_sink:
                continue
            claimed = self._claim(row.sink, row.shard, now)
            if claimed is not None:
                per_sink[row.sink] = per_sink.get(row.sink, 0) + 1
                runs.append(_Run(sinks[row.sink], row.shard, claimed.position, claimed.attempts, top))
        for result in self._pool.map(self._work, runs):
            report.add(result)
            report.streams += 1
        self._prune()
        return report

    def run(self, interval: float = 1.0, wake: threading.Event | None = None) -> None:
        """Tick until :meth:`stop`; wait ``interval`` (or until woken) when there was nothing to do."""
        while not self._halt.is_set():
            try:
                report = self.tick()
            except Exception:  # keep going; the next tick retries
                log.exception("delivery tick failed")
                report = DeliveryReport()
            if report.streams == 0:
                if wake is not None:
                    wake.wait(interval)
                    wake.clear()
                else:
                    self._halt.wait(interval)

    def stop(self) -> None:
        self._halt.set()

    def close(self) -> None:
        self.stop()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _sleep(self, seconds: float) -> None:
        self._halt.wait(seconds)  # a stopping worker does not sit out a back-off

    # -- streams and leases ------------------------------------------------------------------
    def _ensure_streams(self, sinks: Iterable[Any]) -> None:
        names = [s.name for s in sinks]
        with self.db.connect() as conn:
            have = {
                (r.sink, r.shard)
                for r in conn.execute(select(OutboxStream.sink, OutboxStream.shard).where(OutboxStream.sink.in_(names)))
            }
        missing = [(n, s) for n in names for s in range(SHARDS) if (n, s) not in have]
        if not missing:
            return
        try:
            with self.db.begin() as conn:
                start = head(conn)  # a sink seen for the first time starts with what is committed next
                conn.execute(
                    insert(OutboxStream),
                    [{"sink": n, "shard": s, "position": start, "attempts": 0} for n, s in missing],
                )
        except Exception:  # another worker created them at the same time
            log.debug("streams created concurrently", exc_info=True)

    def _fast_forward(self, sinks: dict[str, Any], now: dt.datetime) -> int:
        """Move idle streams whose shard has nothing new up to the head, in one statement; returns the head."""
        with self.db.begin() as conn:
            top = head(conn)
            pending = (
                select(FeedEvent.position)
                .where(
                    FeedEvent.shard == OutboxStream.shard,
                    FeedEvent.position > OutboxStream.position,
                    FeedEvent.position <= top,
                )
                .exists()
            )
            conn.execute(
                update(OutboxStream)
                .where(
                    OutboxStream.sink.in_(sorted(sinks)),
                    OutboxStream.position < top,
                    OutboxStream.attempts == 0,
                    or_(OutboxStream.lease_until.is_(None), OutboxStream.lease_until < now),
                    ~pending,
                )
                .values(position=top)
            )
        return top

    def _claim(self, sink: str, shard: int, now: dt.datetime) -> Any:
        """Lease a stream if it is free; its current position and attempts (read under the lease), or None."""
        with self.db.begin() as conn:
            result = conn.execute(
                update(OutboxStream)
                .where(
                    OutboxStream.sink == sink,
                    OutboxStream.shard == shard,
                    or_(OutboxStream.lease_until.is_(None), OutboxStream.lease_until < now),
                )
                .values(lease_owner=self.owner, lease_until=now + self._lease)
            )
            if result.rowcount != 1:
                return None
            # another worker may have moved it since the candidates were read: start from where it is now
            return conn.execute(
                select(OutboxStream.position, OutboxStream.attempts).where(
                    OutboxStream.sink == sink, OutboxStream.shard == shard
                )
            ).one()

    def _save(self, run: _Run, *, release: bool = False, **values: Any) -> None:
        """Save the stream's position (renewing or releasing the lease) and write the log, in one transaction."""
        now = self.clock.now()
        lease = {"lease_owner": None, "lease_until": None} if release else {"lease_until": now + self._lease}
        with self.db.begin() as conn:
            result = conn.execute(
                update(OutboxStream)
                .where(
                    OutboxStream.sink == run.sink.name,
                    OutboxStream.shard == run.shard,
                    OutboxStream.lease_owner == self.owner,
                )
                .values(position=run.position, attempts=run.attempts, **values, **lease)
            )
            if run.log:
                conn.execute(insert(DeliveryLogEntry), run.log)
        run.log = []
        run.saved_at, run.unsaved = time.monotonic(), 0
        if result.rowcount != 1:
            raise LeaseLost(f"{run.sink.name} shard {run.shard}")

    def _maybe_save(self, run: _Run) -> None:
        if run.unsaved >= CHECKPOINT or time.monotonic() - run.saved_at > self._budget:
            self._save(run)

    # -- one stream ---------------------------------------------------------------------------
    def _work(self, run: _Run) -> DeliveryReport:
        try:
            if self._replay(run):
                self._deliver_new(run)
        except LeaseLost:
            log.warning("lost the lease of %s shard %s; another worker continues", run.sink.name, run.shard)
        except Exception:
            log.exception("delivery to %s shard %s failed", run.sink.name, run.shard)
            try:
                self._save(run, release=True)
            except Exception:
                log.debug("could not release %s shard %s", run.sink.name, run.shard, exc_info=True)
        return run.report

    def _attempt(
        self, run: _Run, position: int, event: dict[str, Any]
    ) -> tuple[bool, DeliveryFailed | None, int | None, float]:
        """Deliver one event, retrying at once a few times (tenacity; each failed try is logged);
        returns (ok, the last failure, status, milliseconds of the last try)."""
        s = self.settings
        started = [time.perf_counter()]

        def tried(state: tenacity.RetryCallState) -> None:  # before tenacity sleeps: log the failed try
            failure = state.outcome.exception() if state.outcome is not None else None
            code = failure.status_code if isinstance(failure, DeliveryFailed) else None
            ms = (time.perf_counter() - started[0]) * 1000
            self._entry(run, position, event["id"], "failed", code, str(failure), ms)

        def deliver() -> int | None:
            started[0] = time.perf_counter()
            try:
                return run.sink.deliver(event)
            except DeliveryFailed:
                raise
            except Exception as exc:  # a sink's own bug: retryable, named in the log
                raise DeliveryFailed(f"{type(exc).__name__}: {exc}"[:300]) from exc

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(max(1, s.webhook_attempts_per_round))
            | tenacity.stop_after_delay(self._budget),
            wait=tenacity.wait_exponential_jitter(multiplier=0.1, max=2.0, jitter=0.1),
            retry=tenacity.retry_if_exception(lambda e: isinstance(e, DeliveryFailed) and e.retryable),
            before_sleep=tried,
            sleep=self._sleep,
            reraise=True,
        )
        try:
            status = retrying(deliver)
        except DeliveryFailed as exc:
            return False, exc, exc.status_code, (time.perf_counter() - started[0]) * 1000
        return True, None, status, (time.perf_counter() - started[0]) * 1000

    def _entry(
        self, run: _Run, position: int, event_id: str, outcome: str, status: int | None, error: str | None, ms: float
    ) -> None:
        run.log.append(
            {
                "sink": run.sink.name,
                "position": position,
                "event_id": event_id,
                "outcome": outcome,
                "status_code": status,
                "error": error[:500] if error else None,
                "duration_ms": ms,
                "at": self.clock.now(),
            }
        )

    def _park(self, run: _Run, row: Any, reason: str, attempts: int) -> None:
        with self.db.begin() as conn:
            conn.execute(
                insert(DeadLetter),
                {
                    "sink": run.sink.name,
                    "shard": run.shard,
                    "position": row.position,
                    "case_id": row.case_id,
                    "status": "parked",
                    "reason": reason[:500],
                    "attempts": attempts,
                    "parked_at": self.clock.now(),
                },
            )

    def _replay(self, run: _Run) -> bool:
        """Deliver the dead letters an operator asked to replay, in order; False if the stream must stop."""
        with self.db.connect() as conn:
            letters = conn.execute(
                select(DeadLetter.id, DeadLetter.position, DeadLetter.case_id, DeadLetter.attempts, FeedEvent.payload)
                .join(FeedEvent, FeedEvent.position == DeadLetter.position)
                .where(DeadLetter.sink == run.sink.name, DeadLetter.shard == run.shard, DeadLetter.status == "replay")
                .order_by(DeadLetter.position)
            ).all()
        failed_cases: set[Any] = set()
        for letter in letters:
            if letter.case_id in failed_cases:  # keep the case's order: wait behind its failed letter
                self._set_letter(letter.id, status="parked")
                continue
            ok, failure, status, ms = self._attempt(run, letter.position, letter.payload)
            if ok:
                self._set_letter(letter.id, status="delivered", delivered_at=self.clock.now())
                self._entry(run, letter.position, letter.payload["id"], "redelivered", status, None, ms)
                run.report.redelivered += 1
            else:
                failed_cases.add(letter.case_id)
                assert failure is not None
                self._set_letter(letter.id, status="parked", attempts=letter.attempts + 1, reason=str(failure)[:500])
                self._entry(run, letter.position, letter.payload["id"], "failed", status, str(failure), ms)
                run.report.failed += 1
            self._maybe_save(run)
        return True

    def _set_letter(self, letter_id: int, **values: Any) -> None:
        with self.db.begin() as conn:
            conn.execute(update(DeadLetter).where(DeadLetter.id == letter_id).values(**values))

    def _deliver_new(self, run: _Run) -> None:
        sink, s = run.sink, self.settings
        with self.db.connect() as conn:
            parked = set(
                conn.execute(
                    select(DeadLetter.case_id).where(
                        DeadLetter.sink == sink.name,
                        DeadLetter.shard == run.shard,
                        DeadLetter.status.in_(("parked", "replay")),
                    )
                ).scalars()
            )
        condition = sink.condition()
        while not self._halt.is_set():
            query = (
                select(FeedEvent.position, FeedEvent.case_id, FeedEvent.kind, FeedEvent.payload)
                .where(
                    FeedEvent.shard == run.shard, FeedEvent.position > run.position, FeedEvent.position <= run.horizon
                )
                .order_by(FeedEvent.position)
                .limit(BATCH)
            )
            if condition is not None:
                query = query.where(condition)
            with self.db.connect() as conn:
                rows = conn.execute(query).all()
            for row in rows:
                if self._halt.is_set():
                    break
                if not sink.wants(row.kind):
                    run.position = row.position
                    continue
                event_id = row.payload["id"]
                if row.case_id in parked:
                    self._park(run, row, "held behind an earlier dead letter of the same case", 0)
                    self._entry(run, row.position, event_id, "held", None, None, 0.0)
                    run.report.held += 1
                    run.position, run.unsaved = row.position, run.unsaved + 1
                    self._maybe_save(run)
                    continue
                ok, failure, status, ms = self._attempt(run, row.position, row.payload)
                if ok:
                    self._entry(run, row.position, event_id, "delivered", status, None, ms)
                    run.report.delivered += 1
                    run.position, run.attempts, run.unsaved = row.position, 0, run.unsaved + 1
                    self._maybe_save(run)
                    continue
                assert failure is not None
                rounds = run.attempts + 1
                if not failure.retryable or rounds >= s.webhook_max_rounds:
                    why = f"{failure} (after {rounds} round{'s' if rounds > 1 else ''})"
                    self._park(run, row, why, rounds)
                    parked.add(row.case_id)
                    self._entry(run, row.position, event_id, "dead", status, str(failure), ms)
                    run.report.dead += 1
                    run.position, run.attempts, run.unsaved = row.position, 0, run.unsaved + 1
                    self._maybe_save(run)
                    continue
                # try this event again later; the shard waits behind it (per-case order)
                state = tenacity.RetryCallState(self._rounds, None, (), {})
                state.attempt_number = rounds
                retry_at = self.clock.now() + dt.timedelta(seconds=self._round_wait(state))
                self._entry(run, row.position, event_id, "failed", status, str(failure), ms)
                run.report.failed += 1
                run.attempts = rounds
                self._save(run, release=True, next_attempt_at=retry_at, last_error=str(failure)[:500])
                return
            if self._halt.is_set():
                break
            if len(rows) < BATCH:
                run.position = max(run.position, run.horizon)  # everything up to the horizon is seen
                break
        self._save(run, release=True, next_attempt_at=None, last_error=None)

    # -- housekeeping ------------------------------------------------------------------------------
    def _prune(self) -> None:
        if time.monotonic() - self._pruned_at < 3600:
            return
        self._pruned_at = time.monotonic()
        cutoff = self.clock.now() - dt.timedelta(days=self.settings.delivery_log_days)
        with self.db.begin() as conn:
            conn.execute(delete(DeliveryLogEntry).where(DeliveryLogEntry.at < cutoff))


class DeliveryLoop(threading.Thread):
    """The delivery worker as a background thread (``govflow serve``, ``govflow worker``)."""

    def __init__(self, worker: DeliveryWorker, interval: float = 1.0) -> None:
        super().__init__(name="govflow-delivery-loop", daemon=True)
        self.worker, self.interval = worker, interval
        self.wake = threading.Event()

    def run(self) -> None:
        self.worker.run(self.interval, self.wake)

    def stop(self) -> None:
        self.worker.stop()
        self.wake.set()


__all__ = [
    "DeliveryFailed",
    "DeliveryLoop",
    "DeliveryReport",
    "DeliveryWorker",
    "Sink",
    "WebhookSink",
    "http_client",
]
