"""A poll may stop early (its source's `max_pages_per_poll` read) without failing: the pull
source's state and each poll's history row say why, for the Live View."""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pollers") as batch:
        batch.add_column(sa.Column("last_note", sa.Text()))
    with op.batch_alter_table("poll_runs") as batch:
        batch.add_column(sa.Column("note", sa.Text()))


def downgrade() -> None:
    with op.batch_alter_table("poll_runs") as batch:
        batch.drop_column("note")
    with op.batch_alter_table("pollers") as batch:
        batch.drop_column("last_note")
