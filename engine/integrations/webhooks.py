"""Integrators' webhook endpoints: registration, URL safety, signing (Standard Webhooks), administration.

An endpoint has a URL, a secret, the event kinds it wants (exact kinds or ``prefix.*``; none means
all), a district, and an owner — the principal that registered it. It receives the events of that
district its owner may read (the feed's rules: ``read_case`` per owner unit, the owner's own
reports), from the moment it was registered, through the outbox (:mod:`.delivery`): at least once,
in per-case order, each signed.

Signing follows the Standard Webhooks specification, so receivers can verify with any of its
libraries: headers ``webhook-id`` (the event id ``<case id>:<seq>``, the same on every retry:
de-duplicate on it), ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``
(``v1,`` + base64 HMAC-SHA256 over ``"{id}.{timestamp}.{body}"``, keyed with the secret's bytes).
Secrets are ``whsec_`` + base64 of 24 to 64 random bytes; govflow makes one when none is given and
shows it once, at registration. It is stored as given (the worker must sign with it).

URL safety: only ``http``/``https``, no user name or password in the URL, and a host whose every
address is public: loopback, private, link-local, multicast, reserved and unspecified addresses
are refused unless the operator lists their network (``GOVFLOW_WEBHOOK_ALLOWED_NETWORKS``).
Checked at registration and again before each delivery (the name may resolve elsewhere later);
redirects are never followed.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import fnmatch
import hashlib
import hmac
import ipaddress
import re
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Engine

from govflow.engine.access.identity import Principal, from_row
from govflow.engine.integrations.feed import SHARDS, Feed, head
from govflow.engine.model.clock import Clock
from govflow.engine.model.errors import InvalidInput, NotFound, PermissionDenied
from govflow.engine.store.db import DeadLetter, DeliveryLogEntry, OutboxStream, WebhookEndpoint
from govflow.engine.store.db import Principal as PrincipalRow

URL_MAX = 2048
KINDS_MAX = 50
DESCRIPTION_MAX = 256
_KIND = re.compile(r"^(\*|[a-z][a-z0-9_]*(\.[a-z0-9_]+)*(\.\*)?)$")
SECRET_PREFIX = "whsec_"


def webhook_sink_name(endpoint_id: uuid.UUID | str) -> str:
    return f"webhook:{endpoint_id}"


# -- secrets and signatures ----------------------------------------------------------------
def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret; InvalidInput for anything else."""
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not secret.startswith(SECRET_PREFIX) or not 24 <= len(key) <= 64:
        raise InvalidInput(
            "the secret must be whsec_ followed by base64 of 24 to 64 bytes (or leave it out: govflow makes one)",
            errors=[{"loc": ["body", "secret"], "msg": "whsec_ + base64 of 24 to 64 random bytes"}],
        )
    return key


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value (Standard Webhooks, version 1)."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, message_id: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    stamp = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": signature(secret, message_id, stamp, body),
    }


