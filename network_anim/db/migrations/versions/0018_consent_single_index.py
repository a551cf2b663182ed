"""consent: drop the index on contact_id that the (contact_id, channel) one already covers

Issue 18. Every lookup by contact uses the leading column of the unique (contact_id,
channel) index; the separate one only cost each of an import's 280,000 consent inserts a
second B-tree update.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 11:20:00
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_contact_id")


def downgrade() -> None:
    with op.batch_alter_table("consent", schema=None) as batch_op:
        batch_op.create_index("ix_consent_contact_id", ["contact_id"], unique=False)
