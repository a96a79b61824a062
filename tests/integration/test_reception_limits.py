"""Linking limits that do not lock a shared address out: six people behind one address (a front desk, a care
home) can each ask to link their own record, while one NHS number tried again and again from one address is
limited; a staff member's attempts count against their own account."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from patient_online.adapters.demo.models import DemoPatient
from patient_online.auth import throttle
from tests.integration.test_linking import new_account, request_form


@pytest.fixture
def settings() -> dict[str, Any]:
    return {"RATELIMIT_LINKAGE_TARGET": "5 per hour", "RATELIMIT_LINKAGE_ADDRESS": "30 per hour"}


def registered(session: Any, count: int) -> list[DemoPatient]:
    return list(
        session.scalars(
            select(DemoPatient).where(DemoPatient.practice_ods == "Y02001").order_by(DemoPatient.id).offset(20)
        ).all()[:count]
    )


def test_six_patients_behind_one_address_can_each_ask(app: Any, session: Any) -> None:
    for n, person in enumerate(registered(session, 6)):
        asker = new_account(app, f"desk-ask{n}@example.org")
        answer = asker.submit("/link", request_form(person))
        assert answer.status_code == 302, f"person {n} was refused: {answer.status_code}"
        assert answer.headers["Location"].endswith("/link/requested")


def test_one_nhs_number_from_one_address_is_limited(app: Any, session: Any) -> None:
    (person,) = registered(session, 1)
    statuses = []
    for n in range(6):
        asker = new_account(app, f"same-number{n}@example.org")
        statuses.append(asker.submit("/link", request_form(person)).status_code)
    assert statuses[:5] == [302] * 5 and statuses[5] == 429


def test_staff_attempts_count_against_their_own_account(app: Any) -> None:
    from flask import g

    from patient_online.models import User

    with app.test_request_context("/link", method="POST", environ_base={"REMOTE_ADDR": "10.0.0.7"}):
        g.user = User(id=41, kind="staff", email="desk@example.org")
        staff_key = throttle.link_actor_key()
        g.user = User(id=42, kind="patient", email="pat@example.org")
        patient_key = throttle.link_actor_key()
    assert staff_key == "link-staff:41" and patient_key == "link:42"
    assert "10.0.0.7" not in staff_key  # never the address the whole front desk shares


def test_the_record_key_never_holds_the_nhs_number(app: Any) -> None:
    with app.test_request_context(
        "/link", method="POST", data={"request-nhs_number": "999 001 0145"}, environ_base={"REMOTE_ADDR": "10.0.0.7"}
    ):
        key = throttle.link_target_key()
    with app.test_request_context(
        "/link", method="POST", data={"request-nhs_number": "9990010145"}, environ_base={"REMOTE_ADDR": "10.0.0.7"}
    ):
        same = throttle.link_target_key()
    assert key == same and "9990010145" not in key and key.endswith(":10.0.0.7")
