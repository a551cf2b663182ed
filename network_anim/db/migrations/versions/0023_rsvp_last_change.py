"""rsvp.last_change: what last changed an answer, for the webhook feed

An RSVP row is updated in place by each answer, by a promotion from the waiting list and
by the attendance import; the webhook feed reads the rows by (updated_at, id) and tells
subscribers ``rsvp.answered``, ``rsvp.promoted`` or ``rsvp.attended`` from this column.
Rows written before it say "answered" (attendance imported before it stays unannounced:
the feed starts at the end of every table).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rsvp", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "last_change",
                sqlmodel.sql.sqltypes.AutoString(length=10),
                nullable=False,
                server_default="answered",
            )
        )
        batch_op.create_index("ix_rsvp_updated_at_id", ["updated_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("rsvp", schema=None) as batch_op:
        batch_op.drop_index("ix_rsvp_updated_at_id")
        batch_op.drop_column("last_change")