# -- URL safety ------------------------------------------------------------------------------
def parse_networks(networks: Iterable[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(n.strip(), strict=False) for n in networks if n.strip())


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


class UrlRefused(InvalidInput):
    """A webhook URL govflow will not post to."""


class UrlPolicy:
    """Which webhook URLs may be used (see module doc). Resolutions are cached for ``ttl`` seconds."""

    def __init__(
        self, allowed_networks: Iterable[str] = (), *, ttl: float = 60.0, resolve: Any = socket.getaddrinfo
    ) -> None:
        self.allowed = parse_networks(allowed_networks)
        self.ttl = ttl
        self.resolve = resolve
        self._resolved: dict[tuple[str, int], tuple[float, list[str]]] = {}
        self._lock = threading.Lock()

    def _addresses(self, host: str, port: int) -> list[str]:
        key = (host, port)
        with self._lock:
            hit = self._resolved.get(key)
            if hit and hit[0] > time.monotonic():
                return hit[1]
        try:
            infos = self.resolve(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise UrlRefused(
                f"the host {host!r} cannot be resolved", errors=[{"loc": ["body", "url"], "msg": "unknown host"}]
            ) from None
        addresses = sorted({str(info[4][0]) for info in infos})
        with self._lock:
            if len(self._resolved) > 1024:
                self._resolved.clear()
            self._resolved[key] = (time.monotonic() + self.ttl, addresses)
        return addresses

    def check(self, url: str) -> str:
        """The URL, if govflow may post to it; UrlRefused saying why otherwise."""

        def refuse(msg: str) -> UrlRefused:
            return UrlRefused(f"webhook URL refused: {msg}", errors=[{"loc": ["body", "url"], "msg": msg}])

        if not isinstance(url, str) or not url or len(url) > URL_MAX:
            raise refuse(f"1 to {URL_MAX} characters")
        if any(ord(c) < 33 or c == "\x7f" for c in url):
            raise refuse("no spaces or control characters")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise refuse(str(exc)) from None
        if parts.scheme not in ("http", "https"):
            raise refuse("only http and https URLs")
        if parts.username is not None or parts.password is not None:
            raise refuse("no user name or password in the URL (sign with the secret instead)")
        host = parts.hostname
        if not host:
            raise refuse("a host is required")
        port = port or (443 if parts.scheme == "https" else 80)
        for text in self._addresses(host, port):
            address = ipaddress.ip_address(text.split("%", 1)[0])
            if _public(address) or any(address in net for net in self.allowed):
                continue
            raise refuse(
                f"{host} resolves to {address}, a loopback, private or reserved address "
                "(the operator may allow its network: GOVFLOW_WEBHOOK_ALLOWED_NETWORKS)"
            )
        return url


def check_kinds(kinds: Sequence[str] | None) -> list[str]:
    kinds = list(kinds or [])
    bad = [k for k in kinds if not isinstance(k, str) or len(k) > 64 or not _KIND.match(k)]
    if len(kinds) > KINDS_MAX or bad:
        raise InvalidInput(
            "event kinds are dotted lower-case names (case.stage), a prefix pattern (task.*) or *",
            errors=[{"loc": ["body", "kinds"], "msg": f"at most {KINDS_MAX}; refused: {bad[:5]}"}],
        )
    return sorted(set(kinds))


def kind_matches(kinds: Sequence[str], kind: str) -> bool:
    return not kinds or any(k == kind or fnmatch.fnmatchcase(kind, k) for k in kinds)


# -- administration ------------------------------------------------------------------------------
class Webhooks:
    """Register, list, read, disable endpoints; their delivery log and dead letters; replays.

    Registering needs ``manage_webhooks`` in the district (Casbin, the caller's own domain); an
    endpoint is then managed by its owner. Operators holding ``replay_deliveries`` in the district
    may read and replay every endpoint of it.
    """

    def __init__(self, db: Engine, feed: Feed, clock: Clock, urls: UrlPolicy) -> None:
        self.db, self.feed, self.clock, self.urls = db, feed, clock, urls

    def register(
        self,
        principal: Principal,
        *,
        url: str,
        district: str | None = None,
        kinds: Sequence[str] | None = None,
        secret: str | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        districts = self.feed.packs.districts()
        district = district or principal.district or (districts[0] if len(districts) == 1 else None)
        if district not in districts:
            raise InvalidInput(
                f"unknown district {district!r}", errors=[{"loc": ["body", "district"], "msg": "a district code"}]
            )
        assert district is not None
        self.feed.visibility(principal, action="manage_webhooks", districts=[district])
        if description is not None and (len(description) > DESCRIPTION_MAX or "\x00" in description):
            raise InvalidInput(
                "description too long or with a NUL character",
                errors=[{"loc": ["body", "description"], "msg": f"at most {DESCRIPTION_MAX} characters, no NUL"}],
            )
        kinds = check_kinds(kinds)
        url = self.urls.check(url)
        secret = secret or new_secret()
        secret_key(secret)  # base64 only: no NUL can pass
        now = self.clock.now()
        endpoint_id = uuid.uuid4()
        sink = webhook_sink_name(endpoint_id)
        with self.db.begin() as conn:
            start = head(conn)  # events committed from now on
            conn.execute(
                insert(WebhookEndpoint),
                {
                    "id": endpoint_id,
                    "owner": principal.id,
                    "district": district,
                    "url": url,
                    "secret": secret,
                    "kinds": kinds,
                    "description": description,
                    "active": True,
                    "created_at": now,
                    "disabled_at": None,
                },
            )
            conn.execute(
                insert(OutboxStream),
                [{"sink": sink, "shard": s, "position": start, "attempts": 0} for s in range(SHARDS)],
            )
        return {**self._view(self._row(endpoint_id)), "secret": secret}

    def _row(self, endpoint_id: uuid.UUID) -> Any:
        with self.db.connect() as conn:
            row = conn.execute(select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)).first()
        if row is None:
            raise NotFound("no such webhook", webhook=str(endpoint_id))
        return row

    def _may_operate(self, principal: Principal, district: str) -> bool:
        try:
            self.feed.visibility(principal, action="replay_deliveries", districts=[district])
        except PermissionDenied:
            return False
        return True

    def endpoint(self, principal: Principal, endpoint_id: str) -> Any:
        """The endpoint row, if the caller owns it or operates its district (else NotFound)."""
        try:
            eid = uuid.UUID(str(endpoint_id))
        except ValueError:
            raise NotFound("no such webhook", webhook=str(endpoint_id)[:64]) from None
        row = self._row(eid)
        if row.owner != principal.id and not self._may_operate(principal, row.district):
            raise NotFound("no such webhook", webhook=str(endpoint_id))
        return row

    @staticmethod
    def _view(row: Any) -> dict[str, Any]:
        return {
            "id": str(row.id),
            "url": row.url,
            "district": row.district,
            "kinds": list(row.kinds),
            "description": row.description,
            "owner": row.owner,
            "active": row.active,
            "created_at": row.created_at,
            "disabled_at": row.disabled_at,
        }

    def endpoints(self, principal: Principal) -> list[dict[str, Any]]:
        with self.db.connect() as conn:
            rows = conn.execute(select(WebhookEndpoint).order_by(WebhookEndpoint.created_at)).all()
        operated = {d for d in {r.district for r in rows} if self._may_operate(principal, d)}
        return [self._view(r) for r in rows if r.owner == principal.id or r.district in operated]

    def status(self, principal: Principal, endpoint_id: str) -> dict[str, Any]:
        row = self.endpoint(principal, endpoint_id)
        sink = webhook_sink_name(row.id)
        with self.db.connect() as conn:
            top = head(conn)
            streams = conn.execute(select(OutboxStream).where(OutboxStream.sink == sink)).all()
            letters = dict(
                conn.execute(
                    select(DeadLetter.status, func.count()).where(DeadLetter.sink == sink).group_by(DeadLetter.status)
                ).all()
            )
        retrying = [s for s in streams if s.attempts]
        return {
            **self._view(row),
            "behind": sum(1 for s in streams if s.position < top),
            "retrying": [
                {"shard": s.shard, "attempts": s.attempts, "next_attempt_at": s.next_attempt_at, "error": s.last_error}
                for s in retrying
            ],
            "dead_letters": {k: int(v) for k, v in letters.items()},
        }

    def disable(self, principal: Principal, endpoint_id: str) -> dict[str, Any]:
        row = self.endpoint(principal, endpoint_id)
        with self.db.begin() as conn:
            conn.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id == row.id, WebhookEndpoint.active.is_(True))
                .values(active=False, disabled_at=self.clock.now())
            )
        return self._view(self._row(row.id))

    def deliveries(self, principal: Principal, endpoint_id: str, limit: int = 100) -> list[dict[str, Any]]:
        row = self.endpoint(principal, endpoint_id)
        with self.db.connect() as conn:
            entries = conn.execute(
                select(DeliveryLogEntry)
                .where(DeliveryLogEntry.sink == webhook_sink_name(row.id))
                .order_by(DeliveryLogEntry.id.desc())
                .limit(max(1, min(limit, 1000)))
            ).all()
        return [delivery_view(e) for e in entries]

    def dead_letters(self, principal: Principal, endpoint_id: str, limit: int = 100) -> list[dict[str, Any]]:
        row = self.endpoint(principal, endpoint_id)
        return list_dead_letters(self.db, webhook_sink_name(row.id), limit)

    def replay(self, principal: Principal, endpoint_id: str, ids: Sequence[int] | None = None) -> int:
        row = self.endpoint(principal, endpoint_id)
        if row.owner != principal.id:
            self.feed.visibility(principal, action="replay_deliveries", districts=[row.district])
        return request_replay(self.db, webhook_sink_name(row.id), principal.id, self.clock.now(), ids)

    def owner_of(self, owner: str) -> Principal | None:
        with self.db.connect() as conn:
            row = conn.execute(
                select(PrincipalRow).where(PrincipalRow.id == owner, PrincipalRow.active.is_(True))
            ).first()
        return from_row(row) if row is not None else None


