"""The outbox's tables: events, deliveries, attempts and breakers (SQLAlchemy Core), the
memory that outlives a purge (consent marks, seen event ids and used replay keys), and the
operating figures: per-minute rollups, poll history and shared chores (the purge schedule).

Times are UNIX seconds (floats) so SQLite and PostgreSQL behave the same. A delivery's `state`
is a `connector.contract.State`; its pending states are the queue. Ids are never reused after a
delete (AUTOINCREMENT on SQLite, sequences on PostgreSQL), so a link to an event or a delivery
can never come to point at another one."""

from __future__ import annotations

from typing import Any

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
    literal_column,
    text,
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
    Column("warnings", Text),  # JSON list: what the source left out of the event, and why
    # The person's phone number the event carries, as digits with the country code: a
    # person's consent story finds their events by it, as by `email`.
    Column("phone", String(32)),
    UniqueConstraint("source_id", "event_id", name="uq_events_source_event"),
    Index("ix_events_received", "received_at"),
    Index("ix_events_email", "email"),
    Index("ix_events_phone", "phone"),
    sqlite_autoincrement=True,
)

#: A partial index of pending deliveries (a finished one's next attempt is NULL): every read
#: that compares `next_attempt_at` may use it, and finished deliveries cost it nothing.
_PENDING: dict[str, Any] = {
    "sqlite_where": text("next_attempt_at IS NOT NULL"),
    "postgresql_where": text("next_attempt_at IS NOT NULL"),
}

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
    # A superseded delivery's winner: the delivery (of a newer event for the same contact)
    # the consent rule found newer, for the consent story. It may be purged since.
    Column("superseded_by", Integer),
    # The queue in claim order. Only pending deliveries have a next attempt (a finished one's
    # is NULL) and only they are in it, so the claim walks this index from its start and
    # stops after a page, however long the history or the backlog.
    Index("ix_deliveries_due_order", "next_attempt_at", "id", **_PENDING),
    # The same for a claim of some actions only (the batchable ones): past the others at once.
    Index("ix_deliveries_due_action", "action", "next_attempt_at", "id", **_PENDING),
    # The queue by lane (partner, key, action), each in claim order: with a key paused or a
    # circuit open, the claim reads the other lanes one by one, never the backlog held back.
    Index(
        "ix_deliveries_lane", "partner_id", "partner_key_id", "action", "next_attempt_at", "id", **_PENDING
    ),
    Index("ix_deliveries_contact", "contact_key", "event_time"),
    Index("ix_deliveries_event", "event_pk"),
    Index("ix_deliveries_updated", "updated_at"),
    # The queue by partner, read without touching the table: depth per (state, partner) and
    # the oldest due delivery of each (/metrics, the Live View's queue chart).
    Index("ix_deliveries_queue", "state", "partner_id", "next_attempt_at"),
    sqlite_autoincrement=True,
)


def unindexed(column):
    """`column || ''`: the same value, in an expression no index serves. Planners without
    fresh statistics (SQLite never gathers any; PostgreSQL before its first ANALYZE) take a
    state index for `state IN (...)` and scan the whole queue; a query that reads by contact or
    in claim order says so by filtering on the state this way."""
    return column.concat(literal_column("''"))


def one_of(column, values):
    """`column IN ('a', 'b')` with the values written into the SQL: for fixed names (states),
    never input, so that a statement compiled once holds no list of parameters."""
    for value in values:
        if not str(value).isidentifier():
            raise ValueError(f"{value!r} is not a name to write into SQL")
    return column.in_([literal_column(f"'{value}'") for value in values])


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
    sqlite_autoincrement=True,
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
    # Why the last poll ended before its source had read everything (it stopped early).
    Column("last_note", Text),
    Column("failures", Integer, nullable=False, default=0),
    Column("rows_read", Integer, nullable=False, default=0),
    Column("events_produced", Integer, nullable=False, default=0),
    Column("summary", Text),  # what the latest poll read, in its source's words (Poll.summary)
    Column("updated_at", Float, nullable=False),
)

