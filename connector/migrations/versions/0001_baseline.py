"""The schema before migrations: events, deliveries, attempts and breakers, exactly as
`metadata.create_all` made them (tests/fixtures/schema_0001_*.sql)."""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
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
    )
    op.create_index("ix_events_email", "events", ["email"])
    op.create_index("ix_events_received", "events", ["received_at"])

    op.create_table(
        "breakers",
        sa.Column("scope", sa.String(300), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("opened", sa.Integer, nullable=False),
        sa.Column("probe_at", sa.Float),
        sa.Column("updated_at", sa.Float, nullable=False),
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
    )
    op.create_index("ix_deliveries_due", "deliveries", ["state", "next_attempt_at"])
    op.create_index("ix_deliveries_contact", "deliveries", ["contact_key", "event_time"])
    op.create_index("ix_deliveries_event", "deliveries", ["event_pk"])
    op.create_index("ix_deliveries_updated", "deliveries", ["updated_at"])

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
    )
    op.create_index("ix_attempts_delivery", "attempts", ["delivery_id"])


def downgrade() -> None:
    for table in ("attempts", "deliveries", "breakers", "events"):
        op.drop_table(table)
