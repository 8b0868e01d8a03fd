"""Admin access shared by every web process: signed-in sessions (revoked by logging out),
failed sign-ins counted for the rate limit, and the generated key that signs session cookies."""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admin_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("seen_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_admin_sessions_expires", "admin_sessions", ["expires_at"])
    op.create_table(
        "admin_failures",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("limit_key", sa.String(300), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_admin_failures_key", "admin_failures", ["limit_key", "at"])
    op.create_index("ix_admin_failures_expires", "admin_failures", ["expires_at"])
    op.create_table(
        "admin_keys",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("admin_keys")
    op.drop_table("admin_failures")
    op.drop_table("admin_sessions")
