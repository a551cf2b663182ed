"""links: the outside targets of each message, stored when it is rendered

A click token names a link id and a delivery, never a URL (issue 20): /c/ redirects only
to a target stored here, and only for a delivery of the message that contains it. One row
per (message, url); the unique constraint is also the lookup index by message.

Tokens minted before this revision carry their URL; the click endpoint still honours
them when the token is the one the delivery's stored HTML holds (a short compatibility
path), so nothing needs backfilling here.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-27 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import network_anim.db.types

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("created_at", network_anim.db.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["message.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id", "url"),
    )


def downgrade() -> None:
    op.drop_table("links")
