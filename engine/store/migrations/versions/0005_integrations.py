"""Integrations: the change feed (the outbox), webhook endpoints, delivery streams, dead letters,
the delivery log, and what Open311 requests brought beyond the case.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

from govflow.engine.store.db import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_BIGID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        "feed_head",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    op.execute("INSERT INTO feed_head (id, position) VALUES (1, 0)")
    op.create_table(
        "feed_events",
        sa.Column("position", _BIGID, primary_key=True, autoincrement=False),
        sa.Column("case_id", sa.Uuid, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("district", sa.String(64), nullable=False),
        sa.Column("unit", sa.String(64), nullable=True),
        sa.Column("reporter", sa.String(64), nullable=False),
        sa.Column("shard", sa.Integer, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.UniqueConstraint("case_id", "seq", name="uq_feed_events_case_seq"),
    )
    op.create_index("ix_feed_events_shard_position", "feed_events", ["shard", "position"])
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("district", sa.String(64), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("kinds", sa.JSON, nullable=False),
        sa.Column("description", sa.String(256), nullable=True),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("disabled_at", UTCDateTime, nullable=True),
    )
    op.create_index("ix_webhook_endpoints_owner", "webhook_endpoints", ["owner"])
    op.create_table(
        "outbox_streams",
        sa.Column("sink", sa.String(128), primary_key=True),
        sa.Column("shard", sa.Integer, primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=True),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        sa.Column("lease_until", UTCDateTime, nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column("sink", sa.String(128), nullable=False),
        sa.Column("shard", sa.Integer, nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("case_id", sa.Uuid, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("parked_at", UTCDateTime, nullable=False),
        sa.Column("replay_requested_at", UTCDateTime, nullable=True),
        sa.Column("replay_requested_by", sa.String(64), nullable=True),
        sa.Column("delivered_at", UTCDateTime, nullable=True),
        sa.UniqueConstraint("sink", "position", name="uq_dead_letters_sink_position"),
    )
    op.create_index("ix_dead_letters_sink_status", "dead_letters", ["sink", "status"])
    op.create_table(
        "delivery_log",
        sa.Column("id", _BIGID, primary_key=True, autoincrement=True),
        sa.Column("sink", sa.String(128), nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("error", sa.String(500), nullable=True),
        sa.Column("duration_ms", sa.Float, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_delivery_log_sink_at", "delivery_log", ["sink", "at"])
    op.create_table(
        "open311_requests",
        sa.Column("case_id", sa.Uuid, sa.ForeignKey("cases.id"), primary_key=True),
        sa.Column("token", sa.String(64), nullable=False, unique=True),
        sa.Column("jurisdiction", sa.String(64), nullable=False),
        sa.Column("service_code", sa.String(64), nullable=False),
        sa.Column("attributes", sa.JSON, nullable=False),
        sa.Column("media_url", sa.String(2048), nullable=True),
        sa.Column("address_id", sa.String(128), nullable=True),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("account_id", sa.String(128), nullable=True),
        sa.Column("device_id", sa.String(128), nullable=True),
        sa.Column("submitted_by", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":  # the feed is append-only, like the record it mirrors
        op.execute(
            "CREATE FUNCTION feed_events_append_only() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION 'feed_events is append-only'; END; $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER feed_events_no_change BEFORE UPDATE OR DELETE ON feed_events "
            "FOR EACH ROW EXECUTE FUNCTION feed_events_append_only()"
        )
    elif bind.dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER feed_events_no_{verb.lower()} BEFORE {verb} ON feed_events "
                "BEGIN SELECT RAISE(ABORT, 'feed_events is append-only'); END"
            )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS feed_events_no_change ON feed_events")
        op.execute("DROP FUNCTION IF EXISTS feed_events_append_only()")
    op.drop_table("open311_requests")
    op.drop_index("ix_delivery_log_sink_at", "delivery_log")
    op.drop_table("delivery_log")
    op.drop_index("ix_dead_letters_sink_status", "dead_letters")
    op.drop_table("dead_letters")
    op.drop_table("outbox_streams")
    op.drop_index("ix_webhook_endpoints_owner", "webhook_endpoints")
    op.drop_table("webhook_endpoints")
    op.drop_index("ix_feed_events_shard_position", "feed_events")
    op.drop_table("feed_events")
    op.drop_table("feed_head")
