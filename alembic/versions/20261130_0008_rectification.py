"""The rectification trail: every change to how a child is identified (name, date of birth,
UPN) keeps the value before and after, who made it and when.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 00:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pupil_identity_change",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("pupil_id", sa.Uuid(), nullable=False),
        sa.Column("changed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("changed_by", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("field", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("previous", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("current", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["pupil_id"],
            ["pupil.id"],
            name=op.f("fk_pupil_identity_change_pupil_id_pupil"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pupil_identity_change")),
    )
    op.create_index(
        "ix_pupil_identity_change_pupil_id_id", "pupil_identity_change", ["pupil_id", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_pupil_identity_change_pupil_id_id", table_name="pupil_identity_change")
    op.drop_table("pupil_identity_change")
