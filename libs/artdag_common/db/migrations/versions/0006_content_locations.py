"""Storage providers hold content: each provider's policy, each copy's state, content kept only remotely.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("storage_providers") as batch:
        batch.add_column(sa.Column("replicate", sa.String(16), nullable=False, server_default="none"))
        batch.add_column(sa.Column("is_default", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("privileged", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("content") as batch:
        batch.add_column(sa.Column("offloaded", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "content_locations",
        sa.Column("cid", sa.String(128), primary_key=True),
        sa.Column("provider_id", sa.String(32), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("ref", sa.String(256), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_content_locations_provider", "content_locations", ["provider_id"])


def downgrade() -> None:
    op.drop_index("ix_content_locations_provider", "content_locations")
    op.drop_table("content_locations")
    with op.batch_alter_table("content") as batch:
        batch.drop_column("offloaded")
    with op.batch_alter_table("storage_providers") as batch:
        for column in ("privileged", "is_default", "replicate"):
            batch.drop_column(column)
