"""Persistence: the schema (SQLAlchemy 2.x typed models) and engine creation.

A case is **one row** (:class:`CaseRow`) plus an **append-only event log**
(:class:`CaseEvent`); its open user tasks are mirrored to :class:`CaseTask` for
inbox queries. The schema is created and changed only by Alembic migrations
(``govflow db upgrade``); ``tests/engine/test_migrations.py`` checks that the
migrations and these models agree.

Times are stored as UTC; :class:`UTCDateTime` hands back aware datetimes on
SQLite too. The event log refuses ``UPDATE`` and ``DELETE`` with database
triggers (see the initial migration).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from govflow.engine.model.clock import to_utc


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on every back-end (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        value = to_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return None if value is None else to_utc(value)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dt.datetime: UTCDateTime, dict[str, Any]: JSON, list[str]: JSON}


class PackVersion(Base):
    """A deployed version of a process pack, with its files (so any process can load it)."""

    __tablename__ = "pack_versions"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_pack_name_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(32))
    district: Mapped[str] = mapped_column(String(64), index=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    archive: Mapped[bytes] = mapped_column(LargeBinary)
    active: Mapped[bool] = mapped_column(Boolean, default=False)
    deployed_at: Mapped[dt.datetime]
    deployed_by: Mapped[str] = mapped_column(String(64))


class Principal(Base):
    """Someone (or some system) that holds a bearer token; tokens are stored hashed."""

    __tablename__ = "principals"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))  # person | system
    district: Mapped[str | None] = mapped_column(String(64))
    unit_code: Mapped[str | None] = mapped_column(String(64), index=True)
    roles: Mapped[list[str]]
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime]


class CaseRow(Base):
    """One case: identity, routing, lifecycle stage, workflow state, optimistic-lock version."""

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_next_due", "next_due"),
        Index("ix_cases_owner_status", "owner_unit", "status"),
        Index("ix_cases_escalated_to", "escalated_to"),
        Index("ix_cases_district_created", "district", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    district: Mapped[str] = mapped_column(String(64))
    pack_name: Mapped[str] = mapped_column(String(64))
    pack_version: Mapped[str] = mapped_column(String(32))
    process_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))
    owner_unit: Mapped[str | None] = mapped_column(String(64))
    matter: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text)
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)
    address: Mapped[str | None] = mapped_column(String(256))
    reporter_name: Mapped[str | None] = mapped_column(String(64))
    reporter_phone: Mapped[str | None] = mapped_column(String(32))
    reported_by: Mapped[str] = mapped_column(String(64), index=True)
    state: Mapped[bytes] = mapped_column(LargeBinary)
    next_due: Mapped[dt.datetime | None]
    event_seq: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    closed_at: Mapped[dt.datetime | None]
    overdue_since: Mapped[dt.datetime | None]
    escalated_to: Mapped[str | None] = mapped_column(String(64))


class CaseTask(Base):
    """An open user task of a case, mirrored for inbox queries (deleted when done)."""

    __tablename__ = "case_tasks"
    __table_args__ = (  # each inbox in its order: filter and sort from one index (migration 0008)
        Index("ix_case_tasks_unit_role_due", "unit_code", "role", "due_at", "created_at"),
        Index("ix_case_tasks_assignee_due", "assignee_user", "due_at", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(256))
    stage: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    unit_code: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(64))
    assignee_user: Mapped[str | None] = mapped_column(String(64))
    due_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime]


class CaseEvent(Base):
    """One entry of a case's append-only timeline: who, when, what, under which power."""

    __tablename__ = "case_events"
    __table_args__ = (UniqueConstraint("case_id", "seq", name="uq_case_events_case_seq"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id"))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[dt.datetime]
    kind: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(64))
    actor_unit: Mapped[str | None] = mapped_column(String(64))
    power: Mapped[str | None] = mapped_column(String(256))
    data: Mapped[dict[str, Any]]


class IdempotencyKey(Base):
    """A create request's Idempotency-Key, per principal, and the case it created."""

    __tablename__ = "idempotency_keys"

    principal_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id"))
    created_at: Mapped[dt.datetime]


class PersonalDataAccess(Base):
    """Every time a reporter's unmasked personal data was shown, and to whom."""

    __tablename__ = "personal_data_access"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id"), index=True)
    principal_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime]
    fields: Mapped[list[str]]


