"""The retention policy: `flask retention run` removes what is past its time, in batches, and only once."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select

from patient_online.models import (
    AccountClosure,
    AuditEvent,
    BookingIntent,
    HeldValue,
    LinkRequest,
    Notification,
    OneTimeCode,
    OutboxMessage,
    Patient,
    Practice,
    User,
)
from patient_online.services import audit_chain, retention

NOW = dt.datetime.now(dt.UTC)
YEAR = dt.timedelta(days=366)


@pytest.fixture
def settings() -> dict[str, Any]:
    return {"RETENTION": {**retention.DEFAULTS, "batch": 2}}  # small batches: the loop is exercised


def _old_data(session: Any) -> dict[str, Any]:
    """Rows of each kind past their time, and one of each just inside it, at a practice of their own."""
    practice = Practice(ods_code="Y09990", name="Retention Test Surgery")
    session.add(practice)
    session.flush()
    patient = session.scalar(select(Patient).order_by(Patient.id))
    user = User(kind="patient", email="closed.long.ago@example.com", given_name="Gone", family_name="Away")
    other = User(kind="patient", email="still.here@example.com")
    session.add_all([user, other])
    session.flush()
    p = practice.id
    old, recent = NOW - 9 * YEAR, NOW - YEAR
    session.add_all(
        [
            *(AuditEvent(at=old + dt.timedelta(minutes=i), action="record.viewed", practice_id=p) for i in range(3)),
            AuditEvent(at=recent, action="record.viewed", practice_id=p),
            *(AuditEvent(at=NOW - 3 * YEAR, action="sign_in", practice_id=p) for _ in range(2)),
            AuditEvent(at=recent, action="sign_in", practice_id=p),
            Notification(to="someone@example.com", template="t", created_at=NOW - 2 * YEAR),
            Notification(to="someone@example.com", template="t", created_at=NOW),
            OutboxMessage(
                practice_id=p,
                kind="order",
                payload={"items": ["x"]},
                idempotency_key="retention-delivered",
                status="delivered",
                delivered_at=NOW - dt.timedelta(days=60),
            ),
            OutboxMessage(practice_id=p, kind="order", idempotency_key="retention-pending", status="pending"),
            OneTimeCode(user_id=other.id, purpose="sign_in", code_hash="h", expires_at=NOW - dt.timedelta(days=30)),
            HeldValue(
                id="retention-held", owner_id=user.id, purpose="p", sealed="s", expires_at=NOW - dt.timedelta(hours=1)
            ),
            LinkRequest(
                user_id=other.id,
                practice_id=p,
                nhs_number="9990000000",
                given_name="Gone",
                family_name="Away",
                date_of_birth=dt.date(1980, 1, 1),
                postcode="KB1 1AA",
                status="rejected",
                created_at=NOW - 2 * YEAR,
            ),
            BookingIntent(
                practice_id=p,
                patient_id=patient.id,
                user_id=user.id,
                slot_id="s",
                idempotency_key="retention-intent",
                created_at=NOW - dt.timedelta(days=90),
            ),
            AccountClosure(user_id=user.id, closed_at=NOW - dt.timedelta(days=400), closed_by_role="patient"),
        ]
    )
    session.commit()
    return {"practice_id": p, "user_id": user.id}


EXPECTED = {
    "audit_events": 3,
    "sign_in_history": 2,
    "closed_accounts": 1,
    "messages": 1,
    "delivered_outbox": 1,
    "one_time_codes": 1,
    "held_values": 1,
    "link_requests": 1,
    "booking_intents": 1,
    "prescription_orders": 0,
    "booking_records": 0,
    "appointment_reminders": 0,
}


def test_dry_run_counts_run_removes_and_a_second_run_changes_nothing(app_ctx: Any, uow: Any, session: Any) -> None:
    before = retention.run(uow, dry_run=True).counts
    ids = _old_data(session)
    counted = retention.run(uow, dry_run=True).counts
    assert {k: counted[k] - before[k] for k in EXPECTED} == EXPECTED
    assert retention.run(uow, dry_run=True).counts == counted, "a dry run changes nothing"

    done = retention.run(uow).counts
    assert {k: done[k] - before[k] for k in EXPECTED} == EXPECTED
    p = ids["practice_id"]
    left = session.scalars(select(AuditEvent.action).where(AuditEvent.practice_id == p)).all()
    assert sorted(left) == ["record.viewed", "sign_in"], "the recent events stay"
    user = session.get(User, ids["user_id"])
    assert user.email == f"closed-{user.id}@closed.invalid" and user.given_name == "" and user.family_name == ""
    assert session.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.practice_id == p)) == 1
    applied = session.scalar(select(AuditEvent).where(AuditEvent.action == "retention.applied"))
    assert applied is not None and applied.detail["audit_events"] >= 3

    verified = audit_chain.verify(session)
    assert verified.ok, verified.problems  # the kept events still prove their place in the chain

    events = session.scalar(select(func.count()).select_from(AuditEvent))
    again = retention.run(uow)
    assert again.total == 0, again.counts
    assert session.scalar(select(func.count()).select_from(AuditEvent)) == events, "the second run wrote nothing"


def test_flask_retention_run_dry_run_prints_counts_per_kind(app: Any, session: Any) -> None:
    _old_data(session)
    result = app.test_cli_runner().invoke(args=["retention", "run", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "sign-in history: would remove" in result.output and "Dry run: nothing changed." in result.output
    result = app.test_cli_runner().invoke(args=["retention", "run"])
    assert result.exit_code == 0, result.output
    assert "audit events (views and changes): removed" in result.output
    verify = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert verify.exit_code == 0, verify.output


@pytest.mark.postgres
def test_retention_removes_old_audit_events_through_the_append_only_trigger() -> None:
    """On a database built by the migrations (with the trigger), only retention's deliberate path may delete."""
    from alembic import command
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from patient_online import create_app
    from patient_online.extensions import db, make_engine
    from patient_online.migrate import alembic_config
    from patient_online.wiring import uow_factory
    from tests.conftest import PROJECT_ROOT, TEST_SETTINGS, create_postgres_database, drop_database

    url = create_postgres_database()
    engine = make_engine(url, PROJECT_ROOT)
    bound = db.factory.kw.get("bind"), db.engine
    try:
        with engine.begin() as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        app = create_app({**TEST_SETTINGS, "DATABASE_ENGINE": engine})
        with app.app_context():
            db.session.add_all(
                [
                    AuditEvent(at=NOW - 9 * YEAR, action="record.viewed"),
                    AuditEvent(at=NOW - 9 * YEAR, action="record.viewed"),
                    AuditEvent(at=NOW, action="record.viewed"),
                ]
            )
            db.session.commit()
            with pytest.raises(DBAPIError, match="audit events cannot be deleted"):
                db.session.execute(text("DELETE FROM audit_event"))
            db.session.rollback()
            done = retention.run(uow_factory(app)(db.session))
            assert done.counts["audit_events"] == 2
            assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == 2  # the new one and the report
            assert audit_chain.verify(db.session).ok
            db.session.rollback()
            with pytest.raises(DBAPIError, match="audit events cannot be"):
                db.session.execute(text("UPDATE audit_event SET detail = '{}'"))
            db.session.rollback()
            db.scoped.remove()
    finally:
        db.factory.configure(bind=bound[0])
        db.engine = bound[1]
        engine.dispose()
        drop_database(url)
