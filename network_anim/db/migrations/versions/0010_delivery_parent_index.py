"""delivery parent index

Deleting outbox rows checks the parent_id foreign key on every row; without an index
both SQLite and PostgreSQL scanned the outbox for each one.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25 21:15:00
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_delivery_parent_id"), ["parent_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_parent_id"))
