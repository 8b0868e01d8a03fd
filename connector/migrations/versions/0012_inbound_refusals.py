"""`inbound_refusals` keeps the newest refused inbound requests (when, which source, the status
and why) for the Live View: each web process writes its own every few seconds."""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbound_refusals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("source_id", sa.String(128), nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_inbound_refusals_at", "inbound_refusals", ["at"])


def downgrade() -> None:
    op.drop_table("inbound_refusals")
