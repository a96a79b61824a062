"""information governance (account closure, retention, audit chain)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 13:30:00

On PostgreSQL, audit events become append-only: a trigger refuses every UPDATE but the one that seals an
event into its hash chain (filling the empty chain columns, nothing else), refuses TRUNCATE, and refuses
DELETE unless the transaction has set ``patient_online.audit_retention`` to ``on`` (``SET LOCAL``), which
only the retention command does, for events older than the retention policy (docs/dspt.md).
"""

import sqlalchemy as sa
from alembic import op

import patient_online.models.base

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

GUARD_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_event_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION 'audit events cannot be removed' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'DELETE' THEN
        IF current_setting('patient_online.audit_retention', true) = 'on' THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'audit events cannot be deleted' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.hash IS NULL AND OLD.chain_seq IS NULL AND NEW.hash IS NOT NULL AND NEW.chain_seq IS NOT NULL
       AND NEW.id = OLD.id
       AND NEW.at IS NOT DISTINCT FROM OLD.at
       AND NEW.action = OLD.action
       AND NEW.actor_user_id IS NOT DISTINCT FROM OLD.actor_user_id
       AND NEW.actor_role = OLD.actor_role
       AND NEW.patient_id IS NOT DISTINCT FROM OLD.patient_id
       AND NEW.subject_user_id IS NOT DISTINCT FROM OLD.subject_user_id
       AND NEW.practice_id IS NOT DISTINCT FROM OLD.practice_id
       AND NEW.detail::text IS NOT DISTINCT FROM OLD.detail::text
       AND NEW.request_id = OLD.request_id THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit events cannot be changed' USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def upgrade() -> None:
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("chain_seq", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_audit_event_practice_chain", ["practice_id", "chain_seq"], unique=False)
        batch_op.create_index("ix_audit_event_chain_seq", ["chain_seq"], unique=False)

    op.create_table(
        "audit_chain",
        sa.Column("chain_key", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.Column("anchor_seq", sa.Integer(), nullable=False),
        sa.Column("anchor_hash", sa.String(length=64), nullable=False),
        sa.Column("sealed_at", patient_online.models.base.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("chain_key", name=op.f("pk_audit_chain")),
    )
    op.create_table(
        "account_closure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("closed_at", patient_online.models.base.UTCDateTime(), nullable=False),
        sa.Column("closed_by_id", sa.Integer(), nullable=True),
        sa.Column("closed_by_role", sa.String(length=30), nullable=False),
        sa.Column("reason", sa.String(length=2000), nullable=False),
        sa.Column("anonymised_at", patient_online.models.base.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["closed_by_id"], ["user_account.id"], name=op.f("fk_account_closure_closed_by_id_user_account")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user_account.id"], name=op.f("fk_account_closure_user_id_user_account"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_closure")),
        sa.UniqueConstraint("user_id", name=op.f("uq_account_closure_user_id")),
    )

    if op.get_bind().dialect.name == "postgresql":
        op.execute(GUARD_FUNCTION)
        op.execute(
            "CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event "
            "FOR EACH ROW EXECUTE FUNCTION audit_event_guard()"
        )
        op.execute(
            "CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_event_guard()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event")
        op.execute("DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event")
        op.execute("DROP FUNCTION IF EXISTS audit_event_guard()")
    op.drop_table("account_closure")
    op.drop_table("audit_chain")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_event_chain_seq")
        batch_op.drop_index("ix_audit_event_practice_chain")
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
        batch_op.drop_column("chain_seq")
