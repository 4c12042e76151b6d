"""Retention and legal hold: the `legal_hold` table, the bookkeeping of what the retention
run has disposed of (`retention_cutoff`, `deidentified_at` on cases and referrals), and the
audit disposal permit with the audit trail's DELETE triggers rewritten to honour it.

The trail stays append-only: UPDATE is refused as before, and DELETE is refused unless the
deleting transaction holds an `audit_disposal_permit` row covering the event's time. The
retention run inserts and deletes its permit inside one transaction, so no other
transaction ever sees one.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 01:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_AUDIT_TABLES = ("audit_event", "audit_event_pupil")


def upgrade() -> None:
    op.create_table(
        "legal_hold",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("la_code", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("school_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("pupil_id", sa.Uuid(), nullable=True),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("referral_id", sa.Uuid(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("placed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("placed_by", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("lifted_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("lifted_by", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.Column("lift_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legal_hold")),
    )
    op.create_index("ix_legal_hold_la_code_id", "legal_hold", ["la_code", "id"])
    op.create_index("ix_legal_hold_lifted_at", "legal_hold", ["lifted_at"])
    op.create_index(op.f("ix_legal_hold_pupil_id"), "legal_hold", ["pupil_id"])
    op.create_index(op.f("ix_legal_hold_case_id"), "legal_hold", ["case_id"])
    op.create_index(op.f("ix_legal_hold_referral_id"), "legal_hold", ["referral_id"])

    op.create_table(
        "retention_cutoff",
        sa.Column("record_type", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("jurisdiction", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("disposed_before", sa.Date(), nullable=False),
        sa.Column("recorded_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("record_type", "jurisdiction", name=op.f("pk_retention_cutoff")),
    )
    op.create_table(
        "audit_disposal_permit",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("disposes_before", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_disposal_permit")),
    )
    for table in ("early_help_case", "referral"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("deidentified_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
            )
    _permit_disposal()


def downgrade() -> None:
    _refuse_every_delete()
    for table in ("referral", "early_help_case"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("deidentified_at")
    op.drop_table("audit_disposal_permit")
    op.drop_table("retention_cutoff")
    op.drop_index(op.f("ix_legal_hold_referral_id"), table_name="legal_hold")
    op.drop_index(op.f("ix_legal_hold_case_id"), table_name="legal_hold")
    op.drop_index(op.f("ix_legal_hold_pupil_id"), table_name="legal_hold")
    op.drop_index("ix_legal_hold_lifted_at", table_name="legal_hold")
    op.drop_index("ix_legal_hold_la_code_id", table_name="legal_hold")
    op.drop_table("legal_hold")


# A DELETE is allowed only for an event older than a permit's `disposes_before` (a link row
# by its event's time): a permit cannot reach events newer than the retention cutoff.
_EVENT_PERMITTED = (
    "EXISTS (SELECT 1 FROM audit_disposal_permit AS permit "
    "WHERE OLD.occurred_at < permit.disposes_before)"
)
_LINK_PERMITTED = (
    "EXISTS (SELECT 1 FROM audit_disposal_permit AS permit "
    "JOIN audit_event AS event ON event.id = OLD.event_id "
    "WHERE event.occurred_at < permit.disposes_before)"
)
_PERMITTED = {"audit_event": _EVENT_PERMITTED, "audit_event_pupil": _LINK_PERMITTED}


def _permit_disposal() -> None:
    """UPDATE stays refused by the foundation's triggers; DELETE gets its own trigger that
    lets a permitted disposal through."""
    if op.get_bind().dialect.name == "postgresql":
        for table in _AUDIT_TABLES:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION liaison_refuse_audit_change()"
            )
            op.execute(
                f"""
                CREATE FUNCTION liaison_audit_disposal_{table}() RETURNS trigger
                LANGUAGE plpgsql AS $$
                BEGIN
                    IF {_PERMITTED[table]} THEN
                        RETURN OLD;
                    END IF;
                    RAISE EXCEPTION 'the audit trail is append-only (% on %)',
                        TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
                END
                $$
                """
            )
            op.execute(
                f"CREATE TRIGGER {table}_disposal_only BEFORE DELETE ON {table} "
                f"FOR EACH ROW EXECUTE FUNCTION liaison_audit_disposal_{table}()"
            )
        return
    for table in _AUDIT_TABLES:
        op.execute(f"DROP TRIGGER {table}_no_delete")
        op.execute(
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
            f"WHEN NOT {_PERMITTED[table]} "
            "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END"
        )


def _refuse_every_delete() -> None:
    """The foundation's triggers, as they were."""
    if op.get_bind().dialect.name == "postgresql":
        for table in _AUDIT_TABLES:
            op.execute(f"DROP TRIGGER {table}_disposal_only ON {table}")
            op.execute(f"DROP FUNCTION liaison_audit_disposal_{table}()")
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION liaison_refuse_audit_change()"
            )
        return
    for table in _AUDIT_TABLES:
        op.execute(f"DROP TRIGGER {table}_no_delete")
        op.execute(
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
            "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END"
        )
