"""With a key paused or a circuit open, the claim reads each lane (partner, key, action) that
is not held back on its own, in claim order (`ix_deliveries_lane`), instead of walking the held
back backlog in the queue's order to reach the rest."""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_lane",
        "deliveries",
        ["partner_id", "partner_key_id", "action", "next_attempt_at", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_lane", "deliveries")
