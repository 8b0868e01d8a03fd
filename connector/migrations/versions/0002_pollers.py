"""Pull sources: one row per source holding its cursor, its poll lease (one worker at a time
polls a source) and how its last polls went."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pollers",
        sa.Column("source_id", sa.String(128), primary_key=True),
        sa.Column("cursor", sa.Text),
        sa.Column("lease_owner", sa.String(128)),
        sa.Column("lease_expires_at", sa.Float),
        sa.Column("next_poll_at", sa.Float, nullable=False),
        sa.Column("last_poll_at", sa.Float),
        sa.Column("last_ok_at", sa.Float),
        sa.Column("last_error", sa.Text),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("rows_read", sa.Integer, nullable=False),
        sa.Column("events_produced", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pollers")
