"""messaging (email and text through the outbox, reminders, earlier-appointment offers)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 13:30:00

Every message to a person is now an outbox message: outbox_message gains a priority (security codes first) and
may belong to no practice; notification records each message's delivery (status, reference, when sent, the
provider's id, the template's personalisation). contact_preference keeps a verified mobile number and the
channels chosen per kind of message. appointment_reminder holds each reminder sent or skipped, once
per appointment and time before it.
"""

import sqlalchemy as sa
from alembic import op

import patient_online.models.base

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.alter_column("practice_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("priority", sa.Integer(), server_default="0", nullable=False))

    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status", sa.String(length=20), server_default="sent", nullable=False))
        batch_op.add_column(sa.Column("priority", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("reference", sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column("personalisation", sa.JSON(), server_default="{}", nullable=False))
        batch_op.add_column(sa.Column("sent_at", patient_online.models.base.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("provider_id", sa.String(length=64), server_default="", nullable=False))
        batch_op.create_unique_constraint(batch_op.f("uq_notification_reference"), ["reference"])

    op.create_table(
        "appointment_reminder",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("appointment_ref", sa.String(length=120), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("hours_before", sa.Integer(), nullable=False),
        sa.Column("starts_at", patient_online.models.base.UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", patient_online.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patient.id"],
            name=op.f("fk_appointment_reminder_patient_id_patient"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"],
            ["practice.id"],
            name=op.f("fk_appointment_reminder_practice_id_practice"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointment_reminder")),
        sa.UniqueConstraint("practice_id", "appointment_ref", "hours_before", name="uq_appointment_reminder"),
    )
    with op.batch_alter_table("appointment_reminder", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_appointment_reminder_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "contact_preference",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("mobile", sa.String(length=20), nullable=False),
        sa.Column("mobile_verified_at", patient_online.models.base.UTCDateTime(), nullable=True),
        sa.Column("pending_mobile", sa.String(length=20), nullable=False),
        sa.Column("code_hash", sa.String(length=128), nullable=False),
        sa.Column("code_expires_at", patient_online.models.base.UTCDateTime(), nullable=True),
        sa.Column("code_attempts", sa.Integer(), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_contact_preference_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_preference")),
        sa.UniqueConstraint("user_id", name=op.f("uq_contact_preference_user_id")),
    )


def downgrade() -> None:
    op.drop_table("contact_preference")
    with op.batch_alter_table("appointment_reminder", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_appointment_reminder_patient_id"))
    op.drop_table("appointment_reminder")

    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_notification_reference"), type_="unique")
        batch_op.drop_column("provider_id")
        batch_op.drop_column("sent_at")
        batch_op.drop_column("personalisation")
        batch_op.drop_column("reference")
        batch_op.drop_column("priority")
        batch_op.drop_column("status")

    op.execute("DELETE FROM outbox_message WHERE practice_id IS NULL")
    with op.batch_alter_table("outbox_message", schema=None) as batch_op:
        batch_op.drop_column("priority")
        batch_op.alter_column("practice_id", existing_type=sa.Integer(), nullable=False)
