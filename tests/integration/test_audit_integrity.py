"""The audit trail cannot be changed unnoticed: hash chains per practice, and append-only on PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError

from patient_online.extensions import make_engine
from patient_online.migrate import alembic_config
from patient_online.models import AuditChain, AuditEvent
from patient_online.services import audit_chain
from tests.conftest import PROJECT_ROOT, create_postgres_database, drop_database


def _sealed_events(uow: Any, session: Any) -> list[AuditEvent]:
    uow.audit("test.one", practice_id=1, note="a")
    uow.audit("test.two", practice_id=1, note="b")
    uow.audit("test.three", practice_id=1, note="c")
    uow.commit()
    audit_chain.seal(uow)
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action.like("test.%")).order_by(AuditEvent.id)))


def test_sealed_chains_verify_and_a_second_seal_changes_nothing(uow: Any, session: Any) -> None:
    events = _sealed_events(uow, session)
    assert all(e.hash and e.chain_seq for e in events)
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]], "each event follows the one before"
    assert audit_chain.seal(uow).events == 0
    result = audit_chain.verify(session)
    assert result.ok, result.problems
    assert result.unsealed == 0


def test_a_changed_event_is_found_by_its_id(uow: Any, session: Any) -> None:
    events = _sealed_events(uow, session)
    session.execute(update(AuditEvent).where(AuditEvent.id == events[1].id).values(detail={"note": "changed"}))
    session.commit()
    session.expire_all()
    result = audit_chain.verify(session)
    assert not result.ok
    assert any(f"event {events[1].id} was changed" in p for p in result.problems), result.problems


def test_a_removed_event_and_a_removed_newest_event_are_found(uow: Any, session: Any) -> None:
    events = _sealed_events(uow, session)
    session.execute(delete(AuditEvent).where(AuditEvent.id.in_([events[1].id, events[2].id])))
    session.commit()
    problems = audit_chain.verify(session).problems
    assert any("newest events are missing" in p for p in problems), problems
    key = audit_chain.chain_key(1, "test.one")
    head = session.get(AuditChain, key)
    head.seq, head.last_hash = events[0].chain_seq, events[0].hash  # an attacker who also rewinds the head...
    session.commit()
    assert audit_chain.verify(
        session
    ).ok  # ...is not found by the chain alone: the head's copy elsewhere (docs/dspt.md)


def test_flask_audit_verify_fails_and_names_the_event(app: Any, uow: Any, session: Any) -> None:
    events = _sealed_events(uow, session)
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["audit", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "The audit trail is whole." in ok.output
    session.execute(update(AuditEvent).where(AuditEvent.id == events[0].id).values(action="test.other"))
    session.commit()
    broken = runner.invoke(args=["audit", "verify"])
    assert broken.exit_code == 1
    assert f"event {events[0].id}" in broken.output


@pytest.mark.postgres
def test_postgres_refuses_to_change_or_delete_an_audit_event_except_sealing_and_retention(tmp_path: Path) -> None:
    url = create_postgres_database()
    engine = make_engine(url, PROJECT_ROOT)
    try:
        with engine.begin() as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO audit_event (at, action, actor_role, detail, request_id) "
                    "VALUES (now(), 'record.viewed', 'patient', '{}', '')"
                )
            )
        with engine.begin() as conn:  # sealing fills the empty chain columns: allowed once
            conn.execute(text("UPDATE audit_event SET chain_seq = 1, prev_hash = 'p', hash = 'h'"))
        for statement in (
            "UPDATE audit_event SET action = 'nothing.happened'",
            "UPDATE audit_event SET hash = 'other'",
            "DELETE FROM audit_event",
            "TRUNCATE audit_event",
        ):
            with pytest.raises(DBAPIError, match="audit events cannot be"), engine.begin() as conn:
                conn.execute(text(statement))
        with engine.begin() as conn:  # the retention command's deliberate path
            conn.execute(text("SET LOCAL patient_online.audit_retention = 'on'"))
            conn.execute(text("DELETE FROM audit_event"))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM audit_event")).scalar_one() == 0
    finally:
        engine.dispose()
        drop_database(url)
