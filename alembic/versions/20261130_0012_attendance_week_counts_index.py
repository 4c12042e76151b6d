"""An index of `attendance_week` by pupil and week that carries the week's possible and
attended sessions (INCLUDE, on PostgreSQL), so that the attendance-impact report reads each
child's before and after windows by index-only scans instead of a heap page per week.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 04:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_attendance_week_pupil_id_week_start_counts",
        "attendance_week",
        ["pupil_id", "week_start"],
        postgresql_include=["possible", "attended"],
    )


def downgrade() -> None:
    op.drop_index("ix_attendance_week_pupil_id_week_start_counts", table_name="attendance_week")
