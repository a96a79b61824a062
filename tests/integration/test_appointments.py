"""Online appointments: the service rules (9-11) against the demo system and a fake, then every journey
through the Flask client with CSRF on."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import unquote

import pytest
from icalendar import Calendar
from sqlalchemy import func, select, update

from patient_online import wiring
from patient_online.adapters.demo.models import DemoAppointment, DemoSlot
from patient_online.domain.appointments import (
    Appointment,
    AppointmentStatus,
    BookingFailed,
    BookingLimitReached,
    CancellationQueued,
    CancellationRefused,
    Clinician,
    DeliveryMode,
    ReasonTooLong,
    Slot,
)
from patient_online.domain.errors import ClinicalSystemUnavailable, NotFound, ServiceOff, SlotUnavailable
from patient_online.extensions import db
from patient_online.models import AuditEvent, Notification, Practice, User
from patient_online.services import appointments as service
from patient_online.services.access import Acting, acting_for
from patient_online.services.unit_of_work import SystemClock
from tests.fakes import FakeClinicalSystem

PATIENT = "patient.y02001@example.com"
PATIENT2 = "patient2.y02001@example.com"
PARENT = "parent.y02001@example.com"
OTHER_PRACTICE_PATIENT = "patient.y02002@example.com"
PHONE = "01632 960 101"
SLOT_LINK = re.compile(r'href="/appointments/slots/([^"?]+)\?at=([^"]+)"')


# Helpers -------------------------------------------------------------------------------------------------
def acting_as(session: Any, email: str, child: bool = False) -> Acting:
    user = session.scalar(select(User).where(User.email == email))
    if child:
        from patient_online.services.access import active_proxy_links

        link = active_proxy_links(session, user)[0]
        current = acting_for(session, user, link.patient_id)
    else:
        current = acting_for(session, user, None)
    assert current is not None
    return current


def practice(session: Any, ods: str = "Y02001") -> Practice:
    found: Practice | None = session.scalar(select(Practice).where(Practice.ods_code == ods))
    assert found is not None
    return found


def free_slots(uow: Any, current: Acting, count: int = 1, **wanted: Any) -> list[Slot]:
    """Free slots the patient may book, across the whole horizon."""
    slots: list[Slot] = []
    page = service.find_slots(uow, current, service.SlotFilter(**wanted))
    while True:
        slots += [s for d in page.days for s in d.slots]
        if len(slots) >= count or page.next_start is None:
            break
        page = service.find_slots(uow, current, service.SlotFilter(start_day=page.next_start, **wanted))
    assert len(slots) >= count, "the demo seed should leave free slots"
    return slots[:count]


def events(session: Any, action: str, patient_id: int | None = None) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.action == action)
    if patient_id is not None:
        stmt = stmt.where(AuditEvent.patient_id == patient_id)
    return list(session.scalars(stmt.order_by(AuditEvent.id)))


def notifications(session: Any, to: str) -> list[Notification]:
    return list(session.scalars(select(Notification).where(Notification.to == to).order_by(Notification.id)))


NOW = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
GP = Clinician("C1", "Dr Ada Byron", "GP")
NURSE = Clinician("C2", "Nurse Mary Seacole", "Practice nurse")


def fake_slot(
    sid: str, hours: float, slot_type: str = "GP appointment", mode: DeliveryMode = DeliveryMode.FACE_TO_FACE
) -> Slot:
    start = NOW + dt.timedelta(hours=hours)
    clinician = NURSE if slot_type.startswith("Nurse") else GP
    return Slot(sid, start, start + dt.timedelta(minutes=10), slot_type, clinician, mode, "Riverside Medical Centre")


@pytest.fixture
def fake(app: Any) -> Any:
    system = FakeClinicalSystem()
    for s in (
        fake_slot("soon", 1),  # inside the 2-hour lead time
        fake_slot("good", 26),
        fake_slot("good-phone", 27, mode=DeliveryMode.TELEPHONE),
        fake_slot("nurse", 28, "Nurse appointment"),
        fake_slot("baby", 29, "Baby clinic"),  # not bookable online
        fake_slot("later", 24 * 10),
        fake_slot("far", 24 * 40),  # beyond the 28-day horizon
    ):
        system.slots[s.id] = s
    wiring.override_clinical(app, "Y02001", system)
    yield system
    wiring.override_clinical(app, "Y02001", None)


# Rules in the service layer ---------------------------------------------------------------------------------
def test_rules_come_from_the_practice(app_ctx: Any, session: Any) -> None:
    p = practice(session)
    p.max_future_appointments, p.booking_horizon_days, p.cancellation_allowed = 5, 14, False
    rules = service.rules_for(p)
    assert rules.max_future_appointments == 5 and rules.horizon_days == 14 and not rules.cancellation_allowed
    assert "GP appointment" in rules.online_slot_types and "Baby clinic" not in rules.online_slot_types


def test_only_online_types_inside_horizon_and_lead_time_are_offered(
    app_ctx: Any, session: Any, uow: Any, fake: Any
) -> None:
    current = acting_as(session, PATIENT)
    page = service.find_slots(uow, current, service.SlotFilter())
    shown = {s.id for d in page.days for s in d.slots}
    assert shown == {"good", "good-phone", "nurse"}
    assert fake.calls.count("search_slots") == 1, "one slot search per page"
    later = service.find_slots(uow, current, service.SlotFilter(start_day=page.next_start))
    assert "far" not in {s.id for d in later.days for s in d.slots}
    assert {s.id for d in later.days for s in d.slots} <= {"later"}


def test_slots_are_filtered_and_grouped_by_local_day(app_ctx: Any, session: Any, uow: Any, fake: Any) -> None:
    current = acting_as(session, PATIENT)
    page = service.find_slots(uow, current, service.SlotFilter(delivery_mode=DeliveryMode.TELEPHONE))
    assert [s.id for d in page.days for s in d.slots] == ["good-phone"]
    page = service.find_slots(uow, current, service.SlotFilter(slot_type="Nurse appointment"))
    assert [s.id for d in page.days for s in d.slots] == ["nurse"]
    for day in page.days:
        assert all(s.start.astimezone(service.LONDON).date() == day.day for s in day.slots)


def test_when_nothing_fits_the_page_offers_alternatives(app_ctx: Any, session: Any, uow: Any, fake: Any) -> None:
    current = acting_as(session, PATIENT)
    page = service.find_slots(
        uow, current, service.SlotFilter(slot_type="Nurse appointment", delivery_mode=DeliveryMode.VIDEO)
    )
    assert page.days == [] and page.count == 0
    assert page.any_in_range == 3
    fake.slots["later-video"] = fake_slot("later-video", 24 * 12, "Nurse appointment", DeliveryMode.VIDEO)
    uow.slot_cache.forget("Y02001")  # the book changed in the clinical system: look again at once
    page = service.find_slots(
        uow, current, service.SlotFilter(slot_type="Nurse appointment", delivery_mode=DeliveryMode.VIDEO)
    )
    assert page.next_match is not None and page.next_match.id == "later-video"
    assert page.next_match_week is not None and page.next_match_week > page.start_day
    page = service.find_slots(uow, current, service.SlotFilter(slot_type="Medication review"))
    assert ("GP appointment", 2) in page.other_types and ("Nurse appointment", 1) in page.other_types


def test_book_records_audit_without_reason_and_sends_confirmation(app_ctx: Any, session: Any, uow: Any) -> None:
    current = acting_as(session, PATIENT)
    slot = free_slots(uow, current)[0]
    appointment = service.book_appointment(uow, current, slot.id, "  Sore   knee\nfor 3 weeks ", "key-1", slot.start)
    assert appointment.status == AppointmentStatus.BOOKED and appointment.reason == "Sore knee for 3 weeks"
    row = session.get(DemoAppointment, appointment.id)
    assert row is not None and row.slot_id == slot.id and session.get(DemoSlot, slot.id).status == "booked"
    [event] = events(session, "appointment.booked", current.patient.id)
    assert event.detail["slot_id"] == slot.id and event.detail["start"] == slot.start.isoformat()
    assert event.detail["clinician"] == slot.clinician.name and event.detail["appointment_id"] == appointment.id
    assert event.actor_role == "patient" and event.practice_id == current.practice.id
    assert "knee" not in str(event.detail)
    [message] = notifications(session, PATIENT)
    assert message.template == "appointment_booked" and slot.clinician.name in message.body
    assert "knee" not in message.body and PHONE in message.body


def test_double_submit_books_once(app_ctx: Any, session: Any, uow: Any) -> None:
    current = acting_as(session, PATIENT)
    slot = free_slots(uow, current)[0]
    first = service.book_appointment(uow, current, slot.id, "Check-up", "same-key", slot.start)
    second = service.book_appointment(uow, current, slot.id, "Check-up", "same-key", slot.start)
    assert first.id == second.id
    assert session.scalar(select(func.count()).where(DemoAppointment.slot_id == slot.id)) == 1
    assert len(events(session, "appointment.booked", current.patient.id)) == 1
    assert len(notifications(session, PATIENT)) == 1


def test_reason_is_limited_to_100_characters(app_ctx: Any, session: Any, uow: Any) -> None:
    current = acting_as(session, PATIENT)
    slot = free_slots(uow, current)[0]
    with pytest.raises(ReasonTooLong, match="100 characters or fewer"):
        service.book_appointment(uow, current, slot.id, "x" * 101, "k", slot.start)
    assert service.book_appointment(uow, current, slot.id, "x" * 100, "k", slot.start).reason == "x" * 100


def test_booking_is_refused_at_the_maximum_of_future_appointments(app_ctx: Any, session: Any, uow: Any) -> None:
    current = acting_as(session, PATIENT)
    practice(session).max_future_appointments = 1
    first, second = free_slots(uow, current, 2)
    service.book_appointment(uow, current, first.id, "One", "k1", first.start)
    with pytest.raises(BookingLimitReached, match=f"1 appointment booked.*{PHONE}"):
        service.book_appointment(uow, current, second.id, "Two", "k2", second.start)
    assert session.get(DemoSlot, second.id).status == "free"
    page = service.find_slots(uow, current, service.SlotFilter())
    assert page.at_limit and "Cancel one" in page.limit_message


def test_slots_not_offered_online_cannot_be_booked_by_a_crafted_request(
    app_ctx: Any, session: Any, uow: Any, fake: Any
) -> None:
    current = acting_as(session, PATIENT)
    for sid in ("soon", "baby", "far", "no-such-slot"):
        with pytest.raises(SlotUnavailable):
            service.book_appointment(
                uow, current, sid, "Crafted", f"k-{sid}", fake.slots.get(sid, fake.slots["good"]).start
            )
    assert "book" not in fake.calls and fake.appointments == {}


def test_slot_taken_a_moment_ago(app_ctx: Any, session: Any, uow: Any) -> None:
    someone, current = acting_as(session, PATIENT2), acting_as(session, PATIENT)
    slot = free_slots(uow, current)[0]
    service.book_appointment(uow, someone, slot.id, "First", "k-a", slot.start)
    with pytest.raises(SlotUnavailable, match="Choose another time"):
        service.book_appointment(uow, current, slot.id, "Second", "k-b", slot.start)
    assert events(session, "appointment.booked", current.patient.id) == []


def test_slot_taken_between_search_and_book(app_ctx: Any, session: Any, uow: Any, fake: Any) -> None:
    current = acting_as(session, PATIENT)
    fake.fail_next["book"] = SlotUnavailable()
    with pytest.raises(SlotUnavailable):
        service.book_appointment(uow, current, "good", "Reason", "k", fake.slots["good"].start)
    assert events(session, "appointment.booked") == []


@pytest.mark.parametrize("failure", [ClinicalSystemUnavailable(), ClinicalSystemUnavailable("timed out")])
def test_clinical_system_down_or_slow_books_nothing(
    app_ctx: Any, session: Any, uow: Any, fake: Any, failure: Exception
) -> None:
    current = acting_as(session, PATIENT)
    fake.fail_next["book"] = failure
    with pytest.raises(BookingFailed) as caught:
        service.book_appointment(uow, current, "good", "Reason", "k", fake.slots["good"].start)
    assert PHONE in caught.value.message and "not be booked twice" in caught.value.message
    assert fake.appointments == {} and events(session, "appointment.booked") == []
    assert notifications(session, PATIENT) == []
    fake.down = True
    with pytest.raises(ClinicalSystemUnavailable):
        service.find_slots(uow, current, service.SlotFilter())


def test_service_switched_off_for_the_patient(app_ctx: Any, session: Any, uow: Any, fake: Any) -> None:
    current = acting_as(session, PATIENT)
    current.patient.appointments_enabled = False
    session.commit()
    current = acting_as(session, PATIENT)
    with pytest.raises(ServiceOff):
        service.book_appointment(uow, current, "good", "Reason", "k", None)
    with pytest.raises(ServiceOff):
        service.find_slots(uow, current, service.SlotFilter())
    assert fake.calls == []


def test_proxy_books_for_the_child(app_ctx: Any, session: Any, uow: Any) -> None:
    current = acting_as(session, PARENT, child=True)
    slot = free_slots(uow, current)[0]
    appointment = service.book_appointment(uow, current, slot.id, "Vaccinations", "k", slot.start)
    [event] = events(session, "appointment.booked", current.patient.id)
    assert event.actor_role == "proxy" and event.actor_user_id == current.user.id
    [message] = notifications(session, PARENT)
    assert current.patient.given_name in message.body
    listed = service.list_appointments(uow, current)
    assert [i.id for i in listed.upcoming] == [appointment.id]
    own = service.list_appointments(uow, acting_as(session, PARENT))
    assert own.upcoming == []


def test_list_shows_upcoming_first_then_past_with_allowed_actions(
    app_ctx: Any, session: Any, uow: Any, fake: Any
) -> None:
    current = acting_as(session, PATIENT)
    ref = current.ref
    past = Appointment("P1", fake_slot("past", -48), AppointmentStatus.FULFILLED)
    fake.appointments["x"] = (ref, past)
    near = service.book_appointment(uow, current, "good", "Near", "k1", None)
    later = service.book_appointment(uow, current, "later", "Later", "k2", None)
    practice(session).cancellation_cutoff_hours = 48
    listed = service.list_appointments(uow, current)
    assert [i.id for i in listed.upcoming] == [near.id, later.id]
    assert [i.id for i in listed.past] == ["P1"]
    assert not listed.upcoming[0].may_change and PHONE in listed.upcoming[0].refusal
    assert "less than 2 days away" in listed.upcoming[0].refusal
    assert listed.upcoming[1].may_change
    assert not listed.may_book_more
    assert events(session, "appointments.viewed", current.patient.id)


# Cancelling -----------------------------------------------------------------------------------------------
def test_cancel_frees_the_slot_and_is_audited(app_ctx: Any, session: Any, uow: Any) -> None:
    current = acting_as(session, PATIENT)
    slot = free_slots(uow, current)[-1]
    practice(session).cancellation_cutoff_hours = 0
    appointment = service.book_appointment(uow, current, slot.id, "Reason", "k", slot.start)
    cancelled = service.cancel_appointment(uow, current, appointment.id, "Feeling better")
    assert cancelled.status == AppointmentStatus.CANCELLED
    assert session.get(DemoSlot, slot.id).status == "free"
    [event] = events(session, "appointment.cancelled", current.patient.id)
    assert event.detail["slot_id"] == slot.id and "better" not in str(event.detail)
    assert notifications(session, PATIENT)[-1].template == "appointment_cancelled"


def test_cancel_is_refused_inside_the_cutoff_with_the_phone_number(
    app_ctx: Any, session: Any, uow: Any, fake: Any
) -> None:
    current = acting_as(session, PATIENT)
    appointment = service.book_appointment(uow, current, "good", "Reason", "k", None)
    practice(session).cancellation_cutoff_hours = 30  # the appointment is 26 hours away
    with pytest.raises(CancellationRefused, match=f"less than 30 hours away.*{PHONE}"):
        service.cancel_appointment(uow, current, appointment.id)
    practice(session).cancellation_allowed = False
    with pytest.raises(CancellationRefused, match="does not take cancellations online"):
        service.cancel_appointment(uow, current, appointment.id)
    assert "cancel" not in fake.calls and events(session, "appointment.cancelled") == []


def test_cancel_someone_elses_appointment_is_not_found(app_ctx: Any, session: Any, uow: Any, fake: Any) -> None:
    owner, current = acting_as(session, PATIENT2), acting_as(session, PATIENT)
    appointment = service.book_appointment(uow, owner, "later", "Reason", "k", None)
    with pytest.raises(NotFound):
        service.cancel_appointment(uow, current, appointment.id)


def test_cancel_when_the_system_is_down_is_queued_and_sent_exactly_once(
    app_ctx: Any, session: Any, uow: Any, fake: Any
) -> None:
    from patient_online.models import OutboxMessage
    from patient_online.services import outbox

    current = acting_as(session, PATIENT)
    appointment = service.book_appointment(uow, current, "later", "Reason", "k", None)
    for _ in range(2):  # a double submit while the link is down queues one cancellation
        fake.fail_next["cancel"] = ClinicalSystemUnavailable()
        with pytest.raises(CancellationQueued, match="will send it as soon as the system is back"):
            service.cancel_appointment(uow, current, appointment.id)
    assert events(session, "appointment.cancelled") == []
    [queued] = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == service.CANCEL_KIND)).all()
    assert notifications(session, PATIENT)[-1].template == "appointment_cancel_queued"
    assert outbox.deliver_due(uow, "test-worker").count(outbox.Outcome.DELIVERED) == 1
    assert outbox.deliver_due(uow, "test-worker").count(outbox.Outcome.DELIVERED) == 0
    session.refresh(queued)
    assert queued.status == "delivered"
    assert fake.calls.count("cancel") == 3  # two refused while down, one delivered
    [event] = events(session, "appointment.cancelled")
    assert event.detail["via"] == "outbox"
    assert notifications(session, PATIENT)[-1].template == "appointment_cancelled"
    assert fake.list_appointments(current.ref, NOW)[0].status == AppointmentStatus.CANCELLED


# Rescheduling ---------------------------------------------------------------------------------------------
def test_reschedule_books_the_new_one_before_cancelling_the_old(
    app_ctx: Any, session: Any, uow: Any, fake: Any
) -> None:
    current = acting_as(session, PATIENT)
    practice(session).max_future_appointments = 1
    old = service.book_appointment(uow, current, "later", "Reason", "k1", None)
    outcome = service.reschedule_appointment(uow, current, old.id, "good-phone", "Reason", "k2", None)
    assert outcome.old_cancelled and outcome.new.slot.id == "good-phone"
    assert fake.calls.index("book", fake.calls.index("book") + 1) < fake.calls.index("cancel")
    listed = service.list_appointments(uow, current)
    assert [i.appointment.slot.id for i in listed.upcoming] == ["good-phone"]
    [event] = events(session, "appointment.rescheduled", current.patient.id)
    assert event.detail["slot_id"] == "good-phone" and event.detail["old_slot_id"] == "later"
    assert notifications(session, PATIENT)[-1].template == "appointment_rescheduled"


def test_reschedule_when_booking_fails_keeps_the_old_appointment(
    app_ctx: Any, session: Any, uow: Any, fake: Any
) -> None:
    current = acting_as(session, PATIENT)
    old = service.book_appointment(uow, current, "later", "Reason", "k1", None)
    fake.fail_next["book"] = ClinicalSystemUnavailable()
    with pytest.raises(BookingFailed, match="You still have your appointment"):
        service.reschedule_appointment(uow, current, old.id, "good", "Reason", "k2", None)
    service.book_appointment(uow, acting_as(session, PATIENT2), "good", "Mine", "k3", None)
    with pytest.raises(SlotUnavailable, match="You still have your appointment"):
        service.reschedule_appointment(uow, current, old.id, "good", "Reason", "k4", None)
    assert next(a.id for _, a in fake.appointments.values() if a.status == AppointmentStatus.BOOKED) == old.id
    assert "cancel" not in fake.calls


def test_reschedule_when_cancelling_fails_leaves_both_and_says_so(
    app_ctx: Any, session: Any, uow: Any, fake: Any
) -> None:
    current = acting_as(session, PATIENT)
    old = service.book_appointment(uow, current, "later", "Reason", "k1", None)
    fake.fail_next["cancel"] = ClinicalSystemUnavailable()
    outcome = service.reschedule_appointment(uow, current, old.id, "good", "Reason", "k2", None)
    assert not outcome.old_cancelled and outcome.old.id == old.id
    booked = {a.slot.id for _, a in fake.appointments.values() if a.status == AppointmentStatus.BOOKED}
    assert booked == {"later", "good"}
    [incomplete] = events(session, "appointment.reschedule_incomplete", current.patient.id)
    assert incomplete.detail["slot_id"] == "later"
    assert "could not cancel your old appointment" in notifications(session, PATIENT)[-1].body
    lines = service.practice_bookings(uow, current.practice, NOW.astimezone(service.LONDON).date(), 14)
    assert any(line.needs_action for day in lines for line in day.lines)


def test_reschedule_inside_the_cutoff_is_refused(app_ctx: Any, session: Any, uow: Any, fake: Any) -> None:
    current = acting_as(session, PATIENT)
    old = service.book_appointment(uow, current, "good", "Reason", "k1", None)
    practice(session).cancellation_cutoff_hours = 30
    with pytest.raises(CancellationRefused, match="cannot change this appointment"):
        service.reschedule_appointment(uow, current, old.id, "later", "Reason", "k2", None)
    assert len(fake.appointments) == 1


# Calendar --------------------------------------------------------------------------------------------------
def test_calendar_file_has_the_address_and_london_time(app_ctx: Any, session: Any, uow: Any, fake: Any) -> None:
    current = acting_as(session, PATIENT)
    appointment = service.book_appointment(uow, current, "good", "Private reason", "k", None)
    name, content = service.calendar_file(uow, current, appointment.id)
    assert name.endswith(".ics")
    text = content.decode()
    assert "BEGIN:VTIMEZONE" in text and "TZID=Europe/London" in text and "Private reason" not in text
    event = Calendar.from_ical(content).walk("VEVENT")[0]
    assert event.decoded("dtstart") == appointment.slot.start
    assert "12 Mill Lane" in str(event.get("location"))


# Reception --------------------------------------------------------------------------------------------------
def test_practice_bookings_show_only_the_practice(app_ctx: Any, session: Any, uow: Any) -> None:
    current = acting_as(session, PATIENT)
    slot = free_slots(uow, current)[0]
    service.book_appointment(uow, current, slot.id, "Secret reason", "k", slot.start)
    first = slot.start.astimezone(service.LONDON).date()
    days = service.practice_bookings(uow, current.practice, first, 1)
    [line] = days[0].lines
    assert line.patient_name == current.patient.full_name and line.what == "Booked online"
    assert service.practice_bookings(uow, practice(session, "Y02002"), first, 1) == []


# Journeys through the Flask client (CSRF on) -------------------------------------------------------------------
def first_slot_link(client: Any, url: str = "/appointments/slots") -> tuple[str, str]:
    """The first slot on the page: its booking page (as linked) and its start, as the form carries it."""
    html = client.get(url).get_data(as_text=True)
    found = SLOT_LINK.search(html)
    assert found, "no bookable slot on the page"
    return f"/appointments/slots/{found.group(1)}?at={found.group(2)}", unquote(found.group(2))


def book_through_pages(client: Any, reason: str = "Sore throat") -> str:
    page, at = first_slot_link(client)
    page.split("/")[3].split("?")[0]
    form = client.get(page).get_data(as_text=True)
    key = re.search(r'name="idempotency_key" value="([^"]+)"', form)
    assert key
    response = client.submit(page, {"reason": reason, "idempotency_key": key.group(1), "at": at}, page=page)
    assert response.status_code == 302, response.get_data(as_text=True)
    found = re.search(r"/appointments/([^/]+)/booked", response.headers["Location"])
    assert found
    return found.group(1)


def test_book_journey_with_confirmation(client: Any, sign_in: Any, app: Any) -> None:
    sign_in(PATIENT)
    empty = client.get("/appointments").get_data(as_text=True)
    assert "You have no upcoming appointments" in empty
    slots = client.get("/appointments/slots")
    html = slots.get_data(as_text=True)
    assert slots.status_code == 200 and "nhsuk-details" in html and "Filter times" in html
    page, _at = first_slot_link(client)
    form = client.get(page).get_data(as_text=True)
    assert "You can enter up to 100 characters" in form and 'data-maxlength="100"' in form
    appointment_id = book_through_pages(client)
    booked = client.get(f"/appointments/{appointment_id}/booked").get_data(as_text=True)
    assert "Appointment booked" in booked and "Add to calendar" in booked and PATIENT in booked
    listing = client.get("/appointments").get_data(as_text=True)
    assert "Upcoming appointments" in listing and "Sore throat" in listing
    assert client.get(f"/appointments/{appointment_id}").status_code == 200
    ics = client.get(f"/appointments/{appointment_id}/calendar.ics")
    assert ics.mimetype == "text/calendar" and b"TZID=Europe/London" in ics.data
    with app.app_context():
        assert db.session.scalar(select(func.count()).where(DemoAppointment.id == appointment_id)) == 1


def test_double_submitted_form_books_once(client: Any, sign_in: Any, app: Any) -> None:
    sign_in(PATIENT)
    page, at = first_slot_link(client)
    slot_id = page.split("/")[3].split("?")[0]
    data = {"reason": "Twice", "idempotency_key": "double-key", "at": at}
    first = client.submit(page, data, page=page)
    second = client.submit(page, data, page=page)
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).where(DemoAppointment.slot_id == slot_id)) == 1


def test_reason_too_long_keeps_what_was_typed(client: Any, sign_in: Any) -> None:
    sign_in(PATIENT)
    page, at = first_slot_link(client)
    page.split("/")[3].split("?")[0]
    typed = "A" * 101
    response = client.submit(page, {"reason": typed, "idempotency_key": "k", "at": at}, page=page)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Enter a reason of 100 characters or fewer" in html and typed in html
    missing = client.submit(page, {"reason": "", "idempotency_key": "k", "at": at}, page=page)
    assert "Enter the reason for your appointment" in missing.get_data(as_text=True)


def test_no_slots_page_is_honest_and_offers_alternatives(client: Any, sign_in: Any) -> None:
    sign_in(PATIENT)
    response = client.get("/appointments/slots?type=Blood+test&how=video")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "No appointments available" in html and "What you can do" in html
    assert PHONE in html and "111" in html and "See all" in html
    assert "app-slot-list" not in html


def test_slot_taken_page_and_clinical_system_down_page(client: Any, sign_in: Any, app: Any, fake: Any) -> None:
    sign_in(PATIENT)
    page, at = first_slot_link(client)
    assert page.startswith("/appointments/slots/good?")
    token_page = client.get(page).get_data(as_text=True)
    assert "Book this appointment" in token_page
    fake.fail_next["book"] = ClinicalSystemUnavailable()
    response = client.submit(page, {"reason": "Cough", "idempotency_key": "k1", "at": at}, page=page)
    html = response.get_data(as_text=True)
    assert response.status_code == 503 and "not responding" in html and PHONE in html and "Cough" in html
    fake.fail_next["book"] = SlotUnavailable()
    response = client.submit(page, {"reason": "Cough", "idempotency_key": "k2", "at": at}, page=page)
    assert response.status_code == 409 and "Choose another time" in response.get_data(as_text=True)
    assert fake.appointments == {}


def test_cancel_journey_and_refusal_inside_cutoff(client: Any, sign_in: Any, app: Any) -> None:
    sign_in(PATIENT)
    appointment_id = book_through_pages(client)
    with app.app_context():
        practice(db.session).cancellation_cutoff_hours = 24 * 60
        db.session.commit()
    page = client.get(f"/appointments/{appointment_id}/cancel").get_data(as_text=True)
    assert "You cannot cancel this appointment online" in page and PHONE in page
    with app.app_context():
        practice(db.session).cancellation_cutoff_hours = 0
        db.session.commit()
    url = f"/appointments/{appointment_id}/cancel"
    response = client.submit(url, {"reason": "No longer needed"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/appointments")
    assert "has been cancelled" in client.get("/appointments").get_data(as_text=True)
    with app.app_context():
        row = db.session.get(DemoAppointment, appointment_id)
        assert row is not None and row.status == "cancelled"


def test_reschedule_journey(client: Any, sign_in: Any, app: Any) -> None:
    sign_in(PATIENT)
    with app.app_context():
        practice(db.session).cancellation_cutoff_hours = 0
        db.session.commit()
    old_id = book_through_pages(client)
    html = client.get(f"/appointments/{old_id}/reschedule").get_data(as_text=True)
    assert "Choose a new time" in html and "stays booked until your new time is booked" in html
    found = re.search(rf'href="/appointments/{old_id}/reschedule/([^"?]+)\?at=([^"]+)"', html)
    assert found
    page, at = f"/appointments/{old_id}/reschedule/{found.group(1)}?at={found.group(2)}", unquote(found.group(2))
    form = client.get(page).get_data(as_text=True)
    assert "Check your new time" in form and "Sore throat" in form
    response = client.submit(page, {"reason": "Sore throat", "idempotency_key": "resched", "at": at}, page=page)
    assert response.status_code == 302 and "changed=1" in response.headers["Location"]
    assert "Appointment changed" in client.get(response.headers["Location"]).get_data(as_text=True)
    with app.app_context():
        old = db.session.get(DemoAppointment, old_id)
        assert old is not None and old.status == "cancelled"
        assert len(events(db.session, "appointment.rescheduled")) == 1


def test_crafted_post_is_refused_when_the_service_is_off(client: Any, sign_in: Any, app: Any) -> None:
    sign_in(PATIENT)
    page, at = first_slot_link(client)
    slot_id = page.split("/")[3].split("?")[0]
    token = client.csrf_token(page)
    with app.app_context():
        current = acting_as(db.session, PATIENT)
        current.patient.appointments_enabled = False
        db.session.commit()
    response = client.post(page, data={"reason": "x", "idempotency_key": "k", "at": at, "csrf_token": token})
    assert response.status_code == 403
    for url in ("/appointments/slots", "/appointments/book", "/appointments/book/days"):
        assert client.get(url).status_code == 403, url
    with app.app_context():
        assert db.session.scalar(select(func.count()).where(DemoAppointment.slot_id == slot_id)) == 0


def test_post_without_csrf_token_changes_nothing(client: Any, sign_in: Any, app: Any) -> None:
    sign_in(PATIENT)
    page, at = first_slot_link(client)
    slot_id = page.split("/")[3].split("?")[0]
    response = client.post(page, data={"reason": "x", "idempotency_key": "k", "at": at})
    assert response.status_code == 400
    with app.app_context():
        assert db.session.scalar(select(func.count()).where(DemoAppointment.slot_id == slot_id)) == 0


def test_someone_elses_appointment_is_not_found(client: Any, sign_in: Any, app: Any) -> None:
    sign_in(PATIENT2)
    other = book_through_pages(client)
    client.post("/logout", data={"csrf_token": client.csrf_token("/appointments")})
    sign_in(PATIENT)
    for url in (f"/appointments/{other}", f"/appointments/{other}/calendar.ics", f"/appointments/{other}/cancel"):
        assert client.get(url).status_code == 404


def test_proxy_uses_the_same_pages(client: Any, sign_in: Any, app: Any) -> None:
    sign_in(PARENT)
    with app.app_context():
        child = acting_as(db.session, PARENT, child=True).patient
    with client.raw.session_transaction() as flask_session:
        flask_session["acting_for"] = child.id
    assert f"{child.given_name}'s appointments" in client.get("/appointments").get_data(as_text=True)
    book_through_pages(client, "Vaccinations")
    with app.app_context():
        [event] = events(db.session, "appointment.booked", child.id)
        assert event.actor_role == "proxy"


def test_reception_sees_the_practices_online_bookings(client: Any, sign_in: Any, app: Any) -> None:
    sign_in(PATIENT)
    book_through_pages(client, "Private words")
    client.post("/logout", data={"csrf_token": client.csrf_token("/appointments")})
    sign_in("reception.y02001@example.com")
    response = client.get("/reception/appointments?days=14")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Booked online" in html and "Private words" not in html
    client.post("/logout", data={"csrf_token": client.csrf_token("/reception/appointments")})
    sign_in("reception.y02002@example.com")
    assert "Booked online" not in client.get("/reception/appointments?days=14").get_data(as_text=True)


def test_a_queued_cancellation_the_practice_refuses_is_reported(
    app_ctx: Any, session: Any, uow: Any, fake: Any
) -> None:
    from patient_online.services import outbox

    current = acting_as(session, PATIENT)
    appointment = service.book_appointment(uow, current, "later", "Reason", "k2", None)
    fake.fail_next["cancel"] = ClinicalSystemUnavailable()
    with pytest.raises(CancellationQueued):
        service.cancel_appointment(uow, current, appointment.id)
    fake.fail_next["cancel"] = NotFound()  # the practice's system refuses it outright
    assert outbox.deliver_due(uow, "test-worker").count(outbox.Outcome.FAILED) == 1
    [event] = events(session, "appointment.cancel_failed")
    assert event.patient_id == current.patient.id
    last = notifications(session, PATIENT)[-1]
    assert last.template == "appointment_cancel_failed" and PHONE in last.body


def test_slots_page_may_show_a_recent_search_but_booking_checks_again(
    client: Any, sign_in: Any, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The slots page remembers a practice's search for a few seconds; a time taken elsewhere in that while
    (another node, the practice's own staff) is refused plainly, and a booking here refreshes the page."""
    # The remembered search is keyed by the minute its window starts: hold the clock still so the pages below
    # never fall either side of a minute's turn.
    frozen = SystemClock().now()
    monkeypatch.setattr(SystemClock, "now", lambda self: frozen)
    sign_in(PATIENT)
    taken_page, _at = first_slot_link(client)
    taken = unquote(taken_page.split("/")[3].split("?")[0])
    with app.app_context():
        db.session.execute(update(DemoSlot).where(DemoSlot.id == taken).values(status="booked"))
        db.session.commit()
    assert first_slot_link(client)[0] == taken_page  # from memory: still shown
    refused = client.get(taken_page)
    assert refused.status_code == 409 and "That time is no longer available" in refused.get_data(as_text=True)
    with app.app_context():
        db.session.execute(update(DemoSlot).where(DemoSlot.id == taken).values(status="free"))
        db.session.commit()
    booked = book_through_pages(client)  # books the same first slot, through this process
    html = client.get("/appointments/slots").get_data(as_text=True)
    assert f"/appointments/slots/{taken}?" not in html
    with app.app_context():
        assert db.session.get(DemoAppointment, booked) is not None


