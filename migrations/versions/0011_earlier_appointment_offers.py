"""earlier appointment offers (the waitlist)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 18:20:53
"""

import sqlalchemy as sa
from alembic import op

import patient_online.models.base

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "waitlist_look",
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("due_at", patient_online.models.base.UTCDateTime(), nullable=False),
        sa.Column("looked_at", patient_online.models.base.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["practice_id"], ["practice.id"], name=op.f("fk_waitlist_look_practice_id_practice"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("practice_id", name=op.f("pk_waitlist_look")),
    )
    op.create_table(
        "waitlist_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("actor_role", sa.String(length=30), nullable=False),
        sa.Column("slot_type", sa.String(length=120), nullable=False),
        sa.Column("weekdays", sa.JSON(), nullable=False),
        sa.Column("parts", sa.JSON(), nullable=False),
        sa.Column("until", sa.Date(), nullable=False),
        sa.Column("replacing_ref", sa.String(length=120), nullable=False),
        sa.Column("replacing_start", patient_online.models.base.UTCDateTime(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("active_key", sa.String(length=60), nullable=True),
        sa.Column("created_at", patient_online.models.base.UTCDateTime(), nullable=False),
        sa.Column("ended_at", patient_online.models.base.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patient.id"], name=op.f("fk_waitlist_entry_patient_id_patient"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"], ["practice.id"], name=op.f("fk_waitlist_entry_practice_id_practice"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user_account.id"], name=op.f("fk_waitlist_entry_user_id_user_account"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waitlist_entry")),
        sa.UniqueConstraint("active_key", name=op.f("uq_waitlist_entry_active_key")),
    )
    with op.batch_alter_table("waitlist_entry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_waitlist_entry_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index("ix_waitlist_entry_queue", ["practice_id", "status", "created_at"], unique=False)

    op.create_table(
        "slot_offer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("practice_id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("slot_id", sa.String(length=120), nullable=False),
        sa.Column("slot_start", patient_online.models.base.UTCDateTime(), nullable=False),
        sa.Column("slot_end", patient_online.models.base.UTCDateTime(), nullable=False),
        sa.Column("slot_type", sa.String(length=120), nullable=False),
        sa.Column("clinician", sa.String(length=200), nullable=False),
        sa.Column("clinician_role", sa.String(length=120), nullable=False),
        sa.Column("delivery_mode", sa.String(length=20), nullable=False),
        sa.Column("location", sa.String(length=300), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("live_key", sa.String(length=200), nullable=True),
        sa.Column("offered_at", patient_online.models.base.UTCDateTime(), nullable=False),
        sa.Column("hold_until", patient_online.models.base.UTCDateTime(), nullable=False),
        sa.Column("decided_at", patient_online.models.base.UTCDateTime(), nullable=True),
        sa.Column("appointment_ref", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["waitlist_entry.id"], name=op.f("fk_slot_offer_entry_id_waitlist_entry"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"], ["practice.id"], name=op.f("fk_slot_offer_practice_id_practice"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slot_offer")),
        sa.UniqueConstraint("live_key", name=op.f("uq_slot_offer_live_key")),
    )
    with op.batch_alter_table("slot_offer", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_slot_offer_entry_id"), ["entry_id"], unique=False)
        batch_op.create_index("ix_slot_offer_status_hold", ["status", "hold_until"], unique=False)

    with op.batch_alter_table("practice", schema=None) as batch_op:
        batch_op.add_column(sa.Column("waitlist_enabled", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("waitlist_hold_minutes", sa.Integer(), server_default="15", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("practice", schema=None) as batch_op:
        batch_op.drop_column("waitlist_hold_minutes")
        batch_op.drop_column("waitlist_enabled")

    with op.batch_alter_table("slot_offer", schema=None) as batch_op:
        batch_op.drop_index("ix_slot_offer_status_hold")
        batch_op.drop_index(batch_op.f("ix_slot_offer_entry_id"))

    op.drop_table("slot_offer")
    with op.batch_alter_table("waitlist_entry", schema=None) as batch_op:
        batch_op.drop_index("ix_waitlist_entry_queue")
        batch_op.drop_index(batch_op.f("ix_waitlist_entry_patient_id"))

    op.drop_table("waitlist_entry")
    op.drop_table("waitlist_look")
