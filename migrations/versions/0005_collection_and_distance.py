"""where a repeat prescription is collected, when it was sent, and where practices and pharmacies are

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 09:00:00

prescription_order.collection: the patient's nominated pharmacy (EPS) or a paper prescription at the surgery
(existing orders all went to a pharmacy); prescription_order.sent_at: when the clinical system took it, so
created_at stays the time the patient asked. demo_repeat_request.collection: the demo clinical system keeps the
choice too. practice and pharmacy latitude/longitude (nullable: unknown until entered) order pharmacies by
distance from the practice.
"""

import sqlalchemy as sa
from alembic import op

import patient_online.models.base

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("prescription_order", schema=None) as batch_op:
        batch_op.add_column(sa.Column("collection", sa.String(length=20), server_default="pharmacy", nullable=False))
        batch_op.add_column(sa.Column("sent_at", patient_online.models.base.UTCDateTime(), nullable=True))

    with op.batch_alter_table("demo_repeat_request", schema=None) as batch_op:
        batch_op.add_column(sa.Column("collection", sa.String(length=20), server_default="pharmacy", nullable=False))

    for table in ("practice", "pharmacy"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("latitude", sa.Float(), nullable=True))
            batch_op.add_column(sa.Column("longitude", sa.Float(), nullable=True))


def downgrade() -> None:
    for table in ("pharmacy", "practice"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("longitude")
            batch_op.drop_column("latitude")

    with op.batch_alter_table("demo_repeat_request", schema=None) as batch_op:
        batch_op.drop_column("collection")

    with op.batch_alter_table("prescription_order", schema=None) as batch_op:
        batch_op.drop_column("sent_at")
        batch_op.drop_column("collection")
