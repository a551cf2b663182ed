"""the claim's order in the outbox's status index

A claim takes the oldest due rows: ``WHERE status = 'pending' AND due_at <= now ORDER BY
due_at, id LIMIT n``. With ``ix_delivery_status_due`` on (status, due_at) only,
PostgreSQL had to read and sort every pending row to find the first n (a broadcast
queues thousands of rows with the same ``due_at``): 24 ms per 200-row claim with 20,000
pending rows, growing with the backlog. With ``id`` in the index the rows come in claim
order and the scan stops after n: 0.4 ms. (SQLite's index already ended with the rowid.)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26 02:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_status_due")
        batch_op.create_index("ix_delivery_status_due", ["status", "due_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index("ix_delivery_status_due")
        batch_op.create_index("ix_delivery_status_due", ["status", "due_at"], unique=False)
