"""Auth: token hashes (auth), owners of runs, recipes and plans and who holds a recipe (planner), content
holders and L2 publications (cache).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(256), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.Column("revoked_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_tokens_username", "tokens", ["username"])
    for table in ("runs", "recipes", "plans"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("owner", sa.String(256), nullable=True))
    op.create_index("ix_runs_owner", "runs", ["owner"])
    op.create_table(
        "recipe_holders",
        sa.Column("recipe_id", sa.String(128), primary_key=True),
        sa.Column("username", sa.String(256), primary_key=True),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_recipe_holders_username", "recipe_holders", ["username"])
    op.create_table(
        "content_holders",
        sa.Column("cid", sa.String(128), primary_key=True),
        sa.Column("username", sa.String(256), primary_key=True),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_content_holders_username", "content_holders", ["username"])
    # Who already owned content keeps holding it.
    op.execute(
        "INSERT INTO content_holders (cid, username, created_at) SELECT cid, owner, created_at FROM content "
        "WHERE owner IS NOT NULL"
    )
    op.create_table(
        "publications",
        sa.Column("cid", sa.String(128), primary_key=True),
        sa.Column("username", sa.String(256), nullable=False),
        sa.Column("activity_id", sa.String(512), nullable=False),
        sa.Column("object_id", sa.String(512), nullable=False),
        sa.Column("inbox", sa.String(512), nullable=False),
        sa.Column("activity", sa.JSON(), nullable=False),
        sa.Column("published_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("publications")
    op.drop_index("ix_content_holders_username", "content_holders")
    op.drop_table("content_holders")
    op.drop_index("ix_recipe_holders_username", "recipe_holders")
    op.drop_table("recipe_holders")
    op.drop_index("ix_runs_owner", "runs")
    for table in ("plans", "recipes", "runs"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("owner")
    op.drop_index("ix_tokens_username", "tokens")
    op.drop_table("tokens")
