"""Earlier appointments on the real database (SQLite and PostgreSQL): joining the list, a freed time offered to
the first patient it suits and held for them, the hold running out and moving on, accepting, declining and
leaving, the list ending, and a time freed in the clinical system itself found on the periodic look.

The service functions are called directly, with the unit of work the app uses and a clock the test moves.
Most tests use a fake clinical system whose book the test writes; the last uses the demo clinical system.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, update

from patient_online import wiring
from patient_online.adapters.demo.models import DemoAppointment, DemoSlot
from patient_online.domain.appointments import (
    Appointment,
    AppointmentStatus,
    BookingFailed,
    CancellationRefused,
    Clinician,
    DeliveryMode,
    Slot,
)
from patient_online.domain.errors import ClinicalSystemUnavailable, InputError, NotFound, SlotUnavailable
from patient_online.domain.waitlist import EntryStatus, OfferStatus
from patient_online.models import AuditEvent, ContactPreference, Notification, Practice, SlotOffer, User, WaitlistEntry
from patient_online.services import appointments, waitlist
from patient_online.services.access import Acting, acting_for, active_proxy_links
from patient_online.services.unit_of_work import FixedClock
from tests.fakes import FakeClinicalSystem

PATIENT = "patient.y02001@example.com"
PARENT = "parent.y02001@example.com"
CANCELLER = "patient2.y02001@example.com"
SERVICE_URL = "https://patient-online.example.nhs.uk"
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)  # Monday 2 March, 9am in London (GMT)
GP = Clinician("C1", "Dr Amara Okafor", "GP")
NURSE = Clinician("C2", "Nurse Janet Hughes", "Practice nurse")
MOBILE = "+447700900123"


@pytest.fixture
def settings() -> dict[str, Any]:
    return {"SERVICE_URL": SERVICE_URL}


def slot(sid: str, start: dt.datetime, slot_type: str = "GP appointment") -> Slot:
    clinician = NURSE if slot_type.startswith("Nurse") else GP
    return Slot(sid, start, start + dt.timedelta(minutes=10), slot_type, clinician, DeliveryMode.FACE_TO_FACE, "Room 4")


FREED = slot("FREED", dt.datetime(2026, 3, 4, 10, 0, tzinfo=dt.UTC))  # Wednesday 10am
FREED_TOO = slot("FREED-TOO", dt.datetime(2026, 3, 4, 11, 0, tzinfo=dt.UTC))  # Wednesday 11am
BABY_CLINIC = slot("BABY", dt.datetime(2026, 3, 4, 9, 30, tzinfo=dt.UTC), "Baby clinic")  # not offered online
TOO_SOON = slot("SOON", NOW + dt.timedelta(hours=1))  # inside the practice's lead time
LATER = slot("LATER", dt.datetime(2026, 3, 12, 9, 0, tzinfo=dt.UTC))  # Thursday 12 March
OWN = slot("OWN", dt.datetime(2026, 3, 12, 10, 0, tzinfo=dt.UTC))  # the patient's own, on Thursday 12 March
OWN_EARLY = slot("OWN-EARLY", dt.datetime(2026, 3, 3, 10, 0, tzinfo=dt.UTC))  # theirs, on Tuesday 3 March


@pytest.fixture
def clock(uow: Any) -> FixedClock:
    uow.clock = FixedClock(NOW)
    return uow.clock


@pytest.fixture
def fake(app: Any, practice: Practice, session: Any, clock: FixedClock) -> Iterator[FakeClinicalSystem]:
    """A practice's book with two free times nobody may be offered, and three times another patient holds."""
    system = FakeClinicalSystem(now=clock.now)
    for s in (BABY_CLINIC, TOO_SOON):
        system.slots[s.id] = s
    other = acting_as(session, CANCELLER)
    for s in (FREED, FREED_TOO, LATER):
        booked_for(system, other, s)
    wiring.override_clinical(app, "Y02001", system)
    yield system
    wiring.override_clinical(app, "Y02001", None)


@pytest.fixture
def practice(app_ctx: Any, session: Any) -> Practice:
    """Riverside Medical Centre, with the list on and the default hold."""
    found = session.scalars(select(Practice).where(Practice.ods_code == "Y02001")).one()
    found.waitlist_enabled, found.waitlist_hold_minutes = True, 15
    session.commit()
    return found


# Helpers ---------------------------------------------------------------------------------------------------
def acting_as(session: Any, email: str, child: bool = False) -> Acting:
    user = session.scalars(select(User).where(User.email == email)).one()
    current = acting_for(session, user, active_proxy_links(session, user)[0].patient_id if child else None)
    assert current is not None
    return current


def booked_for(fake: FakeClinicalSystem, current: Acting, s: Slot, reason: str = "Painful ankle") -> Appointment:
    """An appointment the patient holds in the clinical system already."""
    appointment = Appointment(f"A-{s.id}", s, AppointmentStatus.BOOKED, reason=reason, booked_at=NOW)
    fake.slots[s.id] = s
    fake.appointments[f"k-{s.id}"] = (current.ref, appointment)
    return appointment


