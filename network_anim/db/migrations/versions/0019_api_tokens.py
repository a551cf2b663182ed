"""api_token: bearer tokens of the read API, stored hashed

Issue 17. ``netanim api token create`` writes one row per token (its SHA-256 hash, its
scopes); ``revoke`` dates it. The token itself is shown once and never stored.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 13:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import network_anim.db.types

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("created_at", network_anim.db.types.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", network_anim.db.types.UTCDateTime(), nullable=True),
        sa.Column("last_used_at", network_anim.db.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("token_hash"),
    )


def downgrade() -> None:
    op.drop_table("api_token")