def test_a_search_from_before_the_patients_own_booking_never_offers_them_that_time(
    app_ctx: Any, session: Any, uow: Any
) -> None:
    """Another node may serve the slots page from a search made before this patient booked there."""
    current = acting_as(session, PATIENT)
    slot = free_slots(uow, current)[0]  # the search is now remembered
    system = wiring.clinical_systems(app_ctx).system_for(current.practice)
    system.book(current.ref, slot.id, "Booked through another node", "k-other")
    page = service.find_slots(uow, current, service.SlotFilter())
    assert slot.id not in {s.id for d in page.days for s in d.slots}


# Exactly once, whatever the timing (issue 19) ----------------------------------------------------------------
def test_a_booking_the_gateway_failed_to_record_is_recorded_once_when_the_list_is_next_seen(
    client: Any, sign_in: Any, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo system booked the slot, then the commit of the booking's record failed (the database went away):
    the patient is told to check their appointments, and that page records the booking with one email."""
    from sqlalchemy.exc import OperationalError

    from patient_online.services.unit_of_work import SqlAlchemyUnitOfWork

    real_commit = SqlAlchemyUnitOfWork.commit
    failed: list[bool] = []

    def commit(self: SqlAlchemyUnitOfWork) -> None:
        # The booking's audit event is in this transaction (pending, or flushed already by a query).
        booked = self.session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "appointment.booked")
        )
        if (booked or 0) > (before or 0) and not failed:
            failed.append(True)
            raise OperationalError("COMMIT", {}, Exception("terminating connection due to administrator command"))
        real_commit(self)

    with app.app_context():
        before = db.session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "appointment.booked")
        )
    monkeypatch.setattr(SqlAlchemyUnitOfWork, "commit", commit)
    sign_in(PATIENT)
    page, at = first_slot_link(client)
    slot_id = unquote(page.split("/")[3].split("?")[0])
    response = client.submit(page, {"reason": "Sore throat", "idempotency_key": "lost-record", "at": at}, page=page)
    html = response.get_data(as_text=True)
    assert failed and response.status_code == 503, html
    assert "may have been booked" in html and "Check your appointments" in html
    with app.app_context():
        patient_id = acting_as(db.session, PATIENT).patient.id
        assert db.session.scalar(select(func.count()).where(DemoAppointment.slot_id == slot_id)) == 1
        assert events(db.session, "appointment.booked", patient_id) == []
        assert [n for n in notifications(db.session, PATIENT) if n.template == "appointment_booked"] == []

    for _ in range(2):
        listing = client.get("/appointments").get_data(as_text=True)
        assert "Upcoming appointments" in listing and "Sore throat" in listing
    with app.app_context():
        [event] = events(db.session, "appointment.booked", patient_id)
        assert event.detail["slot_id"] == slot_id and event.detail.get("reconciled") is True
        [mail] = [n for n in notifications(db.session, PATIENT) if n.template == "appointment_booked"]
        assert mail.subject == "Your GP appointment is booked"


def test_a_second_tab_booking_the_same_slot_answers_with_the_confirmation_and_records_once(
    client: Any, sign_in: Any, app: Any
) -> None:
    sign_in(PATIENT)
    page, at = first_slot_link(client)
    first = client.submit(page, {"reason": "Twice", "idempotency_key": "tab-one", "at": at}, page=page)
    second = client.submit(page, {"reason": "Twice", "idempotency_key": "tab-two", "at": at}, page=page)
    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    with app.app_context():
        patient_id = acting_as(db.session, PATIENT).patient.id
        assert len(events(db.session, "appointment.booked", patient_id)) == 1
        assert len([n for n in notifications(db.session, PATIENT) if n.template == "appointment_booked"]) == 1


# Appointments switched off: what the patient holds stays visible, read-only -------------------------------------
def _text(html: str) -> str:
    """The page's words without its tags, as a person reads them."""
    return " ".join(re.sub(r"<[^>]+>", "", html).split())


@pytest.mark.parametrize("switched_off", ["for everyone", "for this patient"])
def test_with_appointments_switched_off_the_list_is_read_only_with_the_phone(
    client: Any, sign_in: Any, app: Any, switched_off: str
) -> None:
    sign_in(PATIENT)
    appointment_id = book_through_pages(client, "Sore throat")
    with app.app_context():
        if switched_off == "for everyone":
            [switch] = [s for s in practice(db.session).switches if s.service == "appointments"]
            switch.enabled, switch.message = False, "Online booking is paused while we change systems."
        else:
            acting_as(db.session, PATIENT).patient.appointments_enabled = False
        db.session.commit()
    response = client.get("/appointments")
    html = response.get_data(as_text=True)
    assert response.status_code == 200, "the patient's own appointments are never hidden"
    assert "Sore throat" in html and f"/appointments/{appointment_id}" in html
    assert f"To cancel or change an appointment, call Riverside Medical Centre on {PHONE}" in _text(html)
    assert ("paused while we change systems" in html) is (switched_off == "for everyone")
    for link in ("/cancel", "/reschedule", "/appointments/book", "/appointments/slots"):
        assert f'{link}"' not in html and f"{link}?" not in html, link
    shown = client.get(f"/appointments/{appointment_id}").get_data(as_text=True)
    assert "call Riverside Medical Centre on" in shown and "Cancel appointment" not in shown
    assert client.get(f"/appointments/{appointment_id}/calendar.ics").status_code == 200
    assert client.submit(f"/appointments/{appointment_id}/cancel", {"reason": ""}).status_code == 403


def test_a_proxy_not_allowed_appointments_still_cannot_see_them(client: Any, sign_in: Any, app: Any) -> None:
    sign_in(PARENT)
    with app.app_context():
        current = acting_as(db.session, PARENT, child=True)
        assert current.proxy is not None
        current.proxy.can_appointments = False
        db.session.commit()
        child_id = current.patient.id
    with client.raw.session_transaction() as flask_session:
        flask_session["acting_for"] = child_id
    assert client.get("/appointments").status_code == 403


def test_no_appointment_page_lowers_the_practices_name(client: Any, sign_in: Any, app: Any) -> None:
    sign_in(PATIENT)
    appointment_id = book_through_pages(client)
    with app.app_context():
        practice(db.session).cancellation_cutoff_hours = 24 * 60
        db.session.commit()
    for url in ("/appointments", f"/appointments/{appointment_id}", f"/appointments/{appointment_id}/cancel"):
        html = client.get(url).get_data(as_text=True)
        assert "riverside medical centre" not in html, url
        assert f"Riverside Medical Centre on {PHONE}" in _text(html), url


# Finding a time, phone first ------------------------------------------------------------------------------------
TIME_LINK = re.compile(r'<span class="app-time__time">([^<]+)</span>')


def _minutes(label: str) -> int:
    """'9:10am' -> minutes after midnight."""
    moment = dt.datetime.strptime(label.strip().upper(), "%I:%M%p")
    return moment.hour * 60 + moment.minute


def test_times_within_a_day_are_in_time_order_not_grouped_by_clinician(
    client: Any, sign_in: Any, app: Any, fake: Any
) -> None:
    day = (NOW + dt.timedelta(days=3)).astimezone(service.LONDON).date()
    for sid, hour, minute, who in (("a", 9, 0, GP), ("b", 9, 10, NURSE), ("c", 9, 20, GP), ("d", 14, 0, NURSE)):
        start = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=service.LONDON).astimezone(dt.UTC)
        slot_type = "Nurse appointment" if who is NURSE else "GP appointment"
        fake.slots[sid] = Slot(sid, start, start + dt.timedelta(minutes=10), slot_type, who, DeliveryMode.VIDEO)
    sign_in(PATIENT)
    times = client.get(f"/appointments/book/times?day={day.isoformat()}").get_data(as_text=True)
    shown = TIME_LINK.findall(times)
    assert shown == ["9:00am", "9:10am", "9:20am", "2:00pm"]
    assert times.index("Nurse Mary Seacole") < times.index("9:20am"), "each time names its clinician"
    week = client.get(f"/appointments/slots?start={day.isoformat()}").get_data(as_text=True)
    first_day = week[week.index("app-slot-day") :]
    first_day = first_day[: first_day.find("</details>")]
    in_week = [_minutes(t) for t in TIME_LINK.findall(first_day)]
    assert in_week == sorted(in_week) and len(in_week) == 4