def join(
    uow: Any, current: Acting, weekdays: set[int] | None = None, parts: set[str] | None = None, **more: Any
) -> Any:
    return waitlist.join(
        uow,
        current,
        slot_type=more.pop("slot_type", ""),
        weekdays=set(range(7)) if weekdays is None else weekdays,
        parts={"morning", "afternoon", "evening"} if parts is None else parts,
        weeks=more.pop("weeks", 2),
        **more,
    )


def queue_of_two(uow: Any, session: Any, clock: FixedClock) -> tuple[Acting, Acting]:
    """The patient asks first (Wednesday mornings only), the parent a minute later (any time)."""
    first = acting_as(session, PATIENT)
    join(uow, first, {2}, {"morning"})
    clock.advance(minutes=1)
    second = acting_as(session, PARENT)
    join(uow, second)
    return first, second


def cancel_at_gateway(uow: Any, session: Any, fake: FakeClinicalSystem, s: Slot = FREED) -> None:
    """Another patient cancels their appointment online: the time is free."""
    appointments.cancel_appointment(uow, acting_as(session, CANCELLER), f"A-{s.id}", "")


def offers(session: Any, slot_id: str | None = None) -> list[SlotOffer]:
    stmt = select(SlotOffer).order_by(SlotOffer.id)
    if slot_id is not None:
        stmt = stmt.where(SlotOffer.slot_id == slot_id)
    session.expire_all()
    return list(session.scalars(stmt))


def entry_of(session: Any, current: Acting) -> WaitlistEntry:
    session.expire_all()
    return session.scalars(
        select(WaitlistEntry).where(WaitlistEntry.patient_id == current.patient.id).order_by(WaitlistEntry.id.desc())
    ).first()


def offered_to(session: Any, offer: SlotOffer) -> int:
    return int(session.get_one(WaitlistEntry, offer.entry_id).patient_id)


def events(session: Any, action: str) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def messages(session: Any, template: str) -> list[Notification]:
    return list(
        session.scalars(select(Notification).where(Notification.template == template).order_by(Notification.id))
    )


def texts_by_appointment(session: Any, email: str) -> None:
    """The person chose texts for appointments, and confirmed their mobile number."""
    user = session.scalars(select(User).where(User.email == email)).one()
    session.add(
        ContactPreference(user_id=user.id, mobile=MOBILE, mobile_verified_at=NOW, channels={"appointments": "both"})
    )
    session.commit()


# Joining ---------------------------------------------------------------------------------------------------
def test_join_then_change_keeps_the_place_in_the_queue(
    practice: Practice, session: Any, uow: Any, fake: FakeClinicalSystem, clock: FixedClock
) -> None:
    first, second = queue_of_two(uow, session, clock)
    joined_at = entry_of(session, first).created_at
    clock.advance(minutes=5)
    view = join(uow, first, {2, 3}, {"morning"}, weeks=3)  # they can come on Thursdays too now
    entry = entry_of(session, first)
    assert view.id == entry.id and entry.created_at == joined_at, "a change keeps their place"
    assert entry.status == EntryStatus.WAITING and entry.weekdays == [2, 3] and entry.until == dt.date(2026, 3, 23)
    assert view.description == "any type of appointment, Wednesdays or Thursdays, mornings, until Monday 23 March"
    assert len(session.scalars(select(WaitlistEntry).where(WaitlistEntry.patient_id == first.patient.id)).all()) == 1
    [joined_first, joined_second] = events(session, "waitlist.joined")
    assert (joined_first.patient_id, joined_second.patient_id) == (first.patient.id, second.patient.id)
    [changed] = events(session, "waitlist.changed")
    assert changed.detail["weekdays"] == [2, 3] and changed.actor_role == "patient"
    mails = messages(session, "waitlist_joined")
    assert [m.to for m in mails] == [PATIENT, PARENT], "joining is confirmed; a change is shown on the page only"
    assert "15 minutes" in mails[0].body and "Wednesdays, mornings" in mails[0].body

    cancel_at_gateway(uow, session, fake)
    waitlist.run(uow)
    [offer] = offers(session)
    assert offered_to(session, offer) == first.patient.id, "the first to ask is still first after changing"


def test_a_proxy_puts_the_child_on_the_list(
    practice: Practice, session: Any, uow: Any, fake: FakeClinicalSystem
) -> None:
    child = acting_as(session, PARENT, child=True)
    join(uow, child)
    entry = entry_of(session, child)
    assert entry.user_id == child.user.id and entry.actor_role == child.actor_role != "patient"
    [mail] = messages(session, "waitlist_joined")
    assert mail.to == PARENT and f"for {child.patient.given_name}" in mail.body


def test_join_is_refused_when_the_practice_has_the_list_off(
    practice: Practice, session: Any, uow: Any, fake: FakeClinicalSystem
) -> None:
    practice.waitlist_enabled = False
    session.commit()
    with pytest.raises(waitlist.WaitlistOff) as refused:
        join(uow, acting_as(session, PATIENT))
    assert refused.value.http_status == 403
    assert session.scalars(select(WaitlistEntry)).all() == []
    assert events(session, "waitlist.joined") == []


