"""webhook_delivery, webhook_feed: outbound webhooks

Issue 17, part 3. ``webhook_delivery`` is the webhooks' outbox (one row per event and
subscriber, unique, retried with backoff, dead after N attempts); ``webhook_feed`` holds
how far the feed has read each source table.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 13:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import network_anim.db.types

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    utc = network_anim.db.types.UTCDateTime
    text = sqlmodel.sql.sqltypes.AutoString
    op.create_table(
        "webhook_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_key", text(length=200), nullable=False),
        sa.Column("subscriber", text(length=80), nullable=False),
        sa.Column("event_type", text(length=60), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", text(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", utc(), nullable=False),
        sa.Column("lease_owner", text(length=80), nullable=True),
        sa.Column("lease_until", utc(), nullable=True),
        sa.Column("last_error", text(length=1000), nullable=False),
        sa.Column("created_at", utc(), nullable=False),
        sa.Column("updated_at", utc(), nullable=False),
        sa.Column("sent_at", utc(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_key", "subscriber"),
    )
    op.create_index(
        "ix_webhook_delivery_status_due", "webhook_delivery", ["status", "due_at", "id"]
    )
    op.create_table(
        "webhook_feed",
        sa.Column("source", text(length=40), nullable=False),
        sa.Column("position", sa.JSON(), nullable=False),
        sa.Column("updated_at", utc(), nullable=False),
        sa.PrimaryKeyConstraint("source"),
    )


def downgrade() -> None:
    op.drop_table("webhook_feed")
    op.drop_index("ix_webhook_delivery_status_due", table_name="webhook_delivery")
    op.drop_table("webhook_delivery")
