"""The claim reads the queue in its order (`ix_deliveries_due_order`: next attempt, id; and
`ix_deliveries_due_action` for a claim of some actions only) instead of by state and then
sorting every due delivery; the state-first index they replace served nothing the queue
index (`ix_deliveries_queue`) does not."""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_deliveries_due_order", "deliveries", ["next_attempt_at", "id"])
    op.create_index("ix_deliveries_due_action", "deliveries", ["action", "next_attempt_at", "id"])
    op.drop_index("ix_deliveries_due", "deliveries")


def downgrade() -> None:
    op.create_index("ix_deliveries_due", "deliveries", ["state", "next_attempt_at"])
    op.drop_index("ix_deliveries_due_action", "deliveries")
    op.drop_index("ix_deliveries_due_order", "deliveries")
