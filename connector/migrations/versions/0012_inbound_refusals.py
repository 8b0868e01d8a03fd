"""`inbound_refusals` keeps the newest refused inbound requests (when, which source, the status
and why) for the Live View, and `inbound_refusal_counts` how many each source had for each
reason (for /metrics): each web process writes its own every second or so."""

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
    op.create_table(
        "inbound_refusal_counts",
        sa.Column("source_id", sa.String(128), primary_key=True),
        sa.Column("reason", sa.String(128), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("inbound_refusal_counts")
    op.drop_table("inbound_refusals")
