"""delivery.fallback_due: failed rows whose fallback the planner has still to plan

The outbox no longer plans fallbacks itself (issue 13): recording a permanent failure
(or a Twilio undelivered callback) only sets this flag in the same transaction, and the
planning stage (network_anim.planning.fallbacks) plans the next channel through the
router, then clears it. Indexed: the planner looks for the flagged rows at every drain.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("fallback_due", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_index(
            batch_op.f("ix_delivery_fallback_due"), ["fallback_due"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_fallback_due"))
        batch_op.drop_column("fallback_due")