def _links(html: str, path: str) -> list[str]:
    return [unquote(h).replace("&amp;", "&") for h in re.findall(rf'href="({re.escape(path)}[^"]*)"', html)]


def test_book_the_first_time_of_any_type_in_three_steps(client: Any, sign_in: Any, app: Any) -> None:
    sign_in(PATIENT)
    index = client.get("/appointments").get_data(as_text=True)
    assert 'href="/appointments/book"' in index
    types = client.get("/appointments/book").get_data(as_text=True)
    assert "Choose a type of appointment" in types and "Any type" in types and "GP appointment" in types
    days_link = _links(types, "/appointments/book/days")[0]
    days = client.get(days_link).get_data(as_text=True)
    assert "Choose a day" in days and "Change filters" in days
    day_links = _links(days, "/appointments/book/times")
    assert 1 <= len(day_links) <= service.DAYS_SHOWN
    counts = [int(n) for n in re.findall(r'app-choice__count">(\d+) times?<', days)]
    assert len(counts) == len(day_links) and all(n > 0 for n in counts)
    times = client.get(day_links[0]).get_data(as_text=True)
    assert "Choose a time on" in times
    shown = [_minutes(t) for t in TIME_LINK.findall(times)]
    assert len(shown) == counts[0] and shown == sorted(shown)
    found = SLOT_LINK.search(times)
    assert found
    page, at = f"/appointments/slots/{found.group(1)}?at={found.group(2)}", unquote(found.group(2))
    form = client.get(page).get_data(as_text=True)
    assert f'href="{day_links[0].split("&")[0]}' in form.replace("&amp;", "&"), "back to the times of that day"
    key = re.search(r'name="idempotency_key" value="([^"]+)"', form)
    assert key
    response = client.submit(page, {"reason": "Cough", "idempotency_key": key.group(1), "at": at}, page=page)
    assert response.status_code == 302 and "/booked" in response.headers["Location"]
    assert "Appointment booked" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_filters_narrow_the_days_and_a_day_without_matches_says_what_to_do(client: Any, sign_in: Any) -> None:
    sign_in(PATIENT)
    days = client.get("/appointments/book/days?type=Blood+test&how=video").get_data(as_text=True)
    assert "No appointments available" in days and PHONE in days
    assert "<details" in days and " open" in days.split("<details", 1)[1].split(">", 1)[0], "filters shown"
    nurse = client.get("/appointments/book/days?type=Nurse+appointment").get_data(as_text=True)
    for link in _links(nurse, "/appointments/book/times"):
        assert "type=Nurse+appointment" in link
    assert client.get("/appointments/book/times").status_code == 404


def test_the_booking_steps_run_as_few_statements_as_the_week_page(
    client: Any, sign_in: Any, seeded_engine: Any
) -> None:
    """Each step makes one search of the practice's book (the demo system's own query counts too): no more
    statements than the week page's budget (tests/integration/test_page_statements.py)."""
    from sqlalchemy import event

    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "SAVEPOINT" not in statement.upper():
            seen.append(statement)

    sign_in(PATIENT)
    day = client.get("/appointments/book/days").get_data(as_text=True)
    times = _links(day, "/appointments/book/times")[0]
    pages = ["/appointments/book", "/appointments/book/days", times, "/appointments/slots"]
    for url in pages:
        client.get(url)  # once first: a page's first visit may fill a cache the others then use
    event.listen(seeded_engine, "before_cursor_execute", note)
    try:
        counts = {}
        for url in pages:
            seen.clear()
            assert client.get(url).status_code == 200, url
            counts[url] = len(seen)
    finally:
        event.remove(seeded_engine, "before_cursor_execute", note)
    assert all(n <= 3 for n in counts.values()), counts
