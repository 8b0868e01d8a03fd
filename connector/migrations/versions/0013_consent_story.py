"""A person's consent story: events keep the phone number they carry (`events.phone`, indexed,
as `email` is; `seen_events.phone` while an event waits to be planned), and a superseded
delivery names the delivery that won over it (`deliveries.superseded_by`). Rows from before
this revision have neither: their story finds them by email, and says "a newer event" without
naming it."""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


# Plain ADD / DROP COLUMN (SQLite has both since 3.35): a batch rebuild would lose what the
# tables were made with (AUTOINCREMENT, WITHOUT ROWID).


def upgrade() -> None:
    op.add_column("events", sa.Column("phone", sa.String(32)))
    op.create_index("ix_events_phone", "events", ["phone"])
    op.add_column("seen_events", sa.Column("phone", sa.String(32)))
    op.add_column("deliveries", sa.Column("superseded_by", sa.Integer))


def downgrade() -> None:
    waiting = op.get_bind().execute(
        sa.text("SELECT COUNT(*) FROM seen_events WHERE payload IS NOT NULL AND phone IS NOT NULL")
    )
    if waiting.scalar():
        raise RuntimeError(
            "accepted events with a phone number wait to be planned: run a worker until /metrics "
            "shows connector_events_waiting_to_plan 0, then downgrade"
        )
    op.drop_column("deliveries", "superseded_by")
    op.drop_column("seen_events", "phone")
    op.drop_index("ix_events_phone", "events")
    op.drop_column("events", "phone")
