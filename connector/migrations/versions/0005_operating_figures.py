"""Operating figures: per-minute rollups of outcomes and latencies (`attempt_minutes`), the
queue sampled once a minute (`queue_minutes`), every poll of a pull source (`poll_runs`),
chores one worker runs for everyone (`chores`: the purge schedule), and an index on the queue
by partner (`ix_deliveries_queue`) so its depth is read without touching the table.

The rollups start empty: charts show what happens from this revision on."""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# The latency histogram's bucket bounds (ms) as of this revision, and the rest.
LATENCY_EDGES_MS: tuple = (1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000, 3000)
LATENCY_EDGES_MS += (5000, 10000, 30000)
LATENCY_COLUMNS = (*tuple(f"le_{edge}" for edge in LATENCY_EDGES_MS), "le_inf")


def upgrade() -> None:
    op.create_index("ix_deliveries_queue", "deliveries", ["state", "partner_id", "next_attempt_at"])
    op.create_table(
        "attempt_minutes",
        sa.Column("minute", sa.Float, primary_key=True),
        sa.Column("partner_id", sa.String(128), primary_key=True),
        sa.Column("outcome", sa.String(16), primary_key=True),
        sa.Column("deliveries", sa.Integer, nullable=False),
        sa.Column("requests", sa.Integer, nullable=False),
        sa.Column("latency_ms_sum", sa.Float, nullable=False),
        *(sa.Column(name, sa.Integer, nullable=False) for name in LATENCY_COLUMNS),
    )
    op.create_table(
        "queue_minutes",
        sa.Column("minute", sa.Float, primary_key=True),
        sa.Column("partner_id", sa.String(128), primary_key=True),
        sa.Column("queued", sa.Integer, nullable=False),
        sa.Column("retrying", sa.Integer, nullable=False),
        sa.Column("paused", sa.Integer, nullable=False),
        sa.Column("oldest_due_seconds", sa.Float, nullable=False),
        sa.Column("sampled_at", sa.Float, nullable=False),
    )
    op.create_table(
        "poll_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("source_id", sa.String(128), nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float, nullable=False),
        sa.Column("ok", sa.Integer, nullable=False),
        sa.Column("rows_read", sa.Integer, nullable=False),
        sa.Column("events_produced", sa.Integer, nullable=False),
        sa.Column("error", sa.Text),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_poll_runs_source", "poll_runs", ["source_id", "finished_at"])
    op.create_table(
        "chores",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("lease_owner", sa.String(128)),
        sa.Column("lease_expires_at", sa.Float),
        sa.Column("next_run_at", sa.Float, nullable=False),
        sa.Column("cursor", sa.Text),
        sa.Column("last_started_at", sa.Float),
        sa.Column("last_finished_at", sa.Float),
        sa.Column("last_result", sa.Text),
        sa.Column("last_error", sa.Text),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("chores")
    op.drop_table("poll_runs")
    op.drop_table("queue_minutes")
    op.drop_table("attempt_minutes")
    op.drop_index("ix_deliveries_queue", "deliveries")
