"""drop the event contact index

``ix_event_contact_id`` is a prefix of ``ix_event_contact_type_time`` (0009), which
serves every lookup by contact, the foreign key's included. Each recorded event paid
for both: one index fewer on the table written for every send, open and click.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25 23:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_contact_id"))


def downgrade() -> None:
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_event_contact_id"), ["contact_id"], unique=False)
