"""sequence indexes

The nurture tick claims one campaign's due enrolments in (next_due_at, id) order: with
campaign_key and id in the index, the claim reads a range of it and stops after a batch,
without sorting the due rows nor skipping other campaigns'. The exit checks look up the
due batch's replies and unsubscriptions by contact and type.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 19:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("enrolment", schema=None) as batch_op:
        batch_op.create_index(
            "ix_enrolment_campaign_due",
            ["campaign_key", "status", "next_due_at", "id"],
            unique=False,
        )
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.create_index(
            "ix_event_contact_type_time", ["contact_id", "type", "occurred_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.drop_index("ix_event_contact_type_time")
    with op.batch_alter_table("enrolment", schema=None) as batch_op:
        batch_op.drop_index("ix_enrolment_campaign_due")
