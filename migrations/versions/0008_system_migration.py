"""a practice's move between clinical systems

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 13:30:00

system_migration holds a practice's plan to move to another clinical system (target adapter and options, the
cut-over window, what patients see, its state); system_migration_patient what became of each linked patient
(matched with both ids, or waiting for reception with the reason).
"""

import sqlalchemy as sa
from alembic import op

import patient_online.models.base

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "system_migration",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("source_adapter", sa.String(length=40), nullable=False),
        sa.Column("source_options", sa.JSON(), nullable=False),
        sa.Column("source_key", sa.String(length=200), nullable=False),
        sa.Column("target_adapter", sa.String(length=40), nullable=False),
        sa.Column("target_options", sa.JSON(), nullable=False),
        sa.Column("target_key", sa.String(length=200), nullable=False),
        sa.Column("window_start", patient_online.models.base.UTCDateTime(), nullable=False),
        sa.Column("window_end", patient_online.models.base.UTCDateTime(), nullable=False),
        sa.Column("patient_message", sa.String(length=500), nullable=False),
        sa.Column("saved_switches", sa.JSON(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("created_at", patient_online.models.base.UTCDateTime(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", patient_online.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["practice_id"], ["practice.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["created_by_id"], ["user_account.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("system_migration", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_system_migration_practice_id"), ["practice_id"], unique=False)
    op.create_table(
        "system_migration_patient",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("migration_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=30), nullable=False),
        sa.Column("old_id", sa.String(length=64), nullable=False),
        sa.Column("new_id", sa.String(length=64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("resolved_at", patient_online.models.base.UTCDateTime(), nullable=True),
        sa.Column("resolved_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["migration_id"], ["system_migration.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["resolved_by_id"], ["user_account.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("migration_id", "patient_id"),
    )
    with op.batch_alter_table("system_migration_patient", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_system_migration_patient_migration_id"), ["migration_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_system_migration_patient_patient_id"), ["patient_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("system_migration_patient", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_system_migration_patient_patient_id"))
        batch_op.drop_index(batch_op.f("ix_system_migration_patient_migration_id"))
    op.drop_table("system_migration_patient")
    with op.batch_alter_table("system_migration", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_system_migration_practice_id"))
    op.drop_table("system_migration")
