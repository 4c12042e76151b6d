"""The team around the family and planned meetings (issue 17, items 3 and 1):
`case_team_member`, a case's staff members and partner agencies, with the day each joined
and left; `meeting`, a contact or meeting planned ahead (time, place, agenda, invitees) and
then held (its contact record, attendees, a visit's outcome), rescheduled (earlier times
kept) or marked as not having happened (with the reason).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 08:46:37.482376
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "case_team_member",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("staff_member_id", sa.Uuid(), nullable=True),
        sa.Column("organization_id", sa.Uuid(), nullable=True),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("role", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("contact", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.Column("joined_on", sa.Date(), nullable=False),
        sa.Column("left_on", sa.Date(), nullable=True),
        sa.Column("leaving_note", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["early_help_case.id"],
            name=op.f("fk_case_team_member_case_id_early_help_case"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["directory_organization.id"],
            name=op.f("fk_case_team_member_organization_id_directory_organization"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["staff_member_id"],
            ["staff_member.id"],
            name=op.f("fk_case_team_member_staff_member_id_staff_member"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_team_member")),
    )
    with op.batch_alter_table("case_team_member", schema=None) as batch_op:
        batch_op.create_index("ix_case_team_member_case_id_id", ["case_id", "id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_case_team_member_staff_member_id"), ["staff_member_id"], unique=False
        )

    op.create_table(
        "meeting",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("scheduled_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=True),
        sa.Column("location", sa.String(length=16), nullable=False),
        sa.Column("place", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.Column("agenda", sa.Text(), nullable=True),
        sa.Column(
            "child_ids",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "invitees",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "attendees",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("parent_consent_recorded", sa.Boolean(), nullable=False),
        sa.Column("risk_assessment_done", sa.Boolean(), nullable=False),
        sa.Column(
            "previous_times",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("visit_outcome", sa.String(length=16), nullable=True),
        sa.Column("not_happened_reason", sa.String(length=32), nullable=True),
        sa.Column("not_happened_note", sa.Text(), nullable=True),
        sa.Column("intervention_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["early_help_case.id"],
            name=op.f("fk_meeting_case_id_early_help_case"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["intervention_id"],
            ["intervention.id"],
            name=op.f("fk_meeting_intervention_id_intervention"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meeting")),
    )
    with op.batch_alter_table("meeting", schema=None) as batch_op:
        batch_op.create_index(
            "ix_meeting_case_id_scheduled_at", ["case_id", "scheduled_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("meeting", schema=None) as batch_op:
        batch_op.drop_index("ix_meeting_case_id_scheduled_at")

    op.drop_table("meeting")
    with op.batch_alter_table("case_team_member", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_team_member_staff_member_id"))
        batch_op.drop_index("ix_case_team_member_case_id_id")

    op.drop_table("case_team_member")