def test_join_refuses_what_it_cannot_offer(
    practice: Practice, session: Any, uow: Any, fake: FakeClinicalSystem
) -> None:
    current = acting_as(session, PATIENT)
    for wrong, field in (
        ({"slot_type": "Baby clinic"}, "slot_type"),  # not booked online
        ({"parts": {"night"}}, "parts"),
        ({"weeks": 9}, "weeks"),
        ({"weekdays": set()}, "weekdays"),
        ({"weekdays": {7}}, "weekdays"),
    ):
        with pytest.raises(InputError) as refused:
            join(uow, current, **wrong)
        assert field in refused.value.fields, wrong
    assert session.scalars(select(WaitlistEntry)).all() == []


# Offering a freed time -------------------------------------------------------------------------------------
def test_a_cancellation_at_the_gateway_offers_the_time_to_the_first_patient_it_suits(
    practice: Practice, session: Any, uow: Any, fake: FakeClinicalSystem, clock: FixedClock
) -> None:
    texts_by_appointment(session, PATIENT)
    first, second = queue_of_two(uow, session, clock)
    assert waitlist.run(uow).offered == 0, "nothing in the book suits anyone yet"
    cancel_at_gateway(uow, session, fake)
    report = waitlist.run(uow)
    assert (report.offered, report.looked) == (1, 1)
    [offer] = offers(session)
    assert offered_to(session, offer) == first.patient.id
    assert offer.slot_id == "FREED" and offer.status == OfferStatus.HELD
    assert offer.hold_until == clock.now() + dt.timedelta(minutes=15)
    assert entry_of(session, first).status == EntryStatus.OFFERED
    assert entry_of(session, second).status == EntryStatus.WAITING

    [mail] = messages(session, "waitlist_offer")
    assert mail.to == PATIENT and mail.priority and mail.reference == f"waitlist-offer:{offer.id}"
    assert f"{SERVICE_URL}/appointments/offers/{offer.id}" in mail.body
    assert "Wednesday 4 March 2026 at 10:00am" in mail.body and "9:16am" in mail.body  # held 15 minutes
    assert "Painful ankle" not in mail.body, "nothing of the other patient's appointment"
    [text] = messages(session, "waitlist_offer_sms")
    assert text.to == MOBILE and text.channel == "sms" and text.priority
    assert "Wednesday 4 March 2026 at 10:00am" in text.body and "9:16am" in text.body
    for clinical in ("GP appointment", GP.name, "Painful ankle", "Dr "):
        assert clinical not in text.body, "a text says nothing clinical"
    assert messages(session, "waitlist_offer_sms")[0].to != PARENT

    [event] = events(session, "waitlist.offered")
    assert event.patient_id == first.patient.id and event.detail["slot_id"] == "FREED"
    assert event.detail["hold_minutes"] == 15 and event.actor_role == "system"

    assert waitlist.run(uow).offered == 0, "one offer at a time for a time"
    assert len(offers(session)) == 1


def test_without_a_service_address_the_email_says_where_to_go(
    practice: Practice, app: Any, session: Any, uow: Any, fake: FakeClinicalSystem, clock: FixedClock
) -> None:
    uow.settings = {**uow.settings, "SERVICE_URL": ""}
    queue_of_two(uow, session, clock)
    cancel_at_gateway(uow, session, fake)
    waitlist.run(uow)
    [mail] = messages(session, "waitlist_offer")
    assert "sign in to Patient Online and choose Appointments" in mail.body and "/appointments/offers/" not in mail.body
    assert messages(session, "waitlist_offer_sms") == [], "no text: the patient did not choose texts"


def test_one_offer_per_time_and_per_patient(
    practice: Practice, session: Any, uow: Any, fake: FakeClinicalSystem, clock: FixedClock
) -> None:
    first, second = queue_of_two(uow, session, clock)
    cancel_at_gateway(uow, session, fake, FREED)
    cancel_at_gateway(uow, session, fake, FREED_TOO)  # both suit the first patient
    assert waitlist.run(uow).offered == 2
    by_slot = {o.slot_id: offered_to(session, o) for o in offers(session)}
    assert by_slot == {"FREED": first.patient.id, "FREED-TOO": second.patient.id}
    assert waitlist.held_slot_ids(uow, practice.id, second.patient.id) == frozenset({"FREED"})
    assert waitlist.held_slot_ids(uow, practice.id, first.patient.id) == frozenset({"FREED-TOO"})


def test_nobody_else_can_book_a_held_time(
    practice: Practice, session: Any, uow: Any, fake: FakeClinicalSystem, clock: FixedClock
) -> None:
    first, second = queue_of_two(uow, session, clock)
    cancel_at_gateway(uow, session, fake)
    waitlist.run(uow)
    for other in (second, acting_as(session, CANCELLER)):
        with pytest.raises(SlotUnavailable):
            appointments.book_appointment(uow, other, "FREED", "Sore throat", f"k-{other.patient.id}", FREED.start)
    assert "book" not in fake.calls, "refused before the clinical system was asked"
    assert waitlist.held_for_other(uow, practice.id, "FREED", second.patient.id)
    assert not waitlist.held_for_other(uow, practice.id, "FREED", first.patient.id)


