"""leaderboard snapshots indexed down to the subject: a page's movement reads its rows only

Issue 18. A leaderboard page joins each shown row to its rank in the latest snapshot.
With the index on (challenge_key, scope, taken_at) alone, PostgreSQL read the whole
snapshot (100,000 rows, 29 ms) to find 50 of them; with ``subject`` last it looks each
one up. The new index also serves every query the old one did (its first three columns).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 11:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("leaderboardsnapshot", schema=None) as batch_op:
        batch_op.create_index(
            "ix_snapshot_subject", ["challenge_key", "scope", "taken_at", "subject"], unique=False
        )
        batch_op.drop_index("ix_snapshot_lookup")


def downgrade() -> None:
    with op.batch_alter_table("leaderboardsnapshot", schema=None) as batch_op:
        batch_op.create_index(
            "ix_snapshot_lookup", ["challenge_key", "scope", "taken_at"], unique=False
        )
        batch_op.drop_index("ix_snapshot_subject")
