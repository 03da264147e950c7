"""Integrations: Open311 POSTs, the change feed, webhook delivery, the outbox's cost on a command.

Each figure is printed next to a baseline measured in the same run:

* Open311 POST → case persisted, requests/s, next to the native ``POST /api/v1/cases`` on the same
  real ``govflow serve`` (keep-alive client, alternating blocks, best of 3);
* a feed read of 10,000 events in pages of 1,000 (engine and HTTP), next to a raw SELECT of the
  same rows (target: ≤ 200 ms);
* webhook delivery to a local receiver by 2 ``govflow worker`` processes, events/s, next to the
  receiver's own rate for the same posts sent straight from 2 processes × 4 clients (target: ≥ 500 events/s);
* the outbox's cost on a command: ``CaseService.report`` with the feed projector and without it,
  alternating blocks, best of 3 (target: ≤ 10 %).

Run: ``.venv/bin/python bench/bench_integrations.py [--events 10000] [--posts 200] [--backend sqlite|postgresql]``
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from common import fresh_database, ready_app, reference_pack
from sqlalchemy import select

from govflow.engine.cases.service import NewCase
from govflow.engine.integrations.feed import FeedProjector
from govflow.engine.store.db import FeedEvent
from tests.served import Served
from tests.webhook_receiver import Receiver

ROOT = Path(__file__).resolve().parent.parent
POINTS = [(26.0865, 119.3025), (26.0780, 119.2950), (26.1040, 119.2840), (26.0950, 119.3110)]


def case(i: int) -> NewCase:
    lat, lng = POINTS[i % len(POINTS)]
    return NewCase(channel="app", description=f"井盖没了 #{i}", lat=lat, lng=lng)


def bench_posts(base: str, posts: int) -> tuple[float, float]:
    """(Open311 requests/s, native requests/s), best of 3 alternating blocks."""
    lat, lng = POINTS[0]
    open311_form = {
        "api_key": "demo-hotline",
        "service_code": "road.pothole",
        "lat": str(lat),
        "long": str(lng),
        "description": "路面坑洼",
    }
    native_body = {
        "channel": "app",
        "description": "路面坑洼",
        "category": "road.pothole",
        "location": {"lat": lat, "lng": lng},
    }
    best = {"open311": 0.0, "native": 0.0}
    with httpx.Client(base_url=base, timeout=30) as client:
        for _ in range(3):
            for kind in ("open311", "native"):
                start = time.perf_counter()
                for _ in range(posts):
                    if kind == "open311":
                        response = client.post("/open311/v2/requests.json", data=open311_form)
                    else:
                        response = client.post(
                            "/api/v1/cases", json=native_body, headers={"Authorization": "Bearer demo-hotline"}
                        )
                    assert response.status_code == 201, response.text
                best[kind] = max(best[kind], posts / (time.perf_counter() - start))
    return best["open311"], best["native"]


def bench_feed(app, base: str) -> tuple[float, float, float, int]:
    """(engine ms, HTTP ms, raw SELECT ms, events) to read the first 10,000 events, best of 3."""
    hotline = next(p for p in app.access_principals if p.id == "hotline12345")
    engine_ms = http_ms = raw_ms = float("inf")
    count = 0
    with httpx.Client(base_url=base, timeout=30, headers={"Authorization": "Bearer demo-hotline"}) as client:
        for _ in range(3):
            start, cursor, count = time.perf_counter(), None, 0
            while count < 10_000:
                page = app.integrations.feed.read(hotline, cursor, 1000)
                count += len(page.events)
                cursor = page.next
                if not page.has_more:
                    break
            engine_ms = min(engine_ms, (time.perf_counter() - start) * 1000)
            start, cursor, got = time.perf_counter(), None, 0
            while got < 10_000:
                page = client.get(
                    "/api/v1/feed", params={"limit": 1000, **({"after": cursor} if cursor else {})}
                ).json()
                got += len(page["events"])
                cursor = page["next"]
                if not page["has_more"]:
                    break
            http_ms = min(http_ms, (time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            with app.db.connect() as conn:
                rows = conn.execute(
                    select(FeedEvent.position, FeedEvent.payload).order_by(FeedEvent.position).limit(10_000)
                ).all()
                json.dumps([r.payload for r in rows])
            raw_ms = min(raw_ms, (time.perf_counter() - start) * 1000)
    return engine_ms, http_ms, raw_ms, count


def _post_straight(url: str, bodies: list[bytes], threads: int = 4) -> None:
    """Post ``bodies`` from ``threads`` keep-alive clients (what one worker does: 4 streams per sink)."""
    import threading

    def send(part: list[bytes]) -> None:
        with httpx.Client(timeout=30) as client:
            for body in part:
                client.post(url, content=body, headers={"content-type": "application/json"})

    workers = [threading.Thread(target=send, args=(bodies[i::threads],)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_delivery(url: str, receiver: Receiver, expected: int) -> tuple[float, float, float]:
    """(events/s by 2 govflow workers, the receiver's rate for the same posts from 2 processes × 4 clients,
    the workers' CPU milliseconds per delivered event: what delivery costs whatever the receiver's speed)."""
    env = {**os.environ, "GOVFLOW_DATABASE_URL": url, "GOVFLOW_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8", "GOVFLOW_LOG_FORMAT": "text",
           "GOVFLOW_DELIVERY_INTERVAL_SECONDS": "0.05"}  # fmt: skip
    start = time.perf_counter()
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "govflow.cli", "worker", "--interval", "5"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    try:
        first = None
        while len(receiver.accepted) < expected and time.perf_counter() - start < 300:
            if first is None and receiver.accepted:
                first = receiver.accepted[0].at
            time.sleep(0.02)
        done = receiver.accepted[min(expected, len(receiver.accepted)) - 1].at
        cpu = sum(cpu_seconds(w.pid) for w in workers)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(30)
    delivered = len({r.headers["webhook-id"] for r in receiver.accepted})
    rate = delivered / (done - (first or done) or 1e-9)
    bodies = [r.body for r in receiver.accepted[:expected]]
    before = len(receiver.accepted)
    start = time.perf_counter()
    half = len(bodies) // 2
    procs = [
        multiprocessing.Process(target=_post_straight, args=(receiver.url("/straight"), part))
        for part in (bodies[:half], bodies[half:])
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    straight = (len(receiver.accepted) - before) / (time.perf_counter() - start)
    return rate, straight, cpu * 1000 / max(1, delivered)


def bench_outbox_cost(app, n: int) -> tuple[float, float, float]:
    """(median ms of a report with the feed projector, without it, median share of the projector's
    own time in a report): the two interleaved command by command, so a machine whose load changes
    during the run weighs on both alike. The share is timed inside each command, so it is the
    steadier figure when the load makes the difference of two medians noisy."""
    import statistics

    hotline = next(p for p in app.access_principals if p.id == "hotline12345")
    projector = next(p for p in app.uow.projectors if isinstance(p, FeedProjector))
    spent = [0.0]

    def timed(conn, changes) -> None:
        start = time.perf_counter()
        projector(conn, changes)
        spent[0] += time.perf_counter() - start

    index = app.uow.projectors.index(projector)
    app.uow.projectors[index] = timed
    times: dict[str, list[float]] = {"with": [], "without": []}
    shares: list[float] = []
    try:
        for i in range(2 * n):
            kind = "with" if i % 2 == 0 else "without"
            if kind == "without":
                app.uow.projectors.remove(timed)
            spent[0] = 0.0
            start = time.perf_counter()
            app.cases.report(hotline, case(i))
            elapsed = time.perf_counter() - start
            times[kind].append(elapsed * 1000)
            if kind == "without":
                app.uow.projectors.insert(index, timed)
            else:
                shares.append(spent[0] / elapsed)
    finally:
        app.uow.projectors[app.uow.projectors.index(timed)] = projector
    return statistics.median(times["with"]), statistics.median(times["without"]), statistics.median(shares)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--posts", type=int, default=200)
    parser.add_argument("--outbox-n", type=int, default=150)
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--only-outbox", action="store_true", help="measure only the outbox's cost on a command")
    args = parser.parse_args()
    url, engine = fresh_database(args.backend)
    pack = reference_pack()
    app = ready_app(engine, pack)
    from govflow.engine.access.identity import parse_principals

    app.access_principals = [
        p
        for p, _ in parse_principals(
            (ROOT / "policies" / "demo-principals.yaml").read_text(encoding="utf-8"), [pack.catalog]
        )
    ]  # type: ignore[attr-defined]
    print(f"backend {args.backend}")
    with_outbox, without_outbox, share = bench_outbox_cost(app, args.outbox_n)
    cost = (with_outbox / without_outbox - 1) * 100
    print(
        f"outbox cost on a command (report, median of {args.outbox_n} each, interleaved): {with_outbox:6.2f} ms with "
        f"the feed projector, {without_outbox:6.2f} ms without: {cost:+.1f}%; the projector's own time "
        f"{share:.1%} of a report, i.e. {share / (1 - share):+.1%} on the rest (target ≤ 10%)"
    )
    if args.only_outbox:
        return
    receiver = Receiver()
    with Served(
        url, env={"GOVFLOW_SERVE_DELIVERY": "false", "GOVFLOW_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"}
    ) as server:
        open311, native = bench_posts(server.base, args.posts)
        print(
            f"Open311 POST → case persisted: {open311:7.1f} requests/s; native POST /api/v1/cases: {native:7.1f} requests/s ({open311 / native:.0%} of native)"
        )
        hook = httpx.post(
            f"{server.base}/api/v1/webhooks",
            json={"url": receiver.url()},
            headers={"Authorization": "Bearer demo-hotline"},
            timeout=10,
        )
        assert hook.status_code == 201, hook.text
        hotline = next(p for p in app.access_principals if p.id == "hotline12345")
        with engine.connect() as conn:
            from govflow.engine.integrations.feed import head

            start_position = head(conn)
        i = 0
        while True:
            with engine.connect() as conn:
                if head(conn) - start_position >= args.events:
                    break
            app.cases.report(hotline, case(100_000 + i))
            i += 1
        if engine.dialect.name == "postgresql":  # what autovacuum does to a table just filled: the planner's statistics
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE feed_events")
        engine_ms, http_ms, raw_ms, count = bench_feed(app, server.base)
        print(
            f"feed read of {count} events (pages of 1000): engine {engine_ms:6.1f} ms, HTTP {http_ms:6.1f} ms; raw SELECT of the rows {raw_ms:6.1f} ms (target ≤ 200 ms)"
        )
    with engine.connect() as conn:
        from govflow.engine.integrations.feed import head

        expected = head(conn) - start_position
    rate, straight, cpu_ms = bench_delivery(url, receiver, expected)
    print(
        f"webhook delivery, 2 workers, {expected} events: {rate:7.1f} events/s signed and logged; the receiver takes {straight:7.1f} posts/s sent straight from 2 processes × 4 clients (target ≥ 500 events/s)"
    )
    print(
        f"  the workers' CPU per delivered event: {cpu_ms:.2f} ms (start-up included; the database server's not), "
        f"i.e. at most {1000 / cpu_ms:.0f} events/s per core the workers get"
    )
    receiver.close()


if __name__ == "__main__":
    main()
