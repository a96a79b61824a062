"""What the practice's system said, shown truthfully on the patient's pages: vaccinations not given, sections the
practice recorded as empty, every appointment status, clinician and place; and changing an appointment's reason
through the pages (a check, then a confirmation), with CSRF on."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from patient_online import wiring
from patient_online.domain.appointments import Appointment, AppointmentStatus, Clinician, DeliveryMode, Slot
from patient_online.domain.errors import NoPatientConsent, PatientNotFound, PracticeNotAllowed
from patient_online.domain.patients import PatientRef
from patient_online.domain.record import RecordEntry, RecordExtract, Section, SectionNote
from patient_online.models import AccountLink, AuditEvent, Patient, Practice, User
from tests.fakes import FakeClinicalSystem

PATIENT = "patient.y02001@example.com"
NOW = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
GP = Clinician("C1", "Dr Ada Byron", "GP")


def _patient(app: Any) -> Patient:
    from patient_online.extensions import db

    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == PATIENT))
        link = db.session.scalar(select(AccountLink).where(AccountLink.user_id == user.id))
        found = db.session.get(Patient, link.patient_id)
        assert found is not None
        db.session.expunge(found)
        return found


def _ref(whose: Patient) -> PatientRef:
    return PatientRef("Y02001", whose.nhs_number, "p1")


def _set_practice(app: Any, **values: Any) -> None:
    from patient_online.extensions import db

    with app.app_context():
        row = db.session.scalar(select(Practice).where(Practice.ods_code == "Y02001"))
        for key, value in values.items():
            setattr(row, key, value)
        db.session.commit()


@pytest.fixture
def fake(app: Any) -> Iterator[FakeClinicalSystem]:
    system = FakeClinicalSystem()
    wiring.override_clinical(app, "Y02001", system)
    yield system
    wiring.override_clinical(app, "Y02001", None)


def _set_level(app: Any, level: str) -> None:
    from patient_online.extensions import db

    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == PATIENT))
        link = db.session.scalar(select(AccountLink).where(AccountLink.user_id == user.id))
        row = db.session.get(Patient, link.patient_id)
        assert row is not None
        row.record_level = level
        db.session.commit()


# The record ------------------------------------------------------------------------------------------------
def test_vaccination_not_given_and_empty_allergy_list_are_shown_as_recorded(
    app: Any, client: Any, sign_in: Any, fake: FakeClinicalSystem
) -> None:
    whose = _patient(app)
    _set_level(app, "detailed")
    fake.record[whose.nhs_number] = RecordExtract(
        entries=[
            RecordEntry("i1", Section.IMMUNISATIONS, dt.date(2024, 10, 1), "Seasonal influenza vaccination"),
            RecordEntry(
                "i2",
                Section.IMMUNISATIONS,
                dt.date(2024, 11, 5),
                "Pneumococcal vaccination",
                not_given=True,
                not_given_reason="Patient declined",
            ),
        ],
        section_notes=[
            SectionNote(Section.ALLERGIES, empty_reason="No known allergies"),
            SectionNote(Section.PROBLEMS, empty_reason="Nothing to show: nothing has been recorded.", note="Moved"),
        ],
    )
    sign_in(PATIENT)
    vaccinations = html.unescape(client.get("/record/immunisations").get_data(as_text=True))
    assert "Seasonal influenza vaccination" in vaccinations and "Given" in vaccinations
    assert "Not given" in vaccinations and "Reason: Patient declined" in vaccinations
    allergies = client.get("/record/allergies").get_data(as_text=True)
    assert "No known allergies" in allergies
    assert "There are no allergies or adverse reactions in the record you can see online." not in allergies
    problems = html.unescape(client.get("/record/problems").get_data(as_text=True))
    assert "Nothing to show: nothing has been recorded." in problems
    assert "Your GP practice's system says: Moved" in problems
    overview = client.get("/record").get_data(as_text=True)
    assert "No known allergies" in overview


# Appointments ---------------------------------------------------------------------------------------------
def _appointment(aid: str, hours: float, status: AppointmentStatus, location: str = "Riverside Surgery") -> Appointment:
    start = NOW + dt.timedelta(hours=hours)
    slot = Slot(
        f"s-{aid}", start, start + dt.timedelta(minutes=10), "GP appointment", GP, DeliveryMode.FACE_TO_FACE, location
    )
    return Appointment(aid, slot, status, reason="Sore knee")


def test_every_status_is_labelled_and_entered_in_error_is_never_shown(
    app: Any, client: Any, sign_in: Any, fake: FakeClinicalSystem
) -> None:
    whose = _patient(app)
    owner = _ref(whose)
    for key, appointment in {
        "k1": _appointment("A-booked", 72, AppointmentStatus.BOOKED),
        "k2": _appointment("A-pending", 96, AppointmentStatus.PENDING),
        "k3": _appointment("A-error", 120, AppointmentStatus.ENTERED_IN_ERROR, location="Error Hall"),
        "k4": _appointment("A-dna", -72, AppointmentStatus.DID_NOT_ATTEND),
        "k5": _appointment("A-done", -96, AppointmentStatus.FULFILLED),
    }.items():
        fake.appointments[key] = (owner, appointment)
    sign_in(PATIENT)
    page = html.unescape(client.get("/appointments").get_data(as_text=True))
    assert "Waiting for the practice to confirm" in page
    assert "Did not attend" in page and "Attended" in page
    assert "Error Hall" not in page and "A-error" not in page
    assert "With: Dr Ada Byron (GP)" in page and "Where: Riverside Surgery" in page
    assert client.get("/appointments/A-error").status_code == 404
    pending = html.unescape(client.get("/appointments/A-pending").get_data(as_text=True))
    assert "has not confirmed it yet" in pending and "Change the reason" not in pending


def test_changing_the_reason_through_the_pages(app: Any, client: Any, sign_in: Any, fake: FakeClinicalSystem) -> None:
    _set_practice(app, cancellation_allowed=True, cancellation_cutoff_hours=24)
    whose = _patient(app)
    fake.appointments["k1"] = (_ref(whose), _appointment("A1", 72, AppointmentStatus.BOOKED))
    sign_in(PATIENT)
    listing = client.get("/appointments").get_data(as_text=True)
    assert "/appointments/A1/reason" in listing and "Change the reason" in listing
    form = client.get("/appointments/A1/reason").get_data(as_text=True)
    assert "Change the reason for your appointment" in form and "Sore knee" in form

    empty = client.submit("/appointments/A1/reason", {"reason": ""}, page="/appointments/A1/reason")
    assert empty.status_code == 400 and "Enter the reason for your appointment" in empty.get_data(as_text=True)
    too_long = client.submit("/appointments/A1/reason", {"reason": "x" * 101}, page="/appointments/A1/reason")
    assert too_long.status_code == 400 and "100 characters or fewer" in too_long.get_data(as_text=True)

    check = client.submit("/appointments/A1/reason", {"reason": "Knee and back"}, page="/appointments/A1/reason")
    text = html.unescape(check.get_data(as_text=True))
    assert check.status_code == 200 and "Check the new reason" in text and "Knee and back" in text
    assert fake.list_appointments(_ref(whose), NOW)[0].reason == "Sore knee"  # nothing changed yet
    edit = client.submit(
        "/appointments/A1/reason", {"reason": "Knee and back", "confirmed": "edit"}, page="/appointments/A1/reason"
    )
    assert edit.status_code == 200 and ">Knee and back</textarea>" in edit.get_data(as_text=True)
    done = client.submit(
        "/appointments/A1/reason", {"reason": "Knee and back", "confirmed": "yes"}, page="/appointments/A1/reason"
    )
    assert done.status_code == 302 and done.headers["Location"].endswith("/appointments/A1")
    assert fake.list_appointments(_ref(whose), NOW)[0].reason == "Knee and back"
    shown = html.unescape(client.get("/appointments/A1").get_data(as_text=True))
    assert "The reason for your appointment on" in shown and "has been changed" in shown

    from patient_online.extensions import db

    with app.app_context():
        actions = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "appointment.amended")).all()
        assert len(actions) == 1 and "back" not in str(actions[0].detail).lower()


def test_changing_the_reason_inside_the_cutoff_is_a_clear_refusal(
    app: Any, client: Any, sign_in: Any, fake: FakeClinicalSystem
) -> None:
    _set_practice(app, cancellation_allowed=True, cancellation_cutoff_hours=48)
    whose = _patient(app)
    fake.appointments["k1"] = (_ref(whose), _appointment("A1", 30, AppointmentStatus.BOOKED))
    sign_in(PATIENT)
    page = client.get("/appointments/A1/reason")
    assert page.status_code == 409
    assert "less than 2 days away" in html.unescape(page.get_data(as_text=True))
    posted = client.submit("/appointments/A1/reason", {"reason": "New", "confirmed": "yes"}, page="/appointments/A1")
    assert posted.status_code == 409 and "amend" not in fake.calls
    assert client.get("/appointments/nope/reason").status_code == 404


def test_the_demo_system_changes_the_reason(app: Any, client: Any, sign_in: Any) -> None:
    from tests.integration.test_appointments import book_through_pages

    _set_practice(app, cancellation_allowed=True, cancellation_cutoff_hours=0)
    sign_in(PATIENT)
    appointment_id = book_through_pages(client, "First reason")
    url = f"/appointments/{appointment_id}/reason"
    done = client.submit(url, {"reason": "Second reason", "confirmed": "yes"}, page=url)
    assert done.status_code == 302, done.get_data(as_text=True)
    page = client.get(f"/appointments/{appointment_id}").get_data(as_text=True)
    assert "Second reason" in page and "First reason" not in page
    assert re.search(r"has been changed", page)


@pytest.mark.parametrize(
    ("error", "status", "words"),
    [
        (PatientNotFound(), 404, "could not find your record"),
        (PracticeNotAllowed(), 403, "has not allowed this"),
        (NoPatientConsent(), 403, "not to be shared"),
    ],
)
def test_a_refusal_from_the_practice_system_is_explained_on_the_record_pages(
    client: Any, sign_in: Any, fake: FakeClinicalSystem, error: Exception, status: int, words: str
) -> None:
    sign_in(PATIENT)
    for url in ("/record", "/record/allergies", "/record/download"):
        fake.fail_next["get_record"] = error
        response = client.get(url)
        assert response.status_code == status, url
        assert words in html.unescape(response.get_data(as_text=True)), url


def test_the_demo_system_records_no_known_allergies_and_a_vaccination_not_given(
    app: Any, client: Any, sign_in: Any
) -> None:
    from patient_online.adapters.demo.models import DemoPatient, DemoRecordEntry
    from patient_online.extensions import db

    whose = _patient(app)
    _set_level(app, "detailed")
    with app.app_context():
        demo = db.session.scalar(
            select(DemoPatient).where(DemoPatient.practice_ods == "Y02001", DemoPatient.nhs_number == whose.nhs_number)
        )
        assert demo is not None
        allergies = db.session.scalars(
            select(DemoRecordEntry).where(DemoRecordEntry.patient_id == demo.id, DemoRecordEntry.section == "allergies")
        ).all()
        for row in allergies:
            db.session.delete(row)
        db.session.add_all(
            [
                DemoRecordEntry(
                    id="nka-1",
                    patient_id=demo.id,
                    section="allergies",
                    date=dt.date(2020, 1, 2),
                    term="No known allergy",
                    code="716186003",
                    status="active",
                ),
                DemoRecordEntry(
                    id="imm-ng-1",
                    patient_id=demo.id,
                    section="immunisations",
                    date=dt.date(2024, 11, 5),
                    term="Shingles vaccination",
                    code="722215002",
                    status="not-given",
                ),
            ]
        )
        db.session.commit()
    sign_in(PATIENT)
    page = html.unescape(client.get("/record/allergies").get_data(as_text=True))
    assert "No known allergies" in page and "No known allergy</strong>" not in page
    vaccinations = html.unescape(client.get("/record/immunisations").get_data(as_text=True))
    assert "Shingles vaccination" in vaccinations and "Not given" in vaccinations
