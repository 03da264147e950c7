"""govflow-rabbitmq: publish the outbox to RabbitMQ (see README.md).

Implements ``govflow_outbox_sinks``: when ``GOVFLOW_RABBITMQ_URL`` is set, one sink that publishes
each event to a durable topic exchange with publisher confirms. govflow's delivery worker calls
``deliver`` once per event, in per-case order, and retries (then parks as a dead letter) whatever
raises ``DeliveryFailed``.
"""

from __future__ import annotations

import fnmatch
import json
import os
import threading
from typing import Any

import pika
import pika.exceptions

from govflow.engine.integrations.delivery import DeliveryFailed
from govflow.plugins import hookimpl

DEFAULT_EXCHANGE = "govflow.events"


class RabbitMQSink:
    """Publishes events to ``exchange`` (topic; routing key ``<district>.<kind>``), confirmed by the broker."""

    def __init__(
        self,
        url: str,
        exchange: str = DEFAULT_EXCHANGE,
        queue: str | None = DEFAULT_EXCHANGE,
        kinds: tuple[str, ...] = (),
    ) -> None:
        self.url, self.exchange, self.queue, self.kinds = url, exchange, queue, kinds
        self.name = f"rabbitmq:{exchange}"
        self._local = threading.local()  # pika's BlockingConnection is not thread-safe: one per thread

    def condition(self) -> Any:
        return None

    def wants(self, kind: str) -> bool:
        return not self.kinds or any(kind == k or fnmatch.fnmatchcase(kind, k) for k in self.kinds)

    def _channel(self) -> Any:
        channel = getattr(self._local, "channel", None)
        if channel is not None and channel.is_open:
            return channel
        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        channel = connection.channel()
        channel.confirm_delivery()
        channel.exchange_declare(self.exchange, exchange_type="topic", durable=True)
        if self.queue:
            channel.queue_declare(self.queue, durable=True)
            channel.queue_bind(self.queue, self.exchange, routing_key="#")
        self._local.connection, self._local.channel = connection, channel
        return channel

    def _drop(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = self._local.channel = None
        if connection is not None and connection.is_open:
            try:
                connection.close()
            except Exception:  # already broken
                pass

    def deliver(self, event: dict[str, Any]) -> int | None:
        body = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()
        properties = pika.BasicProperties(
            content_type="application/json",
            delivery_mode=pika.DeliveryMode.Persistent,
            message_id=event["id"],
            type=event["kind"],
            headers={"case_id": event["case_id"], "seq": event["seq"]},
        )
        try:
            # mandatory: a message no queue takes is returned (UnroutableError), never dropped silently
            self._channel().basic_publish(
                self.exchange, f"{event['district']}.{event['kind']}", body, properties, mandatory=True
            )
        except pika.exceptions.UnroutableError:
            raise DeliveryFailed(f"no queue is bound to {self.exchange} for {event['kind']}") from None
        except pika.exceptions.NackError:
            raise DeliveryFailed("the broker refused the message (nack)") from None
        except (pika.exceptions.AMQPError, OSError) as exc:
            self._drop()
            raise DeliveryFailed(f"RabbitMQ: {type(exc).__name__}: {exc}"[:300]) from None
        return None

    def close(self) -> None:
        self._drop()


@hookimpl
def govflow_outbox_sinks() -> list[Any] | None:
    url = os.environ.get("GOVFLOW_RABBITMQ_URL")
    if not url:
        return None
    queue = os.environ.get("GOVFLOW_RABBITMQ_QUEUE", DEFAULT_EXCHANGE)
    kinds = tuple(k.strip() for k in os.environ.get("GOVFLOW_RABBITMQ_KINDS", "").split(",") if k.strip())
    return [RabbitMQSink(url, os.environ.get("GOVFLOW_RABBITMQ_EXCHANGE", DEFAULT_EXCHANGE), queue or None, kinds)]


__all__ = ["RabbitMQSink", "govflow_outbox_sinks"]
