"""Subject access: a patient downloads everything the gateway holds about them; reception can produce the same."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from typing import Any

from sqlalchemy import select

from patient_online.adapters.demo.seed import _totp_secret
from patient_online.models import (
    AccountLink,
    AppointmentReminder,
    AuditEvent,
    BookingRecord,
    ContactPreference,
    LinkageLetter,
    LinkRequest,
    Notification,
    Patient,
    PrescriptionOrder,
    ProxyLink,
    User,
    WaitlistEntry,
)

PARENT = "parent.y02001@example.com"
OTHER = "patient2.y02001@example.com"
RECEPTION = "reception.y02001@example.com"
OTHER_RECEPTION = "reception.y02002@example.com"
LETTER_KEY_HASH = "letter-key-hash-never-shown"


def _own_patient(session: Any, email: str) -> tuple[User, Patient]:
    user = session.scalar(select(User).where(User.email == email))
    patient = session.scalar(select(Patient).join(AccountLink).where(AccountLink.user_id == user.id))
    return user, patient


def _give_them_one_of_everything(app: Any) -> dict[str, Any]:
    """Rows of each kind the gateway keeps, for the parent (who acts for a child) and their own record."""
    with app.app_context():
        from patient_online.extensions import db

        session = db.session
        user, patient = _own_patient(session, PARENT)
        other, _ = _own_patient(session, OTHER)
        now = dt.datetime.now(dt.UTC)
        session.add_all(
            [
                LinkageLetter(
                    patient_id=patient.id,
                    key_hash=LETTER_KEY_HASH,
                    issued_by_id=other.id,
                    issued_at=now,
                    expires_at=now + dt.timedelta(days=28),
                ),
                LinkRequest(
                    user_id=user.id,
                    practice_id=patient.practice_id,
                    nhs_number=patient.nhs_number,
                    given_name=patient.given_name,
                    family_name=patient.family_name,
                    date_of_birth=patient.date_of_birth,
                    postcode="KB1 4RT",
                    status="approved",
                ),
                ProxyLink(
                    proxy_user_id=other.id,
                    patient_id=patient.id,
                    relationship_text="Neighbour",
                    basis="consent",
                    status="active",
                    safeguarding_notes="SAFEGUARDING-NOTE kept by the practice",
                ),
                BookingRecord(
                    practice_id=patient.practice_id, appointment_ref="APPT-1", patient_id=patient.id, action="booked"
                ),
                PrescriptionOrder(
                    patient_id=patient.id,
                    ordered_by_id=user.id,
                    idempotency_key="subject-access-order",
                    item_ids=["1"],
                    item_names=["Salbutamol 100mcg inhaler"],
                ),
                Notification(to=user.email, template="test", subject="Your appointment", body="See you soon"),
                AppointmentReminder(
                    practice_id=patient.practice_id,
                    appointment_ref="APPT-1",
                    patient_id=patient.id,
                    hours_before=24,
                    starts_at=now + dt.timedelta(days=1),
                ),
                ContactPreference(
                    user_id=user.id, mobile="+447700900123", mobile_verified_at=now, channels={"appointments": "both"}
                ),
                WaitlistEntry(
                    practice_id=patient.practice_id,
                    patient_id=patient.id,
                    user_id=user.id,
                    weekdays=[0, 2],
                    parts=["morning"],
                    until=now.date() + dt.timedelta(days=14),
                    status="ended",
                    ended_at=now,
                ),
            ]
        )
        session.commit()
        return {
            "user_id": user.id,
            "patient_id": patient.id,
            "password_hash": user.password_hash,
            "totp": user.totp_secret,
        }


def _unzipped(response: Any) -> dict[str, str]:
    assert response.status_code == 200, response.status_code
    assert response.mimetype == "application/zip"
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "no-store"
    with zipfile.ZipFile(io.BytesIO(response.get_data())) as archive:
        return {name: archive.read(name).decode() for name in archive.namelist()}


def _nothing_secret_or_withheld(files: dict[str, str], held: dict[str, Any], email: str) -> None:
    everything = "\n".join(files.values())
    for secret in (held["password_hash"], held["totp"], _totp_secret(email), LETTER_KEY_HASH):
        assert secret and secret not in everything
    for withheld in ("CONFIDENTIAL-", "THIRDPARTY-", "SAFEGUARDING-NOTE"):
        assert withheld not in everything
    assert "password_hash" not in everything and "key_hash" not in everything and "totp_secret" not in everything


def test_a_patient_downloads_every_kind_of_data_and_nothing_secret_or_withheld(
    app: Any, client: Any, sign_in: Any, session: Any
) -> None:
    held = _give_them_one_of_everything(app)
    sign_in(PARENT)
    page = client.get("/account/my-data")
    assert page.status_code == 200 and "Download your data" in page.get_data(as_text=True)
    files = _unzipped(client.submit("/account/my-data"))

    assert {"summary.html", "data.json", "json/activity.json"} <= set(files)
    data = json.loads(files["data.json"])
    empty = [kind for kind, rows in data.items() if not rows]
    assert empty == [], f"the demo parent should have data of every kind: {empty}"
    assert data["accounts"][0]["email"] == PARENT
    assert data["identity_checks"][0]["method"] == "documents"
    assert data["proxy_access_you_have"][0]["status"] == "active"  # the child they act for
    assert data["proxy_access_to_you"][0]["relationship"] == "Neighbour"
    assert data["prescription_requests"][0]["medicines"] == ["Salbutamol 100mcg inhaler"]
    assert data["contact_preferences"][0]["mobile"] == "+447700900123"
    assert data["appointment_reminders"][0]["hours_before"] == 24
    assert any(row["what"] == "sign in" for row in data["sign_in_history"])
    summary = files["summary.html"]
    assert "<h1>Your data held by the GP online service</h1>" in summary and "Salbutamol" in summary
    _nothing_secret_or_withheld(files, held, PARENT)

    recorded = session.scalars(select(AuditEvent).where(AuditEvent.action == "subject_access.downloaded")).all()
    assert [(e.actor_user_id, e.subject_user_id, e.detail["by"]) for e in recorded] == [
        (held["user_id"], held["user_id"], "patient")
    ]


def test_reception_produces_the_download_at_the_desk_and_it_is_recorded(
    app: Any, client: Any, sign_in: Any, session: Any
) -> None:
    held = _give_them_one_of_everything(app)
    sign_in(RECEPTION)
    url = f"/reception/patients/{held['patient_id']}/data"
    assert client.get(url).status_code == 200
    files = _unzipped(client.submit(url))
    data = json.loads(files["data.json"])
    assert data["accounts"][0]["email"] == PARENT
    assert data["gp_records"][0]["nhs_number"]
    _nothing_secret_or_withheld(files, held, PARENT)
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "subject_access.produced"))
    assert event is not None and event.patient_id == held["patient_id"] and event.actor_role == "receptionist"


def test_reception_of_another_practice_cannot_produce_it(app: Any, client: Any, sign_in: Any) -> None:
    held = _give_them_one_of_everything(app)
    sign_in(OTHER_RECEPTION)
    url = f"/reception/patients/{held['patient_id']}/data"
    token = client.csrf_token("/reception/")
    assert client.post(url, data={"csrf_token": token}).status_code == 404
