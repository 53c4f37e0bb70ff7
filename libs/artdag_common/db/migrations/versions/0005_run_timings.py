"""Runs: when they started and finished, and their steps by outcome (listings without the state JSON).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

COUNTS = ("steps_total", "steps_done", "steps_cached", "steps_failed")


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("started_at", sa.Float(), nullable=True))
        batch.add_column(sa.Column("finished_at", sa.Float(), nullable=True))
        for column in COUNTS:
            batch.add_column(sa.Column(column, sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        for column in (*COUNTS, "finished_at", "started_at"):
            batch.drop_column(column)
