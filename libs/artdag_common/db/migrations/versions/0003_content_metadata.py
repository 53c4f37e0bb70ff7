"""Content metadata, run references and storage providers (cache service).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("content") as batch:
        batch.add_column(sa.Column("description", sa.Text(), nullable=True))
        batch.add_column(sa.Column("tags", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("owner", sa.String(256), nullable=True))
        batch.add_column(sa.Column("pinned", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("published", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("last_access", sa.Float(), nullable=True))
        batch.add_column(sa.Column("provenance_cid", sa.String(128), nullable=True))
    op.create_index("ix_content_created_at", "content", ["created_at"])
    op.create_index("ix_content_last_access", "content", ["last_access"])
    op.create_table(
        "content_refs",
        sa.Column("cid", sa.String(128), primary_key=True),
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(16), primary_key=True),
    )
    op.create_index("ix_content_refs_run_id", "content_refs", ["run_id"])
    op.create_table(
        "storage_providers",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("owner", sa.String(256), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("storage_providers")
    op.drop_index("ix_content_refs_run_id", table_name="content_refs")
    op.drop_table("content_refs")
    op.drop_index("ix_content_last_access", table_name="content")
    op.drop_index("ix_content_created_at", table_name="content")
    with op.batch_alter_table("content") as batch:
        for column in ("provenance_cid", "last_access", "published", "pinned", "owner", "tags", "description"):
            batch.drop_column(column)
