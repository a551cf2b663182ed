"""challenge running totals: leaderboards read an index, not the ledger

Issue 18. ``challengetotal`` holds each participant's challenge points (and sales points)
for the whole challenge and per month and ISO week bucket; ``companytotal`` the same per
company, with its participant count. The ledger writes them in each entry's transaction.
``challenge.totals_zone`` is NULL here: the first use of a challenge after this revision
builds its totals from the ledger (the buckets need the [engine] time zone, which only
the config knows).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def _key_columns() -> list[sa.Column]:
    return [
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("challenge_key", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("period", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("bucket", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    ]


def upgrade() -> None:
    with op.batch_alter_table("challenge", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("totals_zone", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
    op.create_table(
        "challengetotal",
        *_key_columns(),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("sales", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["contact_id"], ["contact.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("challenge_key", "period", "bucket", "contact_id"),
    )
    op.create_index(
        "ix_challengetotal_rank",
        "challengetotal",
        ["challenge_key", "period", "bucket", "points"],
        unique=False,
    )
    op.create_table(
        "companytotal",
        *_key_columns(),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("sales", sa.Integer(), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["company_id"], ["company.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("challenge_key", "period", "bucket", "company_id"),
    )


def downgrade() -> None:
    op.drop_table("companytotal")
    op.drop_index("ix_challengetotal_rank", table_name="challengetotal")
    op.drop_table("challengetotal")
    with op.batch_alter_table("challenge", schema=None) as batch_op:
        batch_op.drop_column("totals_zone")
