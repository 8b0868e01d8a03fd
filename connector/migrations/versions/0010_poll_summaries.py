"""A pull source's poll says what it read in a line of its own words (`Poll.summary`): the latest
poll's line on its `pollers` row, each finished poll's in `poll_runs`. Both columns are empty
for polls made before this revision."""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pollers") as table:
        table.add_column(sa.Column("summary", sa.Text))
    with op.batch_alter_table("poll_runs") as table:
        table.add_column(sa.Column("summary", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("poll_runs") as table:
        table.drop_column("summary")
    with op.batch_alter_table("pollers") as table:
        table.drop_column("summary")
