"""The RabbitMQ publisher plugin (examples/plugins/govflow-rabbitmq), installed like any district
plugin, against the real broker on 127.0.0.1:5672: a real `govflow worker` publishes the outbox,
confirmed and in per-case order; an unroutable or unreachable broker leaves nothing lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pika
import pytest
from govflow_rabbitmq import RabbitMQSink

from govflow.engine.cases.service import NewCase
from govflow.engine.integrations.config import IntegrationSettings
from govflow.engine.integrations.webhooks import request_replay
from tests.served import ROOT, database_url

BROKER = "amqp://guest:guest@127.0.0.1:5672/%2F"
FAST = IntegrationSettings(
    webhook_attempts_per_round=1, webhook_max_rounds=2, webhook_backoff_initial=0.05, webhook_backoff_max=0.1
)


@pytest.fixture
def names():
    suffix = uuid.uuid4().hex[:8]
    exchange, queue = f"govflow.test.{suffix}", f"govflow.test.{suffix}"
    yield exchange, queue
    connection = pika.BlockingConnection(pika.URLParameters(BROKER))
    channel = connection.channel()
    channel.queue_delete(queue)
    channel.exchange_delete(exchange)
    connection.close()


def consume(queue: str, until, timeout: float = 60.0) -> list[tuple[pika.BasicProperties, dict]]:
    """Read (and ack) messages until ``until(messages)`` or the timeout."""
    connection = pika.BlockingConnection(pika.URLParameters(BROKER))
    channel = connection.channel()
    got: list[tuple[pika.BasicProperties, dict]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not until(got):
        method, properties, body = channel.basic_get(queue)
        if method is None:
            time.sleep(0.05)
            continue
        got.append((properties, json.loads(body)))
        channel.basic_ack(method.delivery_tag)
    connection.close()
    return got


def feed_ids(app, principal) -> list[str]:
    ids, cursor = [], None
    while True:
        page = app.integrations.feed.read(principal, cursor, 1000)
        ids += [e["id"] for e in page.events]
        cursor = page.next
        if not page.has_more:
            return ids


def report(app, principal, i):
    return app.cases.report(principal, NewCase(channel="app", description=f"东街口井盖{i}", lat=26.0865, lng=119.3025))


def test_a_worker_publishes_the_outbox_to_rabbitmq(govflow, principals, names):
    exchange, queue = names
    hotline = principals["hotline12345"]
    env = {
        **os.environ,
        "GOVFLOW_DATABASE_URL": database_url(govflow.db),
        "GOVFLOW_RABBITMQ_URL": BROKER,
        "GOVFLOW_RABBITMQ_EXCHANGE": exchange,
        "GOVFLOW_RABBITMQ_QUEUE": queue,
        "GOVFLOW_DELIVERY_INTERVAL_SECONDS": "0.1",
    }
    connection = pika.BlockingConnection(pika.URLParameters(BROKER))  # what the plugin declares too
    connection.channel().queue_declare(queue, durable=True)
    connection.close()
    worker = subprocess.Popen(
        [sys.executable, "-m", "govflow.cli", "worker", "--interval", "0.2"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # the plugin's sink starts at the head when the worker first sees it: wait for its streams
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not streams_of(govflow, f"rabbitmq:{exchange}"):
            assert worker.poll() is None, "the worker exited"
            time.sleep(0.1)
        for i in range(5):
            report(govflow, hotline, i)
        # the worker also fires due timers (real time): wait until every event of the feed is published
        messages: list = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            messages += consume(queue, lambda got: False, timeout=0.5)
            expected = feed_ids(govflow, hotline)
            if set(expected) <= {body["id"] for _, body in messages}:
                break
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
    received = [body["id"] for _, body in messages]
    assert set(expected) <= set(received)  # at least once, nothing lost (the worker may fire timers meanwhile)
    by_case: dict[str, list[int]] = {}
    for properties, body in messages:
        assert properties.message_id == body["id"] and properties.content_type == "application/json"
        assert properties.delivery_mode == 2  # persistent
        by_case.setdefault(body["case_id"], []).append(body["seq"])
        assert "张伟" not in json.dumps(body, ensure_ascii=False) and body["district"] == "gulou"
    assert all(seqs == sorted(seqs) for seqs in by_case.values())


def test_an_unroutable_exchange_or_a_dead_broker_loses_nothing(govflow, principals, names):
    exchange, queue = names
    hotline = principals["hotline12345"]
    govflow.integration_settings = FAST
    unroutable = RabbitMQSink(BROKER, exchange, queue=None)  # no queue bound: the broker returns messages
    dead = RabbitMQSink("amqp://guest:guest@127.0.0.1:1/%2F", f"{exchange}.dead", queue=None)
    worker = govflow.integrations.delivery_worker(extra_sinks=[unroutable, dead])
    try:
        worker.tick()  # streams created at the head
        report(govflow, hotline, 0)
        expected = feed_ids(govflow, hotline)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            worker.tick()
            parked = consume_parked(govflow, unroutable.name)
            if parked == len(expected):
                break
            time.sleep(0.1)
        assert consume_parked(govflow, unroutable.name) == len(expected)
        assert consume_parked(govflow, dead.name) == len(expected)
        # a queue is bound now; the operator replays; everything arrives in order
        connection = pika.BlockingConnection(pika.URLParameters(BROKER))
        channel = connection.channel()
        channel.queue_declare(queue, durable=True)
        channel.queue_bind(queue, exchange, routing_key="#")
        connection.close()
        assert request_replay(govflow.db, unroutable.name, "operator", govflow.clock.now()) == len(expected)
        for _ in range(20):
            worker.tick()
        got = consume(queue, lambda got: len(got) >= len(expected), timeout=30)
        assert [body["id"] for _, body in got] == expected
    finally:
        worker.close()
        unroutable.close()


def consume_parked(app, sink: str) -> int:
    from sqlalchemy import func, select

    from govflow.engine.store.db import DeadLetter

    with app.db.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).where(DeadLetter.sink == sink, DeadLetter.status == "parked")
            ).scalar_one()
        )


def streams_of(app, sink: str) -> int:
    from sqlalchemy import func, select

    from govflow.engine.store.db import OutboxStream

    with app.db.connect() as conn:
        return int(conn.execute(select(func.count()).where(OutboxStream.sink == sink)).scalar_one())