class Delegation(Base):
    """A call-out power (呼叫权) delegated to a street for a department, until an expiry.

    Granted by a district supervisor; never updated or deleted (the record is
    append-only); an expired delegation simply stops allowing anything.
    """

    __tablename__ = "delegations"
    __table_args__ = (Index("ix_delegations_lookup", "district", "street", "department"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    district: Mapped[str] = mapped_column(String(64))
    street: Mapped[str] = mapped_column(String(64))
    department: Mapped[str] = mapped_column(String(64))
    matter_pattern: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(1000))
    granted_by: Mapped[str] = mapped_column(String(64))
    granted_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]


class CaseParty(Base):
    """A unit involved in a case beyond its owner (a called department), and since when."""

    __tablename__ = "case_parties"

    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id"), primary_key=True)
    unit_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))  # main | cooperating
    power: Mapped[str] = mapped_column(String(256))
    since: Mapped[dt.datetime]


class Rating(Base):
    """An evaluation (评价) in one of three directions, one per party, dimension and target."""

    __tablename__ = "ratings"
    __table_args__ = (UniqueConstraint("case_id", "rater_party", "target", "dimension", name="uq_ratings_once"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id"), index=True)
    direction: Mapped[str] = mapped_column(String(32))  # street_to_department | department_to_street | citizen_to_case
    rater_party: Mapped[str] = mapped_column(String(64))  # the rating unit, or the reporter's principal id
    rater: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(64))
    dimension: Mapped[str] = mapped_column(String(32))  # report_in | disposal | accuracy | satisfaction
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(String(1000))
    at: Mapped[dt.datetime]


class OversightCase(Base):
    """What the supervision projection remembers of a case between its events (see engine/oversight)."""

    __tablename__ = "oversight_cases"

    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id"), primary_key=True)
    district: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str | None] = mapped_column(String(64))
    matter: Mapped[str | None] = mapped_column(String(64))
    handled: Mapped[bool] = mapped_column(Boolean)
    called: Mapped[bool] = mapped_column(Boolean)
    stage: Mapped[str | None] = mapped_column(String(32))  # where the live board counts it (migration 0007)
    dues: Mapped[list[Any] | None] = mapped_column(JSON)  # open tasks' due times as they opened (0007)
    last_seq: Mapped[int] = mapped_column(Integer)


