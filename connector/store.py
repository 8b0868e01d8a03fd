"""The durable outbox: events, deliveries, attempts and breakers, through SQLAlchemy Core.

SQLite (WAL, BEGIN IMMEDIATE) by default; PostgreSQL for several workers (claims use
FOR UPDATE SKIP LOCKED). Times are UNIX seconds (floats) so both behave the same.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

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
    create_engine,
    event,
)

metadata = MetaData()

PENDING = ("queued", "retrying", "paused")
FINISHED = ("delivered", "skipped", "superseded", "dead")
OUTCOMES = PENDING + FINISHED

events = Table(
    "events", metadata,
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
    "deliveries", metadata,
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
    "attempts", metadata,
    Column("id", Integer, primary_key=True),
    Column("delivery_id", Integer, ForeignKey("deliveries.id", ondelete="CASCADE"),
           nullable=False),
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

# A paused key ("key:<partner_key_id>") or an open circuit ("circuit:<partner>|<key>").
breakers = Table(
    "breakers", metadata,
    Column("scope", String(300), primary_key=True),
    Column("state", String(16), nullable=False),  # closed | open | paused
    Column("reason", Text),
    Column("failures", Integer, nullable=False, default=0),
    Column("opened", Integer, nullable=False, default=0),
    Column("probe_at", Float),
    Column("updated_at", Float, nullable=False),
)

cursors = Table(
    "cursors", metadata,
    Column("name", String(300), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)


def default_database_url() -> str:
    return os.environ.get("CONNECTOR_DATABASE_URL") or "sqlite:///var/connector.db"


def make_engine(url: str | None = None):
    url = url or default_database_url()
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            # Let SQLAlchemy's begin() emit our BEGIN IMMEDIATE: writers queue on the busy
            # timeout instead of failing to upgrade a read lock.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def create_schema(engine) -> None:
    """Create missing tables. Several processes start at once (gunicorn workers, workers):
    on PostgreSQL an advisory lock keeps their CREATE TABLEs from colliding."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(724311)")
            metadata.create_all(conn)
    else:
        metadata.create_all(engine)


def dumps(value) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def now() -> float:
    return time.time()
