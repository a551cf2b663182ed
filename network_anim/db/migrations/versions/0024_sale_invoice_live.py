"""sale: one live sale per invoice, a withdrawn declaration leaves its invoice free

A seller who withdraws a pending declaration (issue 17) usually does it to fix a mistake
and declare the invoice again; the unique (company_id, invoice_ref) constraint refused
that. It becomes a partial unique index over the sales that are not withdrawn (SQLite and
PostgreSQL both have them); the withdrawn rows stay as history.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 16:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

# Names the unnamed constraint of 0002 the way PostgreSQL named it, so that the SQLite
# batch copy (which reflects it without a name) can drop it too.
_NAMING = {"uq": "%(table_name)s_%(column_0_name)s_%(column_1_name)s_key"}
_CONSTRAINT = "sale_company_id_invoice_ref_key"
_LIVE = sa.text("status != 'withdrawn'")


def upgrade() -> None:
    with op.batch_alter_table("sale", naming_convention=_NAMING) as batch_op:
        batch_op.drop_constraint(_CONSTRAINT, type_="unique")
    op.create_index(
        "uq_sale_company_invoice_live",
        "sale",
        ["company_id", "invoice_ref"],
        unique=True,
        sqlite_where=_LIVE,
        postgresql_where=_LIVE,
    )


def downgrade() -> None:
    op.drop_index("uq_sale_company_invoice_live", table_name="sale")
    with op.batch_alter_table("sale", naming_convention=_NAMING) as batch_op:
        batch_op.create_unique_constraint(_CONSTRAINT, ["company_id", "invoice_ref"])
