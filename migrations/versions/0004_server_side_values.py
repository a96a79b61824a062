"""server-side values, and whether a link request matched

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 08:00:00

held_value keeps what a page remembers between requests (offered medicines, a Linkage Key to print) on the
server instead of in the session cookie. link_request.matched records whether the patient's details matched
the clinical system: every request now reaches reception, which sees the outcome; the patient is not told.
"""

import sqlalchemy as sa
from alembic import op

import patient_online.models.base

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "held_value",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("expires_at", patient_online.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["user_account.id"],
            name=op.f("fk_held_value_owner_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_held_value")),
    )
    with op.batch_alter_table("held_value", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_held_value_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_held_value_expires_at"), ["expires_at"], unique=False)

    with op.batch_alter_table("link_request", schema=None) as batch_op:
        batch_op.add_column(sa.Column("matched", sa.Boolean(), server_default=sa.true(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("link_request", schema=None) as batch_op:
        batch_op.drop_column("matched")

    with op.batch_alter_table("held_value", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_held_value_expires_at"))
        batch_op.drop_index(batch_op.f("ix_held_value_owner_id"))
    op.drop_table("held_value")