# The newest consent change ever queued for a contact (a delivery's `contact_key`): its event
# time and delivery id, the stamp the consent rule orders by. Purge never deletes a mark, so a
# captured request sent again after a purge is still older than what the contact said last.
consent_marks = Table(
    "consent_marks",
    metadata,
    Column("contact_key", String(600), primary_key=True),
    Column("event_time", Float, nullable=False),
    Column("delivery_id", Integer, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# The ids of the events a webhook accepted, and of a pull source's events once purged (while
# stored, an event's own row makes a repeat a duplicate), kept for the replay window after the
# event's purge: the same id sent again within the window is a duplicate. It is also where intake
# commits an accepted event (one row, so the request path writes little): type, environment,
# email, event time, payload and warnings stay here until a worker plans the event (stores it in `events`
# with its deliveries) and clears them; `ix_seen_events_waiting` finds those still waiting.
seen_events = Table(
    "seen_events",
    metadata,
    Column("source_id", String(128), primary_key=True),
    Column("event_id", String(128), primary_key=True),
    Column("received_at", Float, nullable=False),
    Column("type", String(64)),
    Column("environment", String(16)),
    Column("email", String(320)),
    Column("event_time", Float),
    Column("payload", Text),
    Column("warnings", Text),
    Column("phone", String(32)),
    Index("ix_seen_events_received", "received_at"),
    Index(
        "ix_seen_events_waiting",
        "received_at",
        sqlite_where=literal_column("payload IS NOT NULL"),
        postgresql_where=literal_column("payload IS NOT NULL"),
    ),
    sqlite_with_rowid=False,  # the key is the table: one B-tree fewer for each accepted event
)

# The newest inbound requests refused (at most 1,000, however many web processes write them):
# when, which source (or "(unknown)"), the status answered and why; never the body or headers.
# Each web process keeps its own in memory and writes them every few seconds.
inbound_refusals = Table(
    "inbound_refusals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", Float, nullable=False),
    Column("source_id", String(128), nullable=False),
    Column("status", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Index("ix_inbound_refusals_at", "at"),
)

# How many inbound requests were refused, by source and reason, ever: /metrics reads it, so
# every web process reports the same count (each adds its own with its list's writes).
inbound_refusal_counts = Table(
    "inbound_refusal_counts",
    metadata,
    Column("source_id", String(128), primary_key=True),
    Column("reason", String(128), primary_key=True),
    Column("count", Integer, nullable=False),
)

# Keys a source's verifier allows once (a Standard Webhooks `webhook-id`), until the request
# carrying one could no longer pass the verifier anyway.
replay_keys = Table(
    "replay_keys",
    metadata,
    Column("source_id", String(128), primary_key=True),
    Column("replay_key", String(256), primary_key=True),
    Column("expires_at", Float, nullable=False),
    Index("ix_replay_keys_expires", "expires_at"),
)

# Admin access (connector/web/sessions.py, connector/web/ratelimit.py), shared by every web
# process. A signed-in browser session by the SHA-256 of its id (the cookie holds the id, so a
# copy of the store opens no session), ended by logging out or by running out of time.
admin_sessions = Table(
    "admin_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("seen_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Index("ix_admin_sessions_expires", "expires_at"),
)

# One row per failed admin sign-in (a wrong token at the login form or as a Bearer), by the
# rate limit's key (the client address), while it is inside the limit's window.
admin_failures = Table(
    "admin_failures",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("limit_key", String(300), nullable=False),
    Column("at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Index("ix_admin_failures_key", "limit_key", "at"),
    Index("ix_admin_failures_expires", "expires_at"),
    sqlite_autoincrement=True,  # an id given back by a request is never another's failure
)

# Keys the web processes generate once and share: `session` signs the session cookie when
# CONNECTOR_SECRET_KEY is not set.
admin_keys = Table(
    "admin_keys",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)


# -- operating figures (the Live View's charts, /metrics, the purge schedule) -----------------

#: Upper bounds (milliseconds) of the latency histogram's buckets; a last one takes the rest.
LATENCY_EDGES_MS: tuple = (
    1,
    2,
    5,
    10,
    20,
    30,
    50,
    75,
    100,
    150,
    200,
    300,
    500,
    750,
    1000,
    1500,
    2000,
    3000,
)
LATENCY_EDGES_MS += (5000, 10000, 30000)
LATENCY_COLUMNS = (*tuple(f"le_{edge}" for edge in LATENCY_EDGES_MS), "le_inf")

# Per minute (UNIX seconds of its start), partner and outcome: how many deliveries reached the
# outcome then (attempts recorded, or intake and claims deciding skipped or superseded), and
# the latencies of the requests behind them as a histogram (`requests` in all, one per
# request however many deliveries it carried). Written in the transaction that records them,
# so charts and percentiles are sums over a few rows, never over the attempt log.
attempt_minutes = Table(
    "attempt_minutes",
    metadata,
    Column("minute", Float, primary_key=True),
    Column("partner_id", String(128), primary_key=True),
    Column("outcome", String(16), primary_key=True),
    Column("deliveries", Integer, nullable=False, default=0),
    Column("requests", Integer, nullable=False, default=0),
    Column("latency_ms_sum", Float, nullable=False, default=0.0),
    *(Column(name, Integer, nullable=False, default=0) for name in LATENCY_COLUMNS),
)

# The queue as a worker saw it once a minute, per partner: depth by pending state and the
# age of the oldest delivery that was due.
queue_minutes = Table(
    "queue_minutes",
    metadata,
    Column("minute", Float, primary_key=True),
    Column("partner_id", String(128), primary_key=True),
    Column("queued", Integer, nullable=False, default=0),
    Column("retrying", Integer, nullable=False, default=0),
    Column("paused", Integer, nullable=False, default=0),
    Column("oldest_due_seconds", Float, nullable=False, default=0.0),
    Column("sampled_at", Float, nullable=False),
)

# One row per finished poll of a pull source (the `pollers` row holds only the latest).
poll_runs = Table(
    "poll_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source_id", String(128), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("finished_at", Float, nullable=False),
    Column("ok", Integer, nullable=False),
    Column("rows_read", Integer, nullable=False, default=0),
    Column("events_produced", Integer, nullable=False, default=0),
    Column("error", Text),
    Column("note", Text),  # a poll that stopped early says why
    Column("summary", Text),
    Index("ix_poll_runs_source", "source_id", "finished_at"),
    sqlite_autoincrement=True,
)

# Work a worker does now and then for everyone (`purge`): who does it now (a lease, so one
# worker at a time across all of them), when it is next due, and how the last run went.
chores = Table(
    "chores",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("lease_owner", String(128)),
    Column("lease_expires_at", Float),
    Column("next_run_at", Float, nullable=False, default=0.0),
    Column("cursor", Text),  # where the chore's next run starts (JSON)
    Column("last_started_at", Float),
    Column("last_finished_at", Float),
    Column("last_result", Text),
    Column("last_error", Text),
    Column("updated_at", Float, nullable=False),
)