def test_the_slot_pages_leave_out_a_time_held_for_someone_else(
    practice: Practice, session: Any, uow: Any, fake: FakeClinicalSystem, clock: FixedClock
) -> None:
    """Only the patient it is held for sees the held time; everyone else sees the rest of the book."""
    first, second = queue_of_two(uow, session, clock)
    cancel_at_gateway(uow, session, fake, FREED)
    cancel_at_gateway(uow, session, fake, FREED_TOO)
    waitlist.run(uow)  # FREED held for the first patient, FREED-TOO for the second
    wednesday = FREED.start.date()

    def shown(current: Acting) -> dict[str, set[str]]:
        week = appointments.find_slots(uow, current, appointments.SlotFilter(start_day=wednesday))
        day = appointments.find_times(uow, current, appointments.SlotFilter(), wednesday)
        return {"week": {s.id for d in week.days for s in d.slots}, "day": {s.id for s in day.slots}}

    assert shown(first) == {"week": {"FREED"}, "day": {"FREED"}}
    assert shown(second) == {"week": {"FREED-TOO"}, "day": {"FREED-TOO"}}
    assert shown(acting_as(session, CANCELLER)) == {"week": set(), "day": set()}


def test_a_hold_not_taken_moves_to_the_next_patient_and_never_comes_back(
    practice: Practice, session: Any, uow: Any, fake: FakeClinicalSystem, clock: FixedClock
) -> None:
    first, second = queue_of_two(uow, session, clock)
    join(uow, first)  # any time now: the freed time suits both
    cancel_at_gateway(uow, session, fake)
    waitlist.run(uow)
    [held] = offers(session)
    assert offered_to(session, held) == first.patient.id

    clock.advance(minutes=15, seconds=1)
    assert waitlist.offer_for(uow, first, held.id).status == OfferStatus.EXPIRED, "shown ended before the worker runs"
    report = waitlist.run(uow)
    assert (report.expired, report.offered) == (1, 1)
    expired, moved = offers(session)
    assert expired.status == OfferStatus.EXPIRED and expired.live_key is None and expired.decided_at == clock.now()
    assert offered_to(session, moved) == second.patient.id and moved.slot_id == "FREED"
    assert entry_of(session, first).status == EntryStatus.WAITING, "still on the list"
    [event] = events(session, "waitlist.offer_expired")
    assert event.patient_id == first.patient.id and event.detail["offer_id"] == held.id

    clock.advance(minutes=15, seconds=1)
    report = waitlist.run(uow)
    assert (report.expired, report.offered) == (1, 0), "never offered again to the first patient"
    assert [o.status for o in offers(session)] == [OfferStatus.EXPIRED, OfferStatus.EXPIRED]
    clock.advance(minutes=5)
    assert waitlist.run(uow).offered == 0
    assert {e.status for e in (entry_of(session, first), entry_of(session, second))} == {EntryStatus.WAITING}


def test_an_offer_the_patient_began_accepting_as_the_worker_looked_is_left_to_its_booking(
    practice: Practice, session: Any, uow: Any, fake: FakeClinicalSystem, clock: FixedClock
) -> None:
    """The worker saw the hold run out; before it ended the offer, the patient's accept (on another node, whose
    clock is a moment behind) took it. The worker leaves it alone: the time is not offered to anyone else."""
    first, _second = queue_of_two(uow, session, clock)
    cancel_at_gateway(uow, session, fake)
    waitlist.run(uow)
    [held] = offers(session)
    clock.advance(minutes=15, seconds=1)
    real_writing = uow.writing

    def accepted_meanwhile() -> None:  # the accept's transaction commits between the worker's two
        session.execute(update(SlotOffer).where(SlotOffer.id == held.id).values(status=waitlist.ACCEPTING))
        session.commit()
        real_writing()

    uow.writing = accepted_meanwhile
    try:
        report = waitlist.run(uow)
    finally:
        uow.writing = real_writing
    assert (report.expired, report.offered) == (0, 0)
    [still] = offers(session)
    assert still.status == waitlist.ACCEPTING and still.live_key is not None
    assert entry_of(session, first).status == EntryStatus.OFFERED


def test_nobody_is_offered_a_time_for_a_patient_they_can_no_longer_book_for(
    practice: Practice, session: Any, uow: Any, fake: FakeClinicalSystem, clock: FixedClock
) -> None:
    """The account that joined was closed, and the proxy's link ended: their entries end quietly (audited), and
    the time goes to the next person it suits."""
    first = acting_as(session, PATIENT)
    join(uow, first)
    child = acting_as(session, PARENT, child=True)
    clock.advance(minutes=1)
    join(uow, child)
    clock.advance(minutes=1)
    last = acting_as(session, CANCELLER)
    join(uow, last)
    first.user.active = False
    assert child.proxy is not None
    child.proxy.status = "ended"
    session.commit()
    cancel_at_gateway(uow, session, fake)
    assert waitlist.run(uow).offered == 1
    [offer] = offers(session)
    assert offered_to(session, offer) == last.patient.id
    assert {entry_of(session, c).status for c in (first, child)} == {EntryStatus.ENDED}
    ended = events(session, "waitlist.ended")
    assert {e.patient_id for e in ended} == {first.patient.id, child.patient.id}
    assert {e.detail["because"] for e in ended} == {"no_longer_allowed"}
    assert [m.to for m in messages(session, "waitlist_offer")] == [CANCELLER]


