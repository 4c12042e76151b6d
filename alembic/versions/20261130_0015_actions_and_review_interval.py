"""Actions as records (issue 17, item 2): `case_action`, one row per action agreed on a case
(its source, owner, due day and current status), and `case_action_status`, every status it
took with its note; and a case's own review interval (item 4):
`early_help_case.review_interval_weeks`, null while the case follows the service setting.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 08:45:59.264582
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "case_action",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("source_kind", sa.String(length=16), nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=True),
        sa.Column("owner_kind", sa.String(length=16), nullable=False),
        sa.Column("owner_staff_id", sa.Uuid(), nullable=True),
        sa.Column("owner_child_id", sa.Uuid(), nullable=True),
        sa.Column("owner_organization_id", sa.Uuid(), nullable=True),
        sa.Column("owner_team_member_id", sa.Uuid(), nullable=True),
        sa.Column("owner_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("owner_role", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_changed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("overdue_notified_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["early_help_case.id"],
            name=op.f("fk_case_action_case_id_early_help_case"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_organization_id"],
            ["directory_organization.id"],
            name=op.f("fk_case_action_owner_organization_id_directory_organization"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["owner_team_member_id"],
            ["case_team_member.id"],
            name=op.f("fk_case_action_owner_team_member_id_case_team_member"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["owner_staff_id"],
            ["staff_member.id"],
            name=op.f("fk_case_action_owner_staff_id_staff_member"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_action")),
    )
    with op.batch_alter_table("case_action", schema=None) as batch_op:
        batch_op.create_index("ix_case_action_case_id_id", ["case_id", "id"], unique=False)
        batch_op.create_index(
            "ix_case_action_owner_staff_id_id", ["owner_staff_id", "id"], unique=False
        )
        batch_op.create_index("ix_case_action_status_due_on", ["status", "due_on"], unique=False)

    op.create_table(
        "case_action_status",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("action_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("changed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("changed_by", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["action_id"],
            ["case_action.id"],
            name=op.f("fk_case_action_status_action_id_case_action"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_action_status")),
    )
    with op.batch_alter_table("case_action_status", schema=None) as batch_op:
        batch_op.create_index(
            "ix_case_action_status_action_id_changed_at", ["action_id", "changed_at"], unique=False
        )

    with op.batch_alter_table("early_help_case", schema=None) as batch_op:
        batch_op.add_column(sa.Column("review_interval_weeks", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("early_help_case", schema=None) as batch_op:
        batch_op.drop_column("review_interval_weeks")

    with op.batch_alter_table("case_action_status", schema=None) as batch_op:
        batch_op.drop_index("ix_case_action_status_action_id_changed_at")

    op.drop_table("case_action_status")
    with op.batch_alter_table("case_action", schema=None) as batch_op:
        batch_op.drop_index("ix_case_action_status_due_on")
        batch_op.drop_index("ix_case_action_owner_staff_id_id")
        batch_op.drop_index("ix_case_action_case_id_id")

    op.drop_table("case_action")