def delivery_view(entry: Any) -> dict[str, Any]:
    return {
        "event_id": entry.event_id,
        "outcome": entry.outcome,
        "status_code": entry.status_code,
        "error": entry.error,
        "duration_ms": round(entry.duration_ms, 1),
        "at": entry.at,
    }


def list_dead_letters(db: Engine, sink: str, limit: int = 100) -> list[dict[str, Any]]:
    from govflow.engine.store.db import FeedEvent

    with db.connect() as conn:
        rows = conn.execute(
            select(DeadLetter, FeedEvent.payload)
            .join(FeedEvent, FeedEvent.position == DeadLetter.position)
            .where(DeadLetter.sink == sink)
            .order_by(DeadLetter.position)
            .limit(max(1, min(limit, 1000)))
        ).all()
    return [
        {
            "id": r.id,
            "event_id": r.payload["id"],
            "kind": r.payload["kind"],
            "case_id": str(r.case_id),
            "status": r.status,
            "reason": r.reason,
            "attempts": r.attempts,
            "parked_at": r.parked_at,
            "replay_requested_at": r.replay_requested_at,
            "delivered_at": r.delivered_at,
        }
        for r in rows
    ]


def request_replay(db: Engine, sink: str, who: str, now: dt.datetime, ids: Sequence[int] | None = None) -> int:
    """Mark parked dead letters of ``sink`` (all, or those ``ids``) for redelivery; returns how many."""
    statement = update(DeadLetter).where(DeadLetter.sink == sink, DeadLetter.status == "parked")
    if ids is not None:
        statement = statement.where(DeadLetter.id.in_(list(ids)))
    with db.begin() as conn:
        result = conn.execute(statement.values(status="replay", replay_requested_at=now, replay_requested_by=who))
    return int(result.rowcount)


__all__ = [
    "SECRET_PREFIX",
    "UrlPolicy",
    "UrlRefused",
    "Webhooks",
    "check_kinds",
    "delivery_view",
    "kind_matches",
    "list_dead_letters",
    "new_secret",
    "request_replay",
    "secret_key",
    "signature",
    "signed_headers",
    "webhook_sink_name",
]
