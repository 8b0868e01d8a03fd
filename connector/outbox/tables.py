"""The outbox's tables: events, deliveries, attempts and breakers (SQLAlchemy Core).

Times are UNIX seconds (floats) so SQLite and PostgreSQL behave the same. A delivery's `state`
is a `connector.contract.State`; its pending states are the queue."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()


events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source_id", String(128), nullable=False),
    Column("event_id", String(128), nullable=False),
    Column("type", String(64), nullable=False),
    Column("environment", String(16), nullable=False),
    Column("email", String(320)),
    Column("event_time", Float, nullable=False),
    Column("received_at", Float, nullable=False),
    Column("payload", Text, nullable=False),
    UniqueConstraint("source_id", "event_id", name="uq_events_source_event"),
    Index("ix_events_received", "received_at"),
    Index("ix_events_email", "email"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("event_pk", Integer, ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
    Column("partner_id", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("environment", String(16), nullable=False),
    Column("partner_key_id", String(128)),
    Column("contact_key", String(600)),
    Column("batch_key", String(600)),
    Column("event_time", Float, nullable=False),
    Column("spec", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason", Text),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float),
    Column("lease_owner", String(128)),
    Column("lease_expires_at", Float),
    Column("last_status", Integer),
    Column("last_error_code", String(128)),
    Column("last_error_message", Text),
    Column("last_latency_ms", Float),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_deliveries_due", "state", "next_attempt_at"),
    Index("ix_deliveries_contact", "contact_key", "event_time"),
    Index("ix_deliveries_event", "event_pk"),
    Index("ix_deliveries_updated", "updated_at"),
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("delivery_id", Integer, ForeignKey("deliveries.id", ondelete="CASCADE"), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("status", Integer),
    Column("error_code", String(128)),
    Column("error_message", Text),
    Column("latency_ms", Float),
    Column("batch_size", Integer, nullable=False, default=1),
    Column("request", Text),
    Column("response", Text),
    Index("ix_attempts_delivery", "delivery_id"),
)

# A paused key or an open circuit; `scope` is a contract.KeyScope / CircuitScope as text.
breakers = Table(
    "breakers",
    metadata,
    Column("scope", String(300), primary_key=True),
    Column("state", String(16), nullable=False),  # closed | open | paused
    Column("reason", Text),
    Column("failures", Integer, nullable=False, default=0),
    Column("opened", Integer, nullable=False, default=0),
    Column("probe_at", Float),
    Column("updated_at", Float, nullable=False),
)

# One row per pull source: where its next poll starts, who polls it now (a lease, so one
# worker at a time polls a source across all workers), and how its last polls went.
pollers = Table(
    "pollers",
    metadata,
    Column("source_id", String(128), primary_key=True),
    Column("cursor", Text),
    Column("lease_owner", String(128)),
    Column("lease_expires_at", Float),
    Column("next_poll_at", Float, nullable=False, default=0.0),
    Column("last_poll_at", Float),
    Column("last_ok_at", Float),
    Column("last_error", Text),
    Column("failures", Integer, nullable=False, default=0),
    Column("rows_read", Integer, nullable=False, default=0),
    Column("events_produced", Integer, nullable=False, default=0),
    Column("updated_at", Float, nullable=False),
)
