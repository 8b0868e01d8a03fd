"""Security: memory that outlives a purge, ids never reused.

- `consent_marks`: the newest consent change ever queued per contact (event time, delivery id),
  filled from the live deliveries already stored.
- `seen_events`: every event id a source accepted, kept for the replay window after a purge,
  filled from the events already stored.
- `replay_keys`: keys a verifier allows once (Standard Webhooks' `webhook-id`), with expiry.
- On SQLite, events, deliveries and attempts become AUTOINCREMENT tables (a rebuild: SQLite
  cannot alter that), so an id is never handed out again after a delete. PostgreSQL's
  sequences never reuse one already.

The rebuild renames the old tables aside, creates the new ones, copies the rows and drops the
old ones children first: dropping a parent that a new table references would cascade its
implicit DELETE into the new table (foreign keys are on, and cannot be turned off inside the
migration's transaction); a renamed parent takes its children's references along with it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The states the consent rule counts (contract.PENDING and delivered) as of this revision.
LIVE = ("queued", "retrying", "paused", "delivered")

EVENT_COLUMNS: tuple = ("id", "source_id", "event_id", "type", "environment", "email", "event_time")
EVENT_COLUMNS += ("received_at", "payload")
DELIVERY_COLUMNS: tuple = ("id", "event_pk", "partner_id", "action", "environment", "partner_key_id")
DELIVERY_COLUMNS += ("contact_key", "batch_key", "event_time", "spec", "state", "reason", "attempts")
DELIVERY_COLUMNS += ("next_attempt_at", "lease_owner", "lease_expires_at", "last_status")
DELIVERY_COLUMNS += ("last_error_code", "last_error_message", "last_latency_ms", "created_at", "updated_at")
ATTEMPT_COLUMNS: tuple = (
    "id",
    "delivery_id",
    "started_at",
    "outcome",
    "status",
    "error_code",
    "error_message",
)
ATTEMPT_COLUMNS += ("latency_ms", "batch_size", "request", "response")
INDEXES = {
    "events": {"ix_events_email": ["email"], "ix_events_received": ["received_at"]},
    "deliveries": {
        "ix_deliveries_due": ["state", "next_attempt_at"],
        "ix_deliveries_contact": ["contact_key", "event_time"],
        "ix_deliveries_event": ["event_pk"],
        "ix_deliveries_updated": ["updated_at"],
    },
    "attempts": {"ix_attempts_delivery": ["delivery_id"]},
}


def upgrade() -> None:
    op.create_table(
        "consent_marks",
        sa.Column("contact_key", sa.String(600), primary_key=True),
        sa.Column("event_time", sa.Float, nullable=False),
        sa.Column("delivery_id", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "seen_events",
        sa.Column("source_id", sa.String(128), primary_key=True),
        sa.Column("event_id", sa.String(128), primary_key=True),
        sa.Column("received_at", sa.Float, nullable=False),
    )
    op.create_index("ix_seen_events_received", "seen_events", ["received_at"])
    op.create_table(
        "replay_keys",
        sa.Column("source_id", sa.String(128), primary_key=True),
        sa.Column("replay_key", sa.String(256), primary_key=True),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_replay_keys_expires", "replay_keys", ["expires_at"])

    live = ", ".join(f"'{state}'" for state in LIVE)
    op.execute(
        "INSERT INTO consent_marks (contact_key, event_time, delivery_id, updated_at) "
        "SELECT d.contact_key, d.event_time, d.id, d.updated_at FROM deliveries d "
        f"WHERE d.contact_key IS NOT NULL AND d.state IN ({live}) AND NOT EXISTS ("
        "SELECT 1 FROM deliveries o WHERE o.contact_key = d.contact_key "
        f"AND o.state IN ({live}) AND (o.event_time > d.event_time "
        "OR (o.event_time = d.event_time AND o.id > d.id)))"
    )
    op.execute(
        "INSERT INTO seen_events (source_id, event_id, received_at) "
        "SELECT source_id, event_id, received_at FROM events"
    )
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_with_autoincrement()


def _rebuild_with_autoincrement() -> None:
    tables = ("attempts", "deliveries", "events")  # children first
    for table in tables:
        for index in INDEXES[table]:
            op.drop_index(index, table_name=table)
        op.rename_table(table, f"{table}_before_0003")

    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("source_id", sa.String(128), nullable=False),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("environment", sa.String(16), nullable=False),
        sa.Column("email", sa.String(320)),
        sa.Column("event_time", sa.Float, nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.UniqueConstraint("source_id", "event_id", name="uq_events_source_event"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("event_pk", sa.Integer, sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("partner_id", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("environment", sa.String(16), nullable=False),
        sa.Column("partner_key_id", sa.String(128)),
        sa.Column("contact_key", sa.String(600)),
        sa.Column("batch_key", sa.String(600)),
        sa.Column("event_time", sa.Float, nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.Float),
        sa.Column("lease_owner", sa.String(128)),
        sa.Column("lease_expires_at", sa.Float),
        sa.Column("last_status", sa.Integer),
        sa.Column("last_error_code", sa.String(128)),
        sa.Column("last_error_message", sa.Text),
        sa.Column("last_latency_ms", sa.Float),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "attempts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "delivery_id", sa.Integer, sa.ForeignKey("deliveries.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("status", sa.Integer),
        sa.Column("error_code", sa.String(128)),
        sa.Column("error_message", sa.Text),
        sa.Column("latency_ms", sa.Float),
        sa.Column("batch_size", sa.Integer, nullable=False),
        sa.Column("request", sa.Text),
        sa.Column("response", sa.Text),
        sqlite_autoincrement=True,
    )
    columns = {"events": EVENT_COLUMNS, "deliveries": DELIVERY_COLUMNS, "attempts": ATTEMPT_COLUMNS}
    for table in reversed(tables):  # parents first
        names = ", ".join(columns[table])
        op.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {table}_before_0003")
        for index, indexed in INDEXES[table].items():
            op.create_index(index, table, indexed)
    for table in tables:
        op.drop_table(f"{table}_before_0003")


def downgrade() -> None:
    """The new tables go; SQLite's AUTOINCREMENT tables stay (the older code reads them as is)."""
    op.drop_table("replay_keys")
    op.drop_table("seen_events")
    op.drop_table("consent_marks")
