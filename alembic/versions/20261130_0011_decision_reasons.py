"""A referral decision's reason category (`referral.decision_category`): one code from a fixed
list per decision kind (a decline's `threshold_not_met`, `needs_met_elsewhere`, ...), so the
referrals report can count why referrals were declined, stepped up or redirected (issue 13,
item 3). Kept when a referral is de-identified: it is a code, never a person's words.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 03:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "decision_category", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("referral", schema=None) as batch_op:
        batch_op.drop_column("decision_category")
