"""The uptake report: figures checked against the seeded demo data, counted here the slow, obvious way."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from sqlalchemy import select

from patient_online import wiring
from patient_online.adapters.demo.models import DemoAppointment, DemoPatient, DemoSlot
from patient_online.domain.access import FLAG_DECLINED, FLAG_ENHANCED_REVIEW, FLAG_REVIEW_NOT_INDICATED, Service
from patient_online.domain.controls import SwitchSetting
from patient_online.extensions import db
from patient_online.models import AccountLink, AuditEvent, LinkRequest, Patient, Practice, User, Verification
from patient_online.services import controls, reports
from patient_online.services.access import today
from tests.fakes import FakeClinicalSystem

MANAGER = "manager.y02001@example.com"


def _practice(session: Any, ods: str = "Y02001") -> Practice:
    return session.scalar(select(Practice).where(Practice.ods_code == ods))  # type: ignore[no-any-return]


def _manager(session: Any) -> User:
    return session.scalar(select(User).where(User.email == MANAGER))  # type: ignore[no-any-return]


def _expected_clinical(session: Any, practice: Practice, period: Any) -> dict[str, int]:
    start, end = reports._bounds(period)
    bookings = online = slots = online_slots = 0
    for slot in session.scalars(select(DemoSlot).where(DemoSlot.practice_ods == practice.ods_code)):
        if start <= slot.start < end:
            slots += 1
            online_slots += slot.slot_type in practice.online_slot_types
    slot_ids = {s.id for s in session.scalars(select(DemoSlot).where(DemoSlot.practice_ods == practice.ods_code))}
    for appointment in session.scalars(select(DemoAppointment)):
        if appointment.slot_id in slot_ids and start <= appointment.booked_at < end:
            bookings += 1
            online += appointment.booked_online
    patients = list(session.scalars(select(DemoPatient).where(DemoPatient.practice_ods == practice.ods_code)))
    return {
        "list_size": len(patients),
        "bookings": bookings,
        "online_bookings": online,
        "slots": slots,
        "online_type_slots": online_slots,
        "declined": sum(any(f["code"] == FLAG_DECLINED for f in p.flags) for p in patients),
        "review": sum(_review_in_force(p.flags) for p in patients),
    }


def _review_in_force(flags: list[dict[str, str]]) -> bool:
    """A 104 counts while no 'not indicated' (106) is dated after the latest 104 (a tie keeps the review)."""
    indicated = [f["date"] for f in flags if f["code"] == FLAG_ENHANCED_REVIEW]
    lifted = [f["date"] for f in flags if f["code"] == FLAG_REVIEW_NOT_INDICATED]
    return bool(indicated) and not any(day > max(indicated) for day in lifted)


def test_figures_match_the_seeded_demo_data(app_ctx: Any, session: Any, uow: Any) -> None:
    practice = _practice(session)
    period = reports.default_period(today())
    report = reports.uptake_report(uow, practice, _manager(session), period)
    expected = _expected_clinical(session, practice, period)

    assert report.clinical is not None
    assert report.clinical.list_size == expected["list_size"] == 64
    assert report.clinical.bookings == expected["bookings"] > 0
    assert report.clinical.online_bookings == expected["online_bookings"] > 0
    assert report.clinical.slots == expected["slots"] > 0
    assert report.clinical.online_type_slots == expected["online_type_slots"] > 0
    assert report.flag_counts == {FLAG_DECLINED: expected["declined"], FLAG_ENHANCED_REVIEW: expected["review"]}
    # Two demo patients have a 104; one was lifted by a later 106, so one review is in force.
    assert report.flag_counts == {FLAG_DECLINED: 1, FLAG_ENHANCED_REVIEW: 1}

    links = [
        link
        for link in session.scalars(select(AccountLink))
        if link.patient.practice_id == practice.id and link.status == "active"
    ]
    assert report.registered == len({link.patient_id for link in links}) == 3
    assert report.registered_percent == round(100 * 3 / 64, 1)
    checks = [
        v
        for v in session.scalars(select(Verification))
        if session.get(Patient, v.patient_id).practice_id == practice.id
    ]
    assert report.verified == len({v.patient_id for v in checks}) == 3
    assert report.by_method == [("Identity documents", 3)]
    assert report.proxies_active == 1
    assert report.bookable_percent == round(100 * expected["online_type_slots"] / expected["slots"], 1)
    assert report.online_booking_percent == round(100 * expected["online_bookings"] / expected["bookings"], 1)
    assert [b.target for b in report.benchmarks] == [10, 20, 25]
    assert report.shortfalls == []


def test_use_of_each_service_and_waiting_verifications(app_ctx: Any, session: Any, uow: Any) -> None:
    practice = _practice(session)
    patient = session.scalar(select(Patient).where(Patient.practice_id == practice.id).order_by(Patient.id))
    now = dt.datetime.now(dt.UTC)
    for action in ("record.viewed", "record.viewed", "appointment.booked"):
        session.add(AuditEvent(action=action, patient_id=patient.id, at=now, detail={}))
    session.add(AuditEvent(action="record.viewed", patient_id=patient.id, at=now - dt.timedelta(days=60), detail={}))
    user = session.scalar(select(User).where(User.email == "newpatient.y02001@example.com"))
    for days in (0, 1, 3, 10, 30):
        session.add(
            LinkRequest(
                user_id=user.id,
                practice_id=practice.id,
                nhs_number="9990000000",
                given_name="A",
                family_name="B",
                date_of_birth=dt.date(1990, 1, 1),
                postcode="KB1 4RT",
                created_at=now - dt.timedelta(days=days, minutes=1),
            )
        )
    session.commit()
    report = reports.uptake_report(uow, practice, _manager(session), reports.default_period(today()))
    assert report.using == {Service.APPOINTMENTS: 1, Service.PRESCRIPTIONS: 0, Service.RECORD: 1}
    assert report.gateway_bookings == 1
    assert report.pending == 5
    assert [(b.label, b.count) for b in report.pending_bands] == [
        ("Under 2 days", 2),
        ("2 to 7 days", 1),
        ("Over 7 days", 2),
    ]
    assert report.pending_oldest_days == 30


def test_report_page_chart_and_csv_agree(app: Any, client: Any, sign_in: Any, uow: Any) -> None:
    sign_in(MANAGER)
    page = client.get("/manage/reports")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    with app.app_context():
        report = reports.uptake_report(
            uow, _practice(db.session), _manager(db.session), reports.default_period(today())
        )
        rows = reports.report_rows(report)
    assert "<svg" in html and 'role="img"' in html and "style=" not in html
    assert f"{report.registered_percent:g}%" in html
    assert "Benchmarks: 10% and 20%" in html and "Benchmark: 25%" in html
    csv_response = client.get("/manage/reports.csv")
    assert csv_response.status_code == 200
    assert csv_response.mimetype == "text/csv"
    assert "attachment" in csv_response.headers["Content-Disposition"]
    table = list(csv.reader(io.StringIO(csv_response.get_data(as_text=True))))
    assert table[0] == ["Practice", "Riverside Medical Centre (Y02001)"]
    assert [tuple(r) for r in table[4:]] == rows
    figures = {r[0]: r[1] for r in table[4:]}
    assert figures["Patients on the practice list"] == "64"
    assert figures["Patients registered for online services"] == "3"
    with app.app_context():
        viewed = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "practice.report_viewed")).all()
    assert {e.detail["format"] for e in viewed} == {"html", "csv"}


def test_period_is_checked(client: Any, sign_in: Any) -> None:
    sign_in(MANAGER)
    day = today()
    later = day + dt.timedelta(days=3)

    def query(start: dt.date, end: dt.date) -> str:
        return (
            f"/manage/reports?start-day={start.day}&start-month={start.month}&start-year={start.year}"
            f"&end-day={end.day}&end-month={end.month}&end-year={end.year}"
        )

    future = client.get(query(day, later))
    assert future.status_code == 400 and "End date must be today or in the past" in future.get_data(as_text=True)
    backwards = client.get(query(day, day - dt.timedelta(days=2)))
    assert "Start date must be the same as or before the end date" in backwards.get_data(as_text=True)
    long = client.get(query(day - dt.timedelta(days=800), day))
    assert "366 days or fewer" in long.get_data(as_text=True)
    one_day = client.get(query(day, day))
    assert one_day.status_code == 200 and "(1 day)" in one_day.get_data(as_text=True)


def test_services_below_contract_show_on_the_report(app: Any, client: Any, sign_in: Any, uow: Any) -> None:
    with app.app_context():
        controls.set_switch(
            uow,
            _practice(db.session),
            _manager(db.session),
            SwitchSetting(Service.APPOINTMENTS, False, "Call us", "Telephony outage", today() + dt.timedelta(days=7)),
        )
    sign_in(MANAGER)
    html = client.get("/manage/reports").get_data(as_text=True)
    assert "Below what the GP contract requires" in html and "Telephony outage" in html
    assert "Telephony outage" in client.get("/manage/reports.csv").get_data(as_text=True)
    assert "Telephony outage" in client.get("/manage/").get_data(as_text=True)


def test_other_clinical_systems_say_figures_are_not_available(app: Any, client: Any, sign_in: Any) -> None:
    wiring.override_clinical(app, "Y02001", FakeClinicalSystem())
    sign_in(MANAGER)
    html = client.get("/manage/reports").get_data(as_text=True)
    assert "not available from this clinical system" in html.lower()
    assert client.get("/manage/reports.csv").status_code == 200


def test_reception_cannot_see_the_report(client: Any, sign_in: Any) -> None:
    sign_in("reception.y02001@example.com")
    assert client.get("/manage/reports").status_code == 403
    assert client.get("/manage/reports.csv").status_code == 403


def test_gateway_counts_only_reviews_in_force(app_ctx: Any, session: Any, uow: Any) -> None:
    """Without the clinical system's figures the gateway counts its own codes: a lifted review is not counted."""
    practice = _practice(session)
    patients = list(session.scalars(select(Patient).where(Patient.practice_id == practice.id).order_by(Patient.id)))
    assert len(patients) >= 3
    for patient in patients:
        patient.flags = []
    patients[0].flags = [{"code": FLAG_ENHANCED_REVIEW, "date": "2025-05-02", "level_then": "full"}]
    patients[1].flags = [
        {"code": FLAG_ENHANCED_REVIEW, "date": "2024-11-04"},
        {"code": FLAG_REVIEW_NOT_INDICATED, "date": "2025-01-20"},
    ]
    patients[2].flags = [
        {"code": FLAG_REVIEW_NOT_INDICATED, "date": "2024-01-20"},
        {"code": FLAG_ENHANCED_REVIEW, "date": "2024-11-04"},
        {"code": FLAG_DECLINED, "date": "2024-02-12"},
    ]
    session.commit()
    wiring.override_clinical(app_ctx, "Y02001", FakeClinicalSystem())
    report = reports.uptake_report(uow, practice, _manager(session), reports.default_period(today()))
    assert report.clinical is None
    assert report.flag_counts == {FLAG_DECLINED: 1, FLAG_ENHANCED_REVIEW: 2}