def test_changing_which_appointment_to_move_gives_up_the_offer_held_for_the_other(
    practice: Practice, session: Any, uow: Any, fake: FakeClinicalSystem, clock: FixedClock
) -> None:
    """Otherwise accepting would move the appointment the offer was not made for."""
    current = acting_as(session, PATIENT)
    first_choice = booked_for(fake, current, OWN)  # Thursday 12 March
    join(uow, current, replacing=first_choice.id, weeks=4)
    cancel_at_gateway(uow, session, fake)  # Wednesday 4 March: earlier than Thursday 12th
    waitlist.run(uow)
    [offer] = offers(session)
    second_choice = booked_for(fake, current, OWN_EARLY)  # Tuesday 3 March
    join(uow, current, replacing=second_choice.id, weeks=4)
    [given_up] = offers(session)
    assert given_up.status == OfferStatus.DECLINED and given_up.live_key is None
    assert entry_of(session, current).status == EntryStatus.WAITING
    [event] = events(session, "waitlist.offer_declined")
    assert event.detail["because"] == "changed"
    with pytest.raises(waitlist.OfferEnded):
        waitlist.accept_offer(uow, current, offer.id, "Follow-up")
    assert fake.appointments[f"k-{OWN_EARLY.id}"][1].status == AppointmentStatus.BOOKED


def test_join_to_move_an_appointment_too_close_to_change_online_is_refused(
    practice: Practice, session: Any, uow: Any, fake: FakeClinicalSystem, clock: FixedClock
) -> None:
    current = acting_as(session, PATIENT)
    tomorrow = booked_for(fake, current, slot("TOMORROW", NOW + dt.timedelta(hours=20)))
    with pytest.raises(CancellationRefused, match="less than 24 hours away"):
        join(uow, current, replacing=tomorrow.id)
    with pytest.raises(CancellationRefused):
        waitlist.waitlist_page(uow, current, replacing=tomorrow.id)
    assert entry_of(session, current) is None


def test_a_shorter_hold_set_by_the_practice(
    practice: Practice, session: Any, uow: Any, fake: FakeClinicalSystem, clock: FixedClock
) -> None:
    practice.waitlist_hold_minutes = 5
    session.commit()
    queue_of_two(uow, session, clock)
    cancel_at_gateway(uow, session, fake)
    waitlist.run(uow)
    [offer] = offers(session)
    assert offer.hold_until == clock.now() + dt.timedelta(minutes=5)


def test_two_workers_racing_offer_a_time_once(
    practice: Practice, session: Any, uow: Any, fake: FakeClinicalSystem, clock: FixedClock
) -> None:
    """What a second worker does when it decided on the same time a moment after the first offered it."""
    first, second = queue_of_two(uow, session, clock)
    cancel_at_gateway(uow, session, fake)
    waitlist.run(uow)
    [offer] = offers(session)
    late = entry_of(session, second)
    assert waitlist._offer(uow, practice, late.id, FREED) is False, "the time is held already"
    assert entry_of(session, second).status == EntryStatus.WAITING, "their place is untouched"
    held = entry_of(session, first)
    assert waitlist._offer(uow, practice, held.id, FREED_TOO) is False, "one offer at a time per patient"
    assert [o.id for o in offers(session)] == [offer.id]
    assert len(events(session, "waitlist.offered")) == 1
    assert len(messages(session, "waitlist_offer")) == 1


def test_a_reschedule_frees_the_old_time_for_the_queue(
    practice: Practice, session: Any, uow: Any, fake: FakeClinicalSystem, clock: FixedClock
) -> None:
    practice.max_future_appointments = 5  # the other patient holds three appointments
    session.commit()
    current = acting_as(session, PATIENT)
    join(uow, current, {2}, {"morning"})  # Wednesday mornings only
    moved_to = slot("THU-PM", dt.datetime(2026, 3, 5, 15, 0, tzinfo=dt.UTC))  # suits nobody waiting
    fake.slots[moved_to.id] = moved_to
    assert waitlist.run(uow).offered == 0
    other = acting_as(session, CANCELLER)
    appointments.reschedule_appointment(uow, other, "A-FREED", moved_to.id, "Review", "k-move", at=moved_to.start)
    assert waitlist.run(uow).offered == 1
    [offer] = offers(session)
    assert offer.slot_id == "FREED" and offered_to(session, offer) == current.patient.id


