"""The activity page: a page of 25 at a time, newest first, each entry a plain sentence naming what was viewed
or done, and never a raw event name."""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any

from sqlalchemy import delete, select

from patient_online.models import AccountLink, AuditEvent, Patient, Practice, ProxyLink, User
from patient_online.services.activity import PER_PAGE, activity_page

PATIENT = "patient.y02001@example.com"
PARENT = "parent.y02001@example.com"


def _user(session: Any, email: str) -> User:
    return session.scalar(select(User).where(User.email == email))  # type: ignore[no-any-return]


def _own_patient(session: Any, user: User) -> Patient:
    link = session.scalar(select(AccountLink).where(AccountLink.user_id == user.id))
    return session.get(Patient, link.patient_id)  # type: ignore[no-any-return]


def _only_these_events(session: Any, user: User, patient: Patient) -> None:
    """Start from an empty history for the person, so the test knows every line on the page."""
    session.execute(
        delete(AuditEvent).where(
            (AuditEvent.subject_user_id == user.id)
            | (AuditEvent.actor_user_id == user.id)
            | (AuditEvent.patient_id == patient.id)
        )
    )


def _event(session: Any, at: dt.datetime, action: str, **fields: Any) -> None:
    detail = fields.pop("detail", {})
    session.add(AuditEvent(at=at, action=action, detail=detail, **fields))


def _text(response: Any) -> str:
    body = html.unescape(response.get_data(as_text=True))
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


BASE = dt.datetime(2025, 3, 3, 9, 0, tzinfo=dt.UTC)


def test_the_page_shows_25_at_a_time_newest_first_with_pages(app: Any, client: Any, sign_in: Any) -> None:
    from patient_online.extensions import db

    with app.app_context():
        user = _user(db.session, PATIENT)
        patient = _own_patient(db.session, user)
        _only_these_events(db.session, user, patient)
        for n in range(60):  # one a minute; number n is the n-th oldest
            _event(
                db.session,
                BASE + dt.timedelta(minutes=n),
                "record.viewed",
                actor_user_id=user.id,
                actor_role="patient",
                patient_id=patient.id,
                detail={"section": "test-results" if n % 2 else "medications"},
            )
        db.session.commit()
    sign_in(PATIENT)  # adds a sign-in event, the newest of all
    first = client.get("/account/activity")
    assert first.status_code == 200
    page = first.get_data(as_text=True)
    entries = re.findall(r'<li class="app-activity__entry">(.*?)</li>', page, re.S)
    assert len(entries) == PER_PAGE
    assert "You signed in" in entries[0]
    assert "9:59am" in entries[1] and "You viewed your test results" in entries[1]  # n = 59
    assert "9:58am" in entries[2] and "You viewed your medicines" in entries[2]
    assert "Page 1 of 3" in _text(first)
    assert 'class="nhsuk-pagination' in page and "/account/activity?page=2" in page
    assert 'aria-current="page"' in page

    last = client.get("/account/activity?page=3")
    entries = re.findall(r'<li class="app-activity__entry">(.*?)</li>', last.get_data(as_text=True), re.S)
    assert len(entries) == 61 - 2 * PER_PAGE
    assert "9:00am" in entries[-1]  # the oldest comes last
    assert "Page 3 of 3" in _text(last)
    assert "Monday 3 March 2025" in _text(last)  # grouped under the day
    # A page past the end, or nonsense, still lands on a page.
    assert "Page 3 of 3" in _text(client.get("/account/activity?page=99"))
    assert "Page 1 of 3" in _text(client.get("/account/activity?page=abc"))


def test_every_entry_is_a_plain_sentence(app_ctx: Any, uow: Any) -> None:
    from patient_online.extensions import db

    session = db.session
    user = _user(session, PATIENT)
    patient = _own_patient(session, user)
    practice = session.get(Practice, patient.practice_id)
    staff = _user(session, "reception.y02001@example.com")
    parent = _user(session, PARENT)
    _only_these_events(session, user, patient)
    events: list[tuple[str, dict[str, Any]]] = [
        ("record.viewed", {"actor_user_id": user.id, "actor_role": "patient", "detail": {"section": "overview"}}),
        ("record.downloaded", {"actor_user_id": user.id, "actor_role": "patient", "detail": {"format": "print"}}),
        ("access.refused", {"actor_user_id": user.id, "detail": {"path": "/appointments"}}),
        ("verification.viewed", {"actor_user_id": staff.id, "actor_role": "receptionist", "subject_user_id": user.id}),
        ("access.viewed", {"actor_user_id": staff.id, "actor_role": "receptionist"}),
        ("record.viewed", {"actor_user_id": parent.id, "actor_role": "proxy", "detail": {"section": "allergies"}}),
        ("prescription.sent", {"actor_role": "system"}),
        ("sign_in.failed", {"subject_user_id": user.id, "detail": {"stage": "password"}}),
        ("staff.role_added", {"actor_user_id": staff.id, "subject_user_id": user.id}),
    ]
    for n, (action, fields) in enumerate(events):
        fields = {"patient_id": patient.id, "practice_id": practice.id, **fields}
        _event(session, BASE + dt.timedelta(minutes=n), action, **fields)
    session.flush()

    texts = [line.text for line in activity_page(uow, user).lines]
    parent_name = parent.display_name
    assert texts == [
        "Your account or record was updated",
        "Someone entered the wrong password for your account",
        "A repeat prescription request was sent to the GP practice",
        f"{parent_name} (acting for you) viewed your allergies and adverse reactions",
        # Two staff views on one day at one practice read as one line.
        f"{practice.name} staff looked at your request to link your account and your online access settings",
        "You tried to open a page you do not have access to",
        "You printed or saved your GP record",
        "You viewed your GP record",
    ]
    assert not any("." in text.split()[-1] or "_" in text for text in texts), "no raw event names"


def test_a_proxy_sees_whose_record_they_looked_at(app_ctx: Any, uow: Any) -> None:
    from patient_online.extensions import db

    session = db.session
    parent = _user(session, PARENT)
    child_link = session.scalar(select(ProxyLink).where(ProxyLink.proxy_user_id == parent.id))
    child = session.get(Patient, child_link.patient_id)
    _event(
        session,
        dt.datetime.now(dt.UTC),
        "record.viewed",
        actor_user_id=parent.id,
        actor_role="proxy",
        patient_id=child.id,
        detail={"section": "test-results"},
    )
    _event(
        session,
        dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1),
        "appointment.booked",
        actor_user_id=parent.id,
        actor_role="proxy",
        patient_id=child.id,
    )
    session.flush()
    texts = [line.text for line in activity_page(uow, parent).lines[:2]]
    assert texts == [f"You booked an appointment for {child.full_name}", f"You viewed {child.full_name}'s test results"]


def test_the_activity_page_links_back_home(client: Any, sign_in: Any) -> None:
    sign_in(PATIENT)
    page = client.get("/account/activity").get_data(as_text=True)
    assert re.search(r'class="nhsuk-back-link"[^>]*href="/home"', page)
    assert "access.refused" not in page and "access refused" not in page