class EarlyWarning(Base):
    """An early warning (预警) with its evidence; append-only, one per kind, unit, matter, place, window."""

    __tablename__ = "warnings"
    __table_args__ = (
        UniqueConstraint("district", "kind", "unit", "matter", "place", "window_key", name="uq_warnings_once"),
        Index("ix_warnings_district_raised", "district", "raised_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    district: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # burst | rising | repeat
    unit: Mapped[str] = mapped_column(String(64))  # "" when the place spans units
    matter: Mapped[str] = mapped_column(String(64))
    place: Mapped[str] = mapped_column(String(64))  # a grid cell for repeats, else ""
    window_key: Mapped[str] = mapped_column(String(64))
    raised_at: Mapped[dt.datetime]
    evidence: Mapped[dict[str, Any]]


class RateCounter(Base):
    """One supervision counter: a sum of increments by district, local day, unit, matter and metric."""

    __tablename__ = "rate_counters"
    __table_args__ = (Index("ix_rate_counters_district_day", "district", "day"),)

    district: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # district-local date, YYYY-MM-DD
    unit: Mapped[str] = mapped_column(String(64), primary_key=True)  # "" when none
    matter: Mapped[str] = mapped_column(String(64), primary_key=True)  # "" when none
    metric: Mapped[str] = mapped_column(String(96), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create a SQLAlchemy engine; SQLite gets WAL, foreign keys and a busy timeout.

    ``postgresql://`` URLs use psycopg 3 (the driver govflow installs).
    """
    # a failed statement's parameters (a reporter's name, phone, description) never reach an
    # exception message, and so never a log line
    kwargs.setdefault("hide_parameters", True)
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


# -- integrations (engine/integrations): the change feed, the outbox's delivery, Open311 --------------------
class FeedHead(Base):
    """One row: the last feed position handed out. Taking it (``UPDATE … RETURNING``) at the end of a
    commit's transaction serialises the feed's positions in commit order (docs/integrations.md)."""

    __tablename__ = "feed_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger)


class FeedEvent(Base):
    """The change feed and outbox: every committed case event, public form, numbered in commit order.

    Written in the transaction of the change itself (a projector of the unit of work), never
    updated. ``unit`` is the case's owner and ``reporter`` its reporter at commit time: they decide
    who may read the event and are never handed out. ``payload`` holds no personal data.
    """

    __tablename__ = "feed_events"
    __table_args__ = (
        UniqueConstraint("case_id", "seq", name="uq_feed_events_case_seq"),
        Index("ix_feed_events_shard_position", "shard", "position"),
    )

    position: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    case_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[dt.datetime]
    kind: Mapped[str] = mapped_column(String(64))
    district: Mapped[str] = mapped_column(String(64))
    unit: Mapped[str | None] = mapped_column(String(64))
    reporter: Mapped[str] = mapped_column(String(64))
    shard: Mapped[int] = mapped_column(Integer)
    payload: Mapped[dict[str, Any]]


class WebhookEndpoint(Base):
    """An integrator's webhook: where to post which events of which district, signed with ``secret``."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    district: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(String(2048))
    secret: Mapped[str] = mapped_column(String(128))
    kinds: Mapped[list[str]]
    description: Mapped[str | None] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime]
    disabled_at: Mapped[dt.datetime | None]


class OutboxStream(Base):
    """Where one sink (a webhook, a plugin's publisher) stands in one shard of the feed, and who holds it."""

    __tablename__ = "outbox_streams"

    sink: Mapped[str] = mapped_column(String(128), primary_key=True)
    shard: Mapped[int] = mapped_column(Integer, primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))


class DeadLetter(Base):
    """An event a sink could not take (or one held behind such an event of the same case), until replayed."""

    __tablename__ = "dead_letters"
    __table_args__ = (
        UniqueConstraint("sink", "position", name="uq_dead_letters_sink_position"),
        Index("ix_dead_letters_sink_status", "sink", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    sink: Mapped[str] = mapped_column(String(128))
    shard: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(BigInteger)
    case_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(16))  # parked | replay | delivered
    reason: Mapped[str] = mapped_column(String(500))
    attempts: Mapped[int] = mapped_column(Integer)
    parked_at: Mapped[dt.datetime]
    replay_requested_at: Mapped[dt.datetime | None]
    replay_requested_by: Mapped[str | None] = mapped_column(String(64))
    delivered_at: Mapped[dt.datetime | None]


class DeliveryLogEntry(Base):
    """One attempt to hand an event to a sink: when, how it went, how long it took."""

    __tablename__ = "delivery_log"
    __table_args__ = (Index("ix_delivery_log_sink_at", "sink", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    sink: Mapped[str] = mapped_column(String(128))
    position: Mapped[int] = mapped_column(BigInteger)
    event_id: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))  # delivered | failed | dead | held | redelivered
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(500))
    duration_ms: Mapped[float] = mapped_column(Float)
    at: Mapped[dt.datetime]


class Open311Request(Base):
    """What an Open311 GeoReport v2 request brought beyond the case itself.

    ``email``, ``account_id`` and ``device_id`` are the reporter's personal data (like the case's
    reporter name and phone): never in a GET answer, the feed or a webhook.
    """

    __tablename__ = "open311_requests"

    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id"), primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    jurisdiction: Mapped[str] = mapped_column(String(64))
    service_code: Mapped[str] = mapped_column(String(64))
    attributes: Mapped[dict[str, Any]]
    media_url: Mapped[str | None] = mapped_column(String(2048))
    address_id: Mapped[str | None] = mapped_column(String(128))
    email: Mapped[str | None] = mapped_column(String(254))
    account_id: Mapped[str | None] = mapped_column(String(128))
    device_id: Mapped[str | None] = mapped_column(String(128))
    submitted_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]


class Incident(Base):
    """A failure of diagram code (or of restoring a case) during a timer or worker run.

    Open until a run of the same case succeeds (an operator's retry, after fixing the cause); the
    case keeps its last good state meanwhile. Opening, failing again and resolving are also events
    on the case's record (written through the unit of work).
    """

    __tablename__ = "incidents"
    __table_args__ = (
        Index("ix_incidents_status_district", "status", "district"),
        Index("ix_incidents_case", "case_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id"))
    district: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))  # timer | worker
    element: Mapped[str | None] = mapped_column(String(128))
    error: Mapped[str] = mapped_column(String(1000))
    status: Mapped[str] = mapped_column(String(16))  # open | resolved
    attempts: Mapped[int] = mapped_column(Integer)
    opened_at: Mapped[dt.datetime]
    failed_at: Mapped[dt.datetime]
    retry_at: Mapped[dt.datetime | None]
    resolved_at: Mapped[dt.datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(64))
