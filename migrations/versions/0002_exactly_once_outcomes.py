"""booking outcomes recorded exactly once, and bookings reconciled

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 07:50:00

booking_record holds one row per appointment whose booking was recorded: its unique key stops a double
submit on two servers from writing two audit events and sending two confirmations. booking_intent holds a
booking about to be asked of a clinical system, so one the gateway failed to record is recorded later.
"""

import sqlalchemy as sa
from alembic import op

import patient_online.models.base

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "booking_record",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("appointment_ref", sa.String(length=120), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("created_at", patient_online.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name=op.f("fk_booking_record_patient_id_patient"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"], ["practice.id"], name=op.f("fk_booking_record_practice_id_practice"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_record")),
        sa.UniqueConstraint("practice_id", "appointment_ref", name="uq_booking_record_appointment"),
    )
    with op.batch_alter_table("booking_record", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_booking_record_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "booking_intent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("actor_role", sa.String(length=30), nullable=False),
        sa.Column("slot_id", sa.String(length=120), nullable=False),
        sa.Column("idempotency_key", sa.String(length=80), nullable=False),
        sa.Column("created_at", patient_online.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name=op.f("fk_booking_intent_patient_id_patient"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"], ["practice.id"], name=op.f("fk_booking_intent_practice_id_practice"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user_account.id"], name=op.f("fk_booking_intent_user_id_user_account"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_intent")),
        sa.UniqueConstraint("patient_id", "idempotency_key", name="uq_booking_intent_key"),
    )
    with op.batch_alter_table("booking_intent", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_booking_intent_patient_id"), ["patient_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("booking_intent", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_booking_intent_patient_id"))
    op.drop_table("booking_intent")
    with op.batch_alter_table("booking_record", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_booking_record_patient_id"))
    op.drop_table("booking_record")
