"""Intake commits an accepted event as one row of `seen_events` (its type, environment, email,
event time and payload beside the id it already kept) and a worker plans it later; the partial
index `ix_seen_events_waiting` holds the rows still waiting. Rows there before this revision
were all planned already: their new columns stay empty. A purge used to forget the ids of events
it kept; intake now reads only `seen_events`, so their ids come back from `events` (a repeat
of them stays a duplicate). A downgrade is refused while events wait to be planned: the columns
it drops hold them."""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_WAITING = sa.text("payload IS NOT NULL")


def upgrade() -> None:
    # On SQLite the table is rebuilt WITHOUT ROWID (its key is the table: one B-tree fewer to
    # write for each accepted event); elsewhere the columns are added.
    sqlite = op.get_bind().dialect.name == "sqlite"
    with op.batch_alter_table(
        "seen_events",
        recreate="always" if sqlite else "auto",
        table_kwargs={"sqlite_with_rowid": False},
    ) as table:
        table.add_column(sa.Column("type", sa.String(64)))
        table.add_column(sa.Column("environment", sa.String(16)))
        table.add_column(sa.Column("email", sa.String(320)))
        table.add_column(sa.Column("event_time", sa.Float))
        table.add_column(sa.Column("payload", sa.Text))
    op.execute(
        "INSERT INTO seen_events (source_id, event_id, received_at)"
        " SELECT source_id, event_id, MIN(received_at) FROM events e"
        " WHERE NOT EXISTS (SELECT 1 FROM seen_events s"
        " WHERE s.source_id = e.source_id AND s.event_id = e.event_id)"
        " GROUP BY source_id, event_id"
    )
    op.create_index(
        "ix_seen_events_waiting",
        "seen_events",
        ["received_at"],
        sqlite_where=_WAITING,
        postgresql_where=_WAITING,
    )


def downgrade() -> None:
    waiting = op.get_bind().execute(sa.text("SELECT COUNT(*) FROM seen_events WHERE payload IS NOT NULL"))
    if waiting.scalar():
        raise RuntimeError(
            "accepted events wait to be planned: run a worker until /metrics shows "
            "connector_events_waiting_to_plan 0, then downgrade"
        )
    op.drop_index("ix_seen_events_waiting", "seen_events")
    with op.batch_alter_table("seen_events") as table:
        for name in ("payload", "event_time", "email", "environment", "type"):
            table.drop_column(name)
