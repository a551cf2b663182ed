"""rsvp: answers to event invitations (yes/no/maybe, seats, waiting list, attendance)

Issue 17, part 2. One row per (event, contact): the answer to the invitation received by
SMS or on the portal, the seats and whether they are confirmed or waiting, and, after the
event, whether the contact came (``netanim import attendance``).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 13:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import network_anim.db.types

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rsvp",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_key", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("answer", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
        sa.Column("seats", sa.Integer(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
        sa.Column("answered_by", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("answered_at", network_anim.db.types.UTCDateTime(), nullable=True),
        sa.Column("attended", sa.Boolean(), nullable=True),
        sa.Column("updated_at", network_anim.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contact.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_key", "contact_id"),
    )
    op.create_index("ix_rsvp_contact_id", "rsvp", ["contact_id"])
    op.create_index("ix_rsvp_event_status", "rsvp", ["event_key", "status", "answered_at"])


def downgrade() -> None:
    op.drop_index("ix_rsvp_event_status", table_name="rsvp")
    op.drop_index("ix_rsvp_contact_id", table_name="rsvp")
    op.drop_table("rsvp")
