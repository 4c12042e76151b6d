"""Where a closed case went: `early_help_case.closure_destination`, the team or school that
leads once the family is transferred or stepped down (issue 13, item 2). Kept when a case is
de-identified: it names an organisation, never a person.

Backdated openings and closures need no column: they are stored in `opened_at` and
`closed_at` at the start of the day given.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 02:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("early_help_case", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "closure_destination", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("early_help_case", schema=None) as batch_op:
        batch_op.drop_column("closure_destination")
