"""The queue's three indexes in claim order (`ix_deliveries_due_order`, `_due_action`,
`_lane`) hold pending deliveries only (`next_attempt_at IS NOT NULL`): a finished delivery's
next attempt is NULL, and every one of them was an entry in each index that no claim reads.
A delivery that finishes now leaves them, and they stay the size of the queue, not of the
history. Every claim compares `next_attempt_at`, which both SQLite and PostgreSQL read as
implying the indexes' condition."""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_deliveries_due_order": ["next_attempt_at", "id"],
    "ix_deliveries_due_action": ["action", "next_attempt_at", "id"],
    "ix_deliveries_lane": ["partner_id", "partner_key_id", "action", "next_attempt_at", "id"],
}
PENDING = sa.text("next_attempt_at IS NOT NULL")


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.drop_index(name, "deliveries")
        op.create_index(name, "deliveries", columns, sqlite_where=PENDING, postgresql_where=PENDING)


def downgrade() -> None:
    for name, columns in INDEXES.items():
        op.drop_index(name, "deliveries")
        op.create_index(name, "deliveries", columns)
