"""reception and practice manager screens

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 13:30:00
"""

import sqlalchemy as sa
from alembic import op

import patient_online.models.base

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Reception: repeat requests that could not be delivered and that reception has dealt with.
    op.create_table(
        "handled_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("outbox_message_id", sa.Integer(), nullable=False),
        sa.Column("handled_by_id", sa.Integer(), nullable=False),
        sa.Column("handled_at", patient_online.models.base.UTCDateTime(), nullable=False),
        sa.Column("how", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["handled_by_id"],
            ["user_account.id"],
            name=op.f("fk_handled_message_handled_by_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["outbox_message_id"],
            ["outbox_message.id"],
            name=op.f("fk_handled_message_outbox_message_id_outbox_message"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handled_message")),
        sa.UniqueConstraint("outbox_message_id", name=op.f("uq_handled_message_outbox_message_id")),
    )


def downgrade() -> None:
    op.drop_table("handled_message")
