"""Tenancy without exceptions: the audit trail records whose data each event was about, LA
reference data and directory records have owners, and a referral remembers how its
referrer named each child.

- `audit_event.la_code` / `school_id` and `audit_event_pupil.school_id`: who may read an
  event. Existing events get the LA of the account that made them and each child link the
  child's current school (the best that can be known afterwards).
- `referral_concern`, `outcome_category` and `measure_instrument` get `la_code` ('' for
  national entries) in their primary keys, so each LA's own entries are its own; goals and
  measures no longer point at them with a foreign key (the service checks the code against
  the national list and the case's LA's).
- `referral_child.supplied`: the child reference exactly as the referrer gave it.
- `owner_la_code` on the directory's organizations, services, locations, taxonomies and
  terms (null: the operator's).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 21:30:00.000000
"""

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REFERENCE_TABLES = ("referral_concern", "outcome_category", "measure_instrument")
_DIRECTORY_TABLES = (
    "directory_organization",
    "directory_service",
    "directory_location",
    "directory_taxonomy",
    "directory_taxonomy_term",
)
_FOREIGN_KEYS = (
    ("goal", "fk_goal_outcome_category_outcome_category", "outcome_category", "outcome_category"),
    ("measure", "fk_measure_instrument_measure_instrument", "instrument", "measure_instrument"),
)


def upgrade() -> None:
    # Not in batch mode: SQLite adds columns in place, and copying the audit tables would
    # lose their append-only triggers.
    op.add_column(
        "audit_event",
        sa.Column("la_code", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
    )
    op.add_column("audit_event", sa.Column("school_id", sa.Uuid(), nullable=True))
    op.create_index("ix_audit_event_la_code_id", "audit_event", ["la_code", "id"])
    op.create_index("ix_audit_event_school_id_id", "audit_event", ["school_id", "id"])
    op.add_column("audit_event_pupil", sa.Column("school_id", sa.Uuid(), nullable=True))
    with _audit_writable():
        _backfill_audit()

    for table, name, _, _ in _FOREIGN_KEYS:
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_constraint(name, type_="foreignkey")
    for table in _REFERENCE_TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(
                sa.Column(
                    "la_code",
                    sqlmodel.sql.sqltypes.AutoString(length=10),
                    nullable=False,
                    server_default="",
                )
            )
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_constraint(f"pk_{table}", type_="primary")
            batch_op.create_primary_key(f"pk_{table}", ["la_code", "code"])
            batch_op.alter_column("la_code", server_default=None)

    json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    with op.batch_alter_table("referral_child") as batch_op:
        batch_op.add_column(sa.Column("supplied", json, nullable=True))

    for table in _DIRECTORY_TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(
                sa.Column(
                    "owner_la_code", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True
                )
            )


def downgrade() -> None:
    for table in _DIRECTORY_TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("owner_la_code")
    with op.batch_alter_table("referral_child") as batch_op:
        batch_op.drop_column("supplied")
    for table in _REFERENCE_TABLES:
        # An LA's own entries cannot survive without the column that says whose they are.
        op.execute(sa.text(f"DELETE FROM {table} WHERE la_code <> ''"))  # noqa: S608
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_constraint(f"pk_{table}", type_="primary")
            batch_op.create_primary_key(f"pk_{table}", ["code"])
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("la_code")
    for table, name, column, referred in _FOREIGN_KEYS:
        with op.batch_alter_table(table) as batch_op:
            batch_op.create_foreign_key(name, referred, [column], ["code"])
    op.drop_index("ix_audit_event_school_id_id", "audit_event")
    op.drop_index("ix_audit_event_la_code_id", "audit_event")
    with op.batch_alter_table("audit_event_pupil") as batch_op:
        batch_op.drop_column("school_id")
    with op.batch_alter_table("audit_event") as batch_op:
        batch_op.drop_column("school_id")
        batch_op.drop_column("la_code")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite dropped the columns by copying the tables, which loses their triggers.
        for table in ("audit_event", "audit_event_pupil"):
            for operation in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER IF NOT EXISTS {table}_no_{operation.lower()} "
                    f"BEFORE {operation} ON {table} "
                    "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END"
                )


@contextmanager
def _audit_writable() -> Iterator[None]:
    """Lift the audit trail's append-only triggers for this migration's backfill only."""
    postgres = op.get_bind().dialect.name == "postgresql"
    tables = ("audit_event", "audit_event_pupil")
    if postgres:
        for table in tables:
            op.execute(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only")
    else:
        for table in tables:
            op.execute(f"DROP TRIGGER {table}_no_update")
    yield
    if postgres:
        for table in tables:
            op.execute(f"ALTER TABLE {table} ENABLE TRIGGER {table}_append_only")
    else:
        for table in tables:
            op.execute(
                f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END"
            )


def _backfill_audit() -> None:
    connection = op.get_bind()
    event = sa.table("audit_event", sa.column("actor", sa.String), sa.column("la_code", sa.String))
    link = sa.table(
        "audit_event_pupil", sa.column("pupil_id", sa.Uuid), sa.column("school_id", sa.Uuid)
    )
    pupil = sa.table("pupil", sa.column("id", sa.Uuid), sa.column("school_id", sa.Uuid))
    connection.execute(
        link.update().values(
            school_id=sa.select(pupil.c.school_id)
            .where(pupil.c.id == link.c.pupil_id)
            .scalar_subquery()
        )
    )
    actors = connection.execute(sa.select(event.c.actor).distinct()).scalars().all()
    for actor in actors:
        la_code = _home_la(connection, actor)
        if la_code is not None:
            connection.execute(event.update().where(event.c.actor == actor).values(la_code=la_code))


def _home_la(connection: sa.Connection, actor: str) -> str | None:
    """The LA an account works for: its own, or that of all its schools."""
    kind, _, raw = actor.partition(":")
    try:
        account_id = uuid.UUID(raw)
    except ValueError:
        return None
    accounts = {"staff": ("staff_member", "staff_member_school", "staff_member_id"),
                "client": ("api_client", "api_client_school", "api_client_id")}  # fmt: skip
    if kind not in accounts:
        return None
    table, schools_table, owner = accounts[kind]
    account = sa.table(table, sa.column("id", sa.Uuid), sa.column("la_code", sa.String))
    own = connection.execute(
        sa.select(account.c.la_code).where(account.c.id == account_id)
    ).scalar_one_or_none()
    if own:
        return str(own)
    links = sa.table(schools_table, sa.column(owner, sa.Uuid), sa.column("school_id", sa.Uuid))
    school = sa.table("school", sa.column("id", sa.Uuid), sa.column("la_code", sa.String))
    las = set(
        connection.execute(
            sa.select(school.c.la_code)
            .join(links, links.c.school_id == school.c.id)
            .where(links.c[owner] == account_id)
        ).scalars()
    )
    return las.pop() if len(las) == 1 else None