def test_flask_waitlist_run(app: Any, practice: Practice) -> None:
    result = app.test_cli_runner().invoke(args=["waitlist", "run"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("earlier appointments: offered 0")


# The patient's answer --------------------------------------------------------------------------------------
def test_accept_books_the_time_and_ends_the_entry(
    practice: Practice, session: Any, uow: Any, fake: FakeClinicalSystem, clock: FixedClock
) -> None:
    first, second = queue_of_two(uow, session, clock)
    cancel_at_gateway(uow, session, fake)
    waitlist.run(uow)
    [offer] = offers(session)
    view = waitlist.offer_for(uow, first, offer.id)
    assert view.live and view.slot.id == "FREED" and view.replacing_ref == "" and view.practice_name == practice.name

    clock.advance(minutes=10)
    appointment = waitlist.accept_offer(uow, first, offer.id, "Blood pressure check").appointment
    assert appointment.slot.id == "FREED" and appointment.status == AppointmentStatus.BOOKED
    mine = [a for ref, a in fake.appointments.values() if ref.nhs_number == first.ref.nhs_number]
    assert [(a.slot.id, a.status) for a in mine] == [("FREED", AppointmentStatus.BOOKED)]
    [offer] = offers(session)
    assert offer.status == OfferStatus.ACCEPTED and offer.appointment_ref == appointment.id and offer.live_key is None
    entry = entry_of(session, first)
    assert entry.status == EntryStatus.BOOKED and entry.active_key is None and entry.ended_at == clock.now()
    [event] = events(session, "waitlist.offer_accepted")
    assert event.patient_id == first.patient.id and event.detail["appointment_id"] == appointment.id
    assert "Blood pressure" not in str(event.detail)
    assert len(events(session, "appointment.booked")) == 1

    again = waitlist.accept_offer(uow, first, offer.id, "Blood pressure check").appointment  # pressed again
    assert again.id == appointment.id
    assert fake.calls.count("book") == 1
    clock.advance(minutes=20)
    assert waitlist.run(uow).offered == 0, "the time is booked: offered to nobody"
    assert entry_of(session, second).status == EntryStatus.WAITING
    assert waitlist.waitlist_page(uow, first).entry is None, "they may ask again"


def test_accept_replacing_an_appointment_moves_it(
    practice: Practice, session: Any, uow: Any, fake: FakeClinicalSystem, clock: FixedClock
) -> None:
    current = acting_as(session, PATIENT)
    old = booked_for(fake, current, OWN)
    booked_for(fake, current, slot("OWN-TOO", dt.datetime(2026, 3, 20, 9, 0, tzinfo=dt.UTC)))  # at the most of 2
    page = waitlist.waitlist_page(uow, current, replacing=old.id)
    assert page.enabled and page.replacing is not None and page.replacing.id == old.id
    join(uow, current, replacing=old.id, weeks=4)
    entry = entry_of(session, current)
    assert entry.replacing_ref == old.id and entry.replacing_start == OWN.start
    cancel_at_gateway(uow, session, fake)
    waitlist.run(uow)
    [offer] = offers(session)
    [mail] = messages(session, "waitlist_offer")
    assert "your appointment on Thursday 12 March 2026 at 10:00am will be cancelled" in mail.body
    view = waitlist.offer_for(uow, current, offer.id)
    assert view.replacing_ref == old.id and view.replacing_start == OWN.start

    before = len(fake.calls)
    new = waitlist.accept_offer(uow, current, offer.id, "Follow-up").appointment
    statuses = {
        a.slot.id: a.status for ref, a in fake.appointments.values() if ref.nhs_number == current.ref.nhs_number
    }
    assert statuses == {
        "FREED": AppointmentStatus.BOOKED,
        "OWN": AppointmentStatus.CANCELLED,
        "OWN-TOO": AppointmentStatus.BOOKED,
    }
    assert new.slot.id == "FREED"
    assert fake.calls[before:].index("book") < fake.calls[before:].index("cancel"), (
        "booked first, then the later one cancelled"
    )
    [event] = events(session, "waitlist.offer_accepted")
    assert event.detail["replaced"] == old.id
    assert len(events(session, "appointment.rescheduled")) == 1


def test_only_earlier_times_are_offered_for_a_replacement(
    practice: Practice, session: Any, uow: Any, fake: FakeClinicalSystem, clock: FixedClock
) -> None:
    current = acting_as(session, PATIENT)
    old = booked_for(fake, current, OWN_EARLY)  # Tuesday 3 March
    join(uow, current, replacing=old.id, weeks=4)
    cancel_at_gateway(uow, session, fake, LATER)  # later than what they hold
    assert waitlist.run(uow).offered == 0
    assert offers(session) == []


def test_accept_when_the_clinical_system_fails_keeps_the_hold_to_try_again(
    practice: Practice, session: Any, uow: Any, fake: FakeClinicalSystem, clock: FixedClock
) -> None:
    first, _second = queue_of_two(uow, session, clock)
    cancel_at_gateway(uow, session, fake)
    waitlist.run(uow)
    [offer] = offers(session)
    fake.fail_next["book"] = ClinicalSystemUnavailable()
    with pytest.raises(BookingFailed):
        waitlist.accept_offer(uow, first, offer.id, "Earlier please")
    [offer] = offers(session)
    assert offer.status == OfferStatus.HELD and offer.live_key is not None, "still held for them"
    assert waitlist.run(uow).offered == 0
    booked = waitlist.accept_offer(uow, first, offer.id, "Earlier please").appointment
    assert booked.slot.id == "FREED" and offers(session)[0].status == OfferStatus.ACCEPTED


def test_accept_when_the_appointment_it_replaces_has_gone_books_it(
    practice: Practice, session: Any, uow: Any, fake: FakeClinicalSystem, clock: FixedClock
) -> None:
    current = acting_as(session, PATIENT)
    old = booked_for(fake, current, OWN)
    join(uow, current, replacing=old.id, weeks=4)
    appointments.cancel_appointment(uow, current, old.id, "")  # cancelled meanwhile, the entry still says so
    cancel_at_gateway(uow, session, fake)
    waitlist.run(uow)
    [offer] = offers(session)
    booked = waitlist.accept_offer(uow, current, offer.id, "Earlier please").appointment
    assert booked.slot.id == "FREED" and booked.status == AppointmentStatus.BOOKED
    assert offers(session)[0].status == OfferStatus.ACCEPTED


def test_accept_after_the_hold_has_ended(
    practice: Practice, session: Any, uow: Any, fake: FakeClinicalSystem, clock: FixedClock
) -> None:
    first, _second = queue_of_two(uow, session, clock)
    cancel_at_gateway(uow, session, fake)
    waitlist.run(uow)
    [offer] = offers(session)
    clock.advance(minutes=15)
    with pytest.raises(waitlist.OfferEnded) as ended:
        waitlist.accept_offer(uow, first, offer.id, "Too late")
    assert ended.value.http_status == 409
    assert "book" not in fake.calls
    waitlist.run(uow)  # the worker ends it, and offers it on
    with pytest.raises(waitlist.OfferEnded):
        waitlist.accept_offer(uow, first, offer.id, "Too late")
    assert "book" not in fake.calls
    assert entry_of(session, first).status == EntryStatus.WAITING


def test_a_time_taken_at_the_practice_meanwhile(
    practice: Practice, session: Any, uow: Any, fake: FakeClinicalSystem, clock: FixedClock
) -> None:
    first, _second = queue_of_two(uow, session, clock)
    cancel_at_gateway(uow, session, fake)
    waitlist.run(uow)
    [offer] = offers(session)
    fake.book(acting_as(session, CANCELLER).ref, "FREED", "Booked by phone", "at-the-desk")  # not through us
    with pytest.raises(SlotUnavailable, match="still on the list"):
        waitlist.accept_offer(uow, first, offer.id, "Earlier please")
    [offer] = offers(session)
    assert offer.status == OfferStatus.GONE and offer.live_key is None
    entry = entry_of(session, first)
    assert entry.status == EntryStatus.WAITING and entry.active_key is not None, "still on the list"
    [event] = events(session, "waitlist.offer_ended")
    assert event.patient_id == first.patient.id and event.detail["outcome"] == OfferStatus.GONE
    assert waitlist.run(uow).offered == 0, "the time has gone"


def test_decline_passes_it_on(
    practice: Practice, session: Any, uow: Any, fake: FakeClinicalSystem, clock: FixedClock
) -> None:
    first, second = queue_of_two(uow, session, clock)
    cancel_at_gateway(uow, session, fake)
    waitlist.run(uow)
    [offer] = offers(session)
    with pytest.raises(NotFound):
        waitlist.decline_offer(uow, second, offer.id)  # nobody answers another's offer
    waitlist.decline_offer(uow, first, offer.id)
    [declined] = offers(session)
    assert declined.status == OfferStatus.DECLINED and declined.live_key is None
    assert entry_of(session, first).status == EntryStatus.WAITING
    [event] = events(session, "waitlist.offer_declined")
    assert event.patient_id == first.patient.id
    assert waitlist.run(uow).offered == 1
    moved = offers(session)[-1]
    assert offered_to(session, moved) == second.patient.id and moved.slot_id == "FREED"


def test_leave_gives_up_the_offer(
    practice: Practice, session: Any, uow: Any, fake: FakeClinicalSystem, clock: FixedClock
) -> None:
    first, second = queue_of_two(uow, session, clock)
    cancel_at_gateway(uow, session, fake)
    waitlist.run(uow)
    assert waitlist.leave(uow, first) is True
    entry = entry_of(session, first)
    assert entry.status == EntryStatus.LEFT and entry.active_key is None
    assert offers(session)[0].status == OfferStatus.DECLINED
    assert len(events(session, "waitlist.left")) == 1
    assert waitlist.leave(uow, first) is False, "not on the list any more"
    assert len(events(session, "waitlist.left")) == 1
    waitlist.run(uow)
    assert offered_to(session, offers(session)[-1]) == second.patient.id


def test_an_offer_belongs_to_its_patient(
    practice: Practice, session: Any, uow: Any, fake: FakeClinicalSystem, clock: FixedClock
) -> None:
    first, second = queue_of_two(uow, session, clock)
    cancel_at_gateway(uow, session, fake)
    waitlist.run(uow)
    [offer] = offers(session)
    with pytest.raises(NotFound):
        waitlist.offer_for(uow, second, offer.id)
    with pytest.raises(NotFound):
        waitlist.accept_offer(uow, second, offer.id, "Mine now")
    assert offers(session)[0].status == OfferStatus.HELD
    page = waitlist.waitlist_page(uow, first)
    assert page.offer is not None and page.offer.id == offer.id and page.entry is not None


# The list ending -------------------------------------------------------------------------------------------
def test_the_practice_turning_the_list_off_ends_the_entries(
    practice: Practice, session: Any, uow: Any, fake: FakeClinicalSystem, clock: FixedClock
) -> None:
    first, second = queue_of_two(uow, session, clock)
    practice.waitlist_enabled = False
    session.commit()
    assert waitlist.run(uow).ended == 2
    assert {entry_of(session, a).status for a in (first, second)} == {EntryStatus.ENDED}
    assert {entry_of(session, a).active_key for a in (first, second)} == {None}
    assert {e.patient_id for e in events(session, "waitlist.ended")} == {first.patient.id, second.patient.id}
    cancel_at_gateway(uow, session, fake)
    assert waitlist.run(uow).offered == 0
    assert not waitlist.waitlist_page(uow, first).enabled


def test_entries_past_their_last_day_end(
    practice: Practice, session: Any, uow: Any, fake: FakeClinicalSystem, clock: FixedClock
) -> None:
    current = acting_as(session, PATIENT)
    join(uow, current, weeks=1)  # until Monday 9 March
    clock.advance(days=7)
    assert waitlist.run(uow).ended == 0, "the last day itself still counts"
    clock.advance(days=1)
    assert waitlist.run(uow).ended == 1
    entry = entry_of(session, current)
    assert entry.status == EntryStatus.ENDED and entry.ended_at == clock.now()
    [event] = events(session, "waitlist.ended")
    assert event.patient_id == current.patient.id and event.detail["entry_id"] == entry.id


# Figures for the uptake report -----------------------------------------------------------------------------
def test_figures_count_offers_and_slots_filled(
    practice: Practice, session: Any, uow: Any, fake: FakeClinicalSystem, clock: FixedClock
) -> None:
    first, second = queue_of_two(uow, session, clock)
    join(uow, first)
    cancel_at_gateway(uow, session, fake)
    waitlist.run(uow)
    clock.advance(minutes=16)
    waitlist.run(uow)  # moves on to the second patient
    [_, held] = offers(session)
    waitlist.accept_offer(uow, second, held.id, "Earlier please")
    real_now = dt.datetime.now(dt.UTC)  # audit events carry the real time
    day = dt.timedelta(days=1)
    assert waitlist.figures(uow, practice.id, real_now - day, real_now + day) == (2, 1)
    assert waitlist.figures(uow, practice.id, real_now + day, real_now + 2 * day) == (0, 0)
    other = session.scalars(select(Practice).where(Practice.ods_code == "Y02002")).one()
    assert waitlist.figures(uow, other.id, real_now - day, real_now + day) == (0, 0)


# A time freed in the clinical system itself ----------------------------------------------------------------
@pytest.fixture
def demo_book_full(practice: Practice, session: Any, uow: Any) -> Iterator[FixedClock]:
    """The demo clinical system (real time, as it books by the real time) with every free time taken."""
    session.execute(
        update(DemoSlot).where(DemoSlot.practice_ods == "Y02001", DemoSlot.status == "free").values(status="booked")
    )
    session.commit()
    uow.clock = FixedClock(dt.datetime.now(dt.UTC))
    yield uow.clock


def test_a_time_freed_in_the_clinical_system_is_found_on_the_periodic_look(
    demo_book_full: FixedClock, practice: Practice, app: Any, session: Any, uow: Any
) -> None:
    clock = demo_book_full
    current = acting_as(session, PATIENT)
    join(uow, current, weeks=4)
    assert waitlist.run(uow).looked == 1
    assert offers(session) == []

    # The practice cancels someone's appointment at its own desk: nothing tells the gateway.
    now = clock.now()
    freed = session.execute(
        select(DemoAppointment, DemoSlot)
        .join(DemoSlot, DemoSlot.id == DemoAppointment.slot_id)
        .where(
            DemoSlot.practice_ods == "Y02001",
            DemoAppointment.status == "booked",
            DemoAppointment.patient_id != current.ref.clinical_id,
            DemoSlot.slot_type.in_(list(practice.online_slot_types)),
            DemoSlot.start > now + dt.timedelta(days=1),
            DemoSlot.start < now + dt.timedelta(days=14),
        )
        .order_by(DemoSlot.start)
        .limit(1)
    ).one()
    appointment, freed_slot = freed
    appointment.status, appointment.cancelled_at = "cancelled", now
    freed_slot.status = "free"
    session.commit()

    clock.advance(seconds=30)
    report = waitlist.run(uow)
    assert (report.looked, report.offered) == (0, 0), "not searched again before WAITLIST_LOOK_SECONDS"
    clock.advance(seconds=31)
    report = waitlist.run(uow)
    assert (report.looked, report.offered) == (1, 1)
    [offer] = offers(session)
    assert offer.slot_id == freed_slot.id and offered_to(session, offer) == current.patient.id

    booked = waitlist.accept_offer(uow, current, offer.id, "Earlier please").appointment
    session.expire_all()
    assert session.get_one(DemoSlot, freed_slot.id).status == "booked"
    assert session.get_one(DemoAppointment, booked.id).slot_id == freed_slot.id
