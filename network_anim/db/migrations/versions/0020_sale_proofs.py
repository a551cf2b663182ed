"""sale_proof: the proof file of a sale declared on the portal

Issue 17, part 1. A seller declares a sale on the portal with an optional proof file
(PDF, JPEG or PNG), stored by content hash like post documents; one row per sale says
which file it is. A declaration withdrawn by its seller is a sale with status
"withdrawn": a value of the existing column, no schema change.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 13:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import network_anim.db.types

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sale_proof",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sale_id", sa.Integer(), nullable=False),
        sa.Column("filename", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("content_type", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", network_anim.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["sale_id"], ["sale.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sale_id"),
    )


def downgrade() -> None:
    op.drop_table("sale_proof")
