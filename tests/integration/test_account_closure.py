"""Closing an online account: by the patient, or by reception with a reason; sessions end and links end."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from patient_online.adapters.demo.seed import DEMO_PASSWORD
from patient_online.models import AccountClosure, AccountLink, AuditEvent, Notification, Patient, ProxyLink, User

PARENT = "parent.y02001@example.com"
OTHER = "patient2.y02001@example.com"
RECEPTION = "reception.y02001@example.com"
OTHER_RECEPTION = "reception.y02002@example.com"


def _ids(app: Any) -> dict[str, int]:
    """The parent's account and own record, and a neighbour who acts for the parent (added here)."""
    with app.app_context():
        from patient_online.extensions import db

        session = db.session
        parent = session.scalar(select(User).where(User.email == PARENT))
        other = session.scalar(select(User).where(User.email == OTHER))
        patient = session.scalar(select(Patient).join(AccountLink).where(AccountLink.user_id == parent.id))
        session.add(
            ProxyLink(
                proxy_user_id=other.id,
                patient_id=patient.id,
                relationship_text="Neighbour",
                basis="consent",
                status="active",
            )
        )
        session.commit()
        return {"parent": parent.id, "patient": patient.id, "other": other.id}


def test_a_patient_closes_their_own_account(app: Any, client: Any, sign_in: Any, session: Any) -> None:
    ids = _ids(app)
    sign_in(PARENT)
    page = client.get("/account/close").get_data(as_text=True)
    assert "You cannot undo this" in page and "What we keep" in page
    closed = client.submit("/account/close")
    assert closed.status_code == 200
    assert "Your online account is closed" in closed.get_data(as_text=True)

    assert client.get("/home").status_code == 302, "signed out"
    session.expire_all()
    user = session.get(User, ids["parent"])
    assert not user.active
    assert session.scalars(select(AccountLink).where(AccountLink.user_id == user.id)).all() == []
    acting = session.scalars(select(ProxyLink).where(ProxyLink.proxy_user_id == user.id)).all()
    assert acting and {link.status for link in acting} == {"ended"}, "no longer acts for their child"
    neighbour = session.scalar(select(ProxyLink).where(ProxyLink.patient_id == ids["patient"]))
    assert neighbour.status == "active", "the neighbour's access rests on its own basis"
    told = {n.to for n in session.scalars(select(Notification).where(Notification.template.like("account_closed%")))}
    assert {PARENT, OTHER} <= told
    closure = session.scalar(select(AccountClosure).where(AccountClosure.user_id == user.id))
    assert closure is not None and closure.closed_by_role == "patient"
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "account.closed"))
    assert event is not None and event.subject_user_id == user.id and event.actor_user_id == user.id

    again = client.submit("/login", {"email": PARENT, "password": DEMO_PASSWORD}, page="/login")
    assert again.status_code != 302, "a closed account cannot sign in, even with the right password"


def test_reception_closes_an_account_with_a_reason(app: Any, client: Any, sign_in: Any, session: Any) -> None:
    ids = _ids(app)
    sign_in(RECEPTION)
    url = f"/reception/patients/{ids['patient']}/accounts/{ids['parent']}/close"
    page = client.get(url)
    assert page.status_code == 200 and PARENT in page.get_data(as_text=True)
    missing = client.submit(url, {"reason": ""})
    assert missing.status_code == 400 and "Enter why the account is being closed" in missing.get_data(as_text=True)
    done = client.submit(url, {"reason": "Patient asked at the desk"})
    assert done.status_code == 302
    session.expire_all()
    assert not session.get(User, ids["parent"]).active
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "account.closed"))
    assert event.actor_role == "receptionist" and event.detail["reason"] == "Patient asked at the desk"
    assert event.practice_id is not None
    assert client.get(url).status_code == 404, "no longer linked: nothing to close"


def test_reception_of_another_practice_cannot_close_it(app: Any, client: Any, sign_in: Any) -> None:
    ids = _ids(app)
    sign_in(OTHER_RECEPTION)
    url = f"/reception/patients/{ids['patient']}/accounts/{ids['parent']}/close"
    assert client.get(url).status_code == 404
    token = client.csrf_token("/reception/")
    assert client.post(url, data={"csrf_token": token, "reason": "x"}).status_code == 404
