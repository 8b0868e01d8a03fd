"""An accepted event keeps the warnings its source gave (an optional field left out, and why)
in `warnings`, beside its payload in `seen_events` while it waits to be planned and in
`events` once it is. Rows there before this revision have none."""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("events", sa.Column("warnings", sa.Text))
    op.add_column("seen_events", sa.Column("warnings", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("events") as table:
        table.drop_column("warnings")
    with op.batch_alter_table("seen_events", table_kwargs={"sqlite_with_rowid": False}) as table:
        table.drop_column("warnings")
