"""Service directory: partner services, their organizations, taxonomies and terms,
locations and schedules, in the Open Referral UK (HSDS 3.0 UK profile) shape.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 11:12:23.932999
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "directory_location",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("location_type", sa.String(length=16), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column(
            "external_identifier", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True
        ),
        sa.Column(
            "external_identifier_type", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True
        ),
        sa.Column(
            "addresses",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "accessibility",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directory_location")),
    )
    op.create_table(
        "directory_organization",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
        sa.Column("website", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("logo", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("uri", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("parent_organization_id", sa.Uuid(), nullable=True),
        sa.Column(
            "organization_identifiers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directory_organization")),
    )
    op.create_table(
        "directory_taxonomy",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("uri", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("version", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directory_taxonomy")),
    )
    op.create_table(
        "directory_service",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=True),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("fees", sa.Text(), nullable=True),
        sa.Column("accreditations", sa.Text(), nullable=True),
        sa.Column("minimum_age", sa.Float(), nullable=True),
        sa.Column("maximum_age", sa.Float(), nullable=True),
        sa.Column("assured_date", sa.Date(), nullable=True),
        sa.Column("assurer_email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
        sa.Column("alert", sa.Text(), nullable=True),
        sa.Column("last_modified", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column(
            "service_areas",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "languages",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "funding",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "cost_options",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "contacts",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["directory_organization.id"],
            name=op.f("fk_directory_service_organization_id_directory_organization"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directory_service")),
    )
    with op.batch_alter_table("directory_service", schema=None) as batch_op:
        batch_op.create_index("ix_directory_service_last_modified", ["last_modified"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_directory_service_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index("ix_directory_service_status_name", ["status", "name"], unique=False)

    op.create_table(
        "directory_taxonomy_term",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("taxonomy", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("taxonomy_id", sa.Uuid(), nullable=True),
        sa.Column("term_uri", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("term", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["taxonomy_id"],
            ["directory_taxonomy.id"],
            name=op.f("fk_directory_taxonomy_term_taxonomy_id_directory_taxonomy"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directory_taxonomy_term")),
    )
    with op.batch_alter_table("directory_taxonomy_term", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_directory_taxonomy_term_taxonomy_id"), ["taxonomy_id"], unique=False
        )

    op.create_table(
        "directory_schedule",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("service_id", sa.Uuid(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("dtstart", sa.Date(), nullable=True),
        sa.Column("freq", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("interval", sa.Float(), nullable=True),
        sa.Column("byday", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("bymonthday", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("opens_at", sa.Time(), nullable=True),
        sa.Column("closes_at", sa.Time(), nullable=True),
        sa.Column("schedule_link", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("attending_type", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["directory_service.id"],
            name=op.f("fk_directory_schedule_service_id_directory_service"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directory_schedule")),
    )
    with op.batch_alter_table("directory_schedule", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_directory_schedule_service_id"), ["service_id"], unique=False
        )

    op.create_table(
        "directory_service_at_location",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("service_id", sa.Uuid(), nullable=False),
        sa.Column("location_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["directory_location.id"],
            name=op.f("fk_directory_service_at_location_location_id_directory_location"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["directory_service.id"],
            name=op.f("fk_directory_service_at_location_service_id_directory_service"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directory_service_at_location")),
        sa.UniqueConstraint(
            "service_id",
            "location_id",
            name=op.f("uq_directory_service_at_location_service_id_location_id"),
        ),
    )
    with op.batch_alter_table("directory_service_at_location", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_directory_service_at_location_location_id"),
            ["location_id"],
            unique=False,
        )

    op.create_table(
        "directory_service_term",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("service_id", sa.Uuid(), nullable=False),
        sa.Column("taxonomy_term_id", sa.Uuid(), nullable=False),
        sa.Column("link_type", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["directory_service.id"],
            name=op.f("fk_directory_service_term_service_id_directory_service"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["taxonomy_term_id"],
            ["directory_taxonomy_term.id"],
            name=op.f("fk_directory_service_term_taxonomy_term_id_directory_taxonomy_term"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_directory_service_term")),
        sa.UniqueConstraint(
            "service_id",
            "taxonomy_term_id",
            name=op.f("uq_directory_service_term_service_id_taxonomy_term_id"),
        ),
    )
    with op.batch_alter_table("directory_service_term", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_directory_service_term_taxonomy_term_id"),
            ["taxonomy_term_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("directory_service_term", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_directory_service_term_taxonomy_term_id"))

    op.drop_table("directory_service_term")
    with op.batch_alter_table("directory_service_at_location", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_directory_service_at_location_location_id"))

    op.drop_table("directory_service_at_location")
    with op.batch_alter_table("directory_schedule", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_directory_schedule_service_id"))

    op.drop_table("directory_schedule")
    with op.batch_alter_table("directory_taxonomy_term", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_directory_taxonomy_term_taxonomy_id"))

    op.drop_table("directory_taxonomy_term")
    with op.batch_alter_table("directory_service", schema=None) as batch_op:
        batch_op.drop_index("ix_directory_service_status_name")
        batch_op.drop_index(batch_op.f("ix_directory_service_organization_id"))
        batch_op.drop_index("ix_directory_service_last_modified")

    op.drop_table("directory_service")
    op.drop_table("directory_taxonomy")
    op.drop_table("directory_organization")
    op.drop_table("directory_location")
