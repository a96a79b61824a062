"""a patient's logical id at each clinical system a practice has used

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 13:30:00

patient_system_id keeps, per patient and clinical system (adapter and where it reaches), the id that system
gave the patient: found by NHS number when a patient links or a practice's adapter changes, and kept so that a
migration between systems can be rolled back.
"""

import sqlalchemy as sa
from alembic import op

import patient_online.models.base

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "patient_system_id",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("system_key", sa.String(length=200), nullable=False),
        sa.Column("logical_id", sa.String(length=64), nullable=False),
        sa.Column("found_at", patient_online.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("patient_id", "system_key"),
    )
    with op.batch_alter_table("patient_system_id", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_patient_system_id_patient_id"), ["patient_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("patient_system_id", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_patient_system_id_patient_id"))
    op.drop_table("patient_system_id")
