"""email feedback: bounces, complaints and the invalid address mark

Issue 15. ``feedback`` records each report once (unique ``key``, the source's identity of
the report, so the same DSN read twice is one row); ``contact.email_invalid_at`` and
``email_invalid_reason`` are the mark a hard bounce leaves (the router then treats the
contact as having no email); ``delivery.key_hash`` is the hash of the idempotency key
that an email's Message-ID and its signed bounce token carry, indexed so a bounce finds
its delivery. Email rows planned before this revision get their hash here, so a late
bounce of an email sent before the upgrade still finds its delivery.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 14:00:00
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
import sqlmodel
from alembic import op

import network_anim.db.types

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_BACKFILL_BATCH = 2000


def upgrade() -> None:
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("email_invalid_at", network_anim.db.types.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "email_invalid_reason",
                sqlmodel.sql.sqltypes.AutoString(length=300),
                nullable=False,
                server_default="",
            )
        )
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("key_hash", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)
        )
        batch_op.create_index(batch_op.f("ix_delivery_key_hash"), ["key_hash"], unique=False)
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
        sa.Column("occurred_at", network_anim.db.types.UTCDateTime(), nullable=False),
        sa.Column("received_at", network_anim.db.types.UTCDateTime(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("diagnostic", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contact.id"]),
        sa.ForeignKeyConstraint(["delivery_id"], ["delivery.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feedback_delivery_id"), ["delivery_id"], unique=False)
        batch_op.create_index(
            "ix_feedback_contact_kind_time", ["contact_id", "kind", "occurred_at"], unique=False
        )
    _backfill_key_hashes()


def _backfill_key_hashes() -> None:
    """The hash of every email row's key, in batches (the same function as
    channels/email_mime.py key_hash, copied: a migration must not change with the code)."""
    bind = op.get_bind()
    delivery = sa.table(
        "delivery",
        sa.column("id", sa.Integer),
        sa.column("idempotency_key", sa.String),
        sa.column("channel", sa.String),
        sa.column("key_hash", sa.String),
    )
    after = 0
    while True:
        rows = bind.execute(
            sa.select(delivery.c.id, delivery.c.idempotency_key)
            .where(delivery.c.channel == "email", delivery.c.id > after)
            .order_by(delivery.c.id)
            .limit(_BACKFILL_BATCH)
        ).all()
        if not rows:
            return
        bind.execute(
            sa.update(delivery)
            .where(delivery.c.id == sa.bindparam("row_id"))
            .values(key_hash=sa.bindparam("hash")),
            [
                {"row_id": row_id, "hash": hashlib.sha256(key.encode()).hexdigest()[:32]}
                for row_id, key in rows
            ],
        )
        after = rows[-1][0]


def downgrade() -> None:
    op.drop_table("feedback")
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_key_hash"))
        batch_op.drop_column("key_hash")
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.drop_column("email_invalid_reason")
        batch_op.drop_column("email_invalid_at")
