"""Earlier appointments (the waitlist, issue rule: a freed time goes to whoever asked first, not to whoever looks
next). The rules themselves are in ``domain/waitlist.py``; this module keeps the queue and the offers.

- A patient (or a proxy for them) ``join``s the practice's list with what they can do, perhaps to replace an
  appointment they hold; one active entry per patient (``waitlist_entry.active_key``).
- The worker (``run``, inside ``flask outbox run`` or ``flask waitlist run``) ends holds that ran out, ends
  entries whose time has passed, and searches each practice's book when it is due: at once after a cancellation
  at the gateway (``look_soon``), and every ``WAITLIST_LOOK_SECONDS`` (default 60) for times freed in the
  clinical system itself. Each free time that suits someone is offered to the first patient in the queue it
  suits, by their chosen channels, and held for the practice's hold (default 15 minutes).
- A slot is never offered to two people at once: ``slot_offer.live_key`` is unique while an offer is held, so
  two workers on two nodes cannot both insert one; a patient holds one offer at a time (a conditional update of
  their entry). While an offer is held, the slot pages leave the time out for everyone else and booking it
  through the gateway is refused (``held_slot_ids``, ``held_for_other``); a booking already past that check
  when the offer is made may still take it, and accepting then ends the offer as gone.
- Before a time is offered, the person who joined must still be able to book for the patient online (account
  open, link active, appointments on); if not, their entry ends quietly. A time is never offered to move an
  appointment already inside the practice's cancellation cutoff: it could not be moved.
- ``accept_offer`` books the time (moving the patient's later appointment, booking first and cancelling after,
  as rescheduling does); the clinical system refuses a second booking of a time, so it is never booked twice.
  An offer not answered in time, or declined, moves on to the next patient; nobody is offered the same time
  twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from patient_online.domain.access import Service
from patient_online.domain.appointments import (
    LONDON,
    Appointment,
    AppointmentStatus,
    CancellationRefused,
    Clinician,
    DeliveryMode,
    Slot,
    SlotQuery,
    is_upcoming,
)
from patient_online.domain.errors import (
    ClinicalSystemError,
    DomainError,
    InputError,
    NotAllowed,
    NotFound,
    SlotUnavailable,
)
from patient_online.domain.waitlist import (
    ACTIVE_ENTRY,
    DayPart,
    EntryStatus,
    OfferStatus,
    Waiting,
    Wish,
    describe_wish,
    first_in_queue,
    hold_minutes,
    weeks_ahead_choices,
    wish_until,
)
from patient_online.models import AuditEvent, Practice, SlotOffer, User, WaitlistEntry, WaitlistLook

from . import contact_preferences as contact
from .access import Acting, acting_for
from .appointments.common import call, describe, rules_for, when
from .unit_of_work import AbstractUnitOfWork

log = logging.getLogger("patient_online.waitlist")
_Row = TypeVar("_Row", bound=tuple[Any, ...])

DEFAULT_LOOK_SECONDS = 60.0
ACCEPTING = "accepting"  # an offer being booked now: not expired under the booking's feet
STUCK_ACCEPTING = dt.timedelta(minutes=10)  # an accept whose node died: the offer ends after this
LIVE_OFFER = (OfferStatus.HELD.value, ACCEPTING)


class WaitlistOff(DomainError):
    message = (
        "Your GP practice does not offer earlier appointments online. To ask for an earlier appointment, call them."
    )
    http_status = 403


class OfferEnded(DomainError):
    message = "This offer has ended: the time was held for you for a short while only. You are still on the list."
    http_status = 409


class OfferBeingBooked(DomainError):
    message = "We are booking this appointment for you now. Look at your appointments in a minute."
    http_status = 409


# What the pages show ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EntryView:
    id: int
    status: str
    wish: Wish
    description: str
    joined_at: dt.datetime
    replacing_ref: str


@dataclass(frozen=True)
class OfferView:
    id: int
    status: str
    slot: Slot
    hold_until: dt.datetime
    replacing_ref: str
    replacing_start: dt.datetime | None
    practice_name: str

    @property
    def live(self) -> bool:
        return self.status == OfferStatus.HELD


@dataclass(frozen=True)
class WaitlistPage:
    """The "earlier appointment" page: whether the practice offers it, the patient's entry and any offer."""

    enabled: bool
    entry: EntryView | None
    offer: OfferView | None
    slot_types: list[str]
    weeks: list[int]
    hold_minutes: int
    replacing: Appointment | None


def _active_key(practice_id: int, patient_id: int) -> str:
    return f"{practice_id}:{patient_id}"


def _live_key(practice_id: int, slot_id: str) -> str:
    return f"{practice_id}:{slot_id}"[:200]


def _wish(entry: WaitlistEntry) -> Wish:
    return Wish(
        slot_type=entry.slot_type,
        weekdays=frozenset(int(d) for d in entry.weekdays or ()),
        parts=frozenset(DayPart(p) for p in entry.parts or ()),
        until=entry.until,
        earlier_than=entry.replacing_start,
    )


def _entry_view(entry: WaitlistEntry) -> EntryView:
    wish = _wish(entry)
    return EntryView(entry.id, entry.status, wish, describe_wish(wish), entry.created_at, entry.replacing_ref)


def _slot(offer: SlotOffer) -> Slot:
    return Slot(
        id=offer.slot_id,
        start=offer.slot_start,
        end=offer.slot_end,
        slot_type=offer.slot_type,
        clinician=Clinician(id="", name=offer.clinician, role=offer.clinician_role),
        delivery_mode=DeliveryMode(offer.delivery_mode) if offer.delivery_mode else DeliveryMode.FACE_TO_FACE,
        location=offer.location,
    )


def _offer_view(offer: SlotOffer, entry: WaitlistEntry, practice: Practice) -> OfferView:
    return OfferView(
        offer.id,
        offer.status,
        _slot(offer),
        offer.hold_until,
        entry.replacing_ref,
        entry.replacing_start,
        practice.name,
    )


def _active_entry(uow: AbstractUnitOfWork, acting: Acting, lock: bool = False) -> WaitlistEntry | None:
    """The patient's entry on the list; with ``lock``, locked for this transaction's change (PostgreSQL: SQLite's
    write transaction holds the whole database already)."""
    stmt = select(WaitlistEntry).where(WaitlistEntry.active_key == _active_key(acting.practice.id, acting.patient.id))
    return uow.session.scalar(_fresh(stmt, lock))


def _held_offer(uow: AbstractUnitOfWork, entry: WaitlistEntry, lock: bool = False) -> SlotOffer | None:
    stmt = select(SlotOffer).where(SlotOffer.entry_id == entry.id, SlotOffer.status.in_(LIVE_OFFER))
    return uow.session.scalar(_fresh(stmt, lock))


def _fresh(stmt: Select[_Row], lock: bool) -> Select[_Row]:
    """Rows as the database holds them now (not as this session saw them earlier), locked when asked."""
    stmt = stmt.execution_options(populate_existing=True)
    return stmt.with_for_update() if lock else stmt


def waitlist_page(uow: AbstractUnitOfWork, acting: Acting, replacing: str | None = None) -> WaitlistPage:
    """What the patient's "earlier appointment" page shows; ``replacing`` is the appointment they want earlier."""
    acting.require(Service.APPOINTMENTS)
    practice = acting.practice
    rules = rules_for(practice)
    entry = _active_entry(uow, acting)
    offer = _held_offer(uow, entry) if entry is not None else None
    entry_view = _entry_view(entry) if entry is not None else None
    offer_view = _offer_view(offer, entry, practice) if offer is not None and entry is not None else None
    page = WaitlistPage(
        enabled=bool(practice.waitlist_enabled),
        entry=entry_view,
        offer=offer_view,
        slot_types=sorted(rules.online_slot_types),
        weeks=weeks_ahead_choices(rules.horizon_days),
        hold_minutes=hold_minutes(practice.waitlist_hold_minutes),
        replacing=None,
    )
    if replacing and page.enabled:
        page = replace(page, replacing=_upcoming(uow, acting, replacing))
    else:
        uow.release()
    return page


def _upcoming(uow: AbstractUnitOfWork, acting: Acting, appointment_id: str) -> Appointment:
    """One of the patient's upcoming appointments, from the clinical system (no transaction open)."""
    uow.release()
    now = uow.now()
    system = uow.clinical(acting.practice)
    found = next(
        (a for a in system.list_appointments(acting.ref, now) if a.id == appointment_id and is_upcoming(a, now)),
        None,
    )
    if found is None:
        raise NotFound("We could not find that appointment in your upcoming appointments.")
    refusal = rules_for(acting.practice).cancel_refusal(found, now)
    if refusal:
        raise CancellationRefused(
            f"You cannot ask for an earlier time for this appointment online because {refusal}. "
            f"To change it, {call(acting.practice)}."
        )
    return found


# The patient's requests ------------------------------------------------------------------------------------
def join(
    uow: AbstractUnitOfWork,
    acting: Acting,
    *,
    slot_type: str,
    weekdays: set[int],
    parts: set[str],
    weeks: int,
    replacing: str | None = None,
) -> EntryView:
    """Put the patient on the practice's list (or change what they asked for, keeping their place)."""
    acting.require(Service.APPOINTMENTS)
    practice = acting.practice
    if not practice.waitlist_enabled:
        raise WaitlistOff()
    rules = rules_for(practice)
    if slot_type and slot_type not in rules.online_slot_types:
        raise InputError("Choose a type of appointment from the list", "slot_type")
    try:
        wanted_parts = {DayPart(p) for p in parts}
    except ValueError:
        raise InputError("Choose the times of day you can come from the list", "parts") from None
    until = wish_until(uow.today(), weeks, rules.horizon_days)
    old = _upcoming(uow, acting, replacing) if replacing else None
    wish = Wish(slot_type, frozenset(weekdays), frozenset(wanted_parts), until, old.slot.start if old else None)

    uow.writing()
    entry = _active_entry(uow, acting, lock=True)
    joined = entry is None
    if entry is None:
        entry = WaitlistEntry(
            practice_id=practice.id,
            patient_id=acting.patient.id,
            active_key=_active_key(practice.id, acting.patient.id),
            status=EntryStatus.WAITING.value,
            created_at=uow.now(),
        )
        uow.session.add(entry)
    elif entry.replacing_ref != (old.id if old else ""):
        _give_up_held_offer(uow, acting, entry)  # it was offered to move the other appointment
    entry.user_id = acting.user.id
    entry.actor_role = acting.actor_role
    entry.slot_type = wish.slot_type
    entry.weekdays = sorted(wish.weekdays)
    entry.parts = [p.value for p in DayPart if p in wish.parts]
    entry.until = wish.until
    entry.replacing_ref = old.id if old else ""
    entry.replacing_start = old.slot.start if old else None
    try:
        uow.flush()
    except IntegrityError:  # a twin request put them on the list a moment ago
        uow.rollback()
        found = _active_entry(uow, acting)
        if found is None:
            raise
        view = _entry_view(found)
        uow.commit()
        return view
    _audit(
        uow,
        "waitlist.joined" if joined else "waitlist.changed",
        acting,
        entry,
        slot_type=wish.slot_type,
        weekdays=entry.weekdays,
        parts=entry.parts,
        until=wish.until.isoformat(),
        replacing=entry.replacing_ref,
    )
    look_soon(uow, practice.id)
    view = _entry_view(entry)
    if joined:  # a change of what they asked for is shown on the page; no message
        _tell(
            uow,
            acting.user,
            practice,
            "waitlist_joined",
            "You are on the list for an earlier GP appointment",
            [
                f"We will offer you an earlier appointment{_for(acting)} at {practice.name} if one becomes free: "
                f"{view.description}.",
                "When we find one we will email you (and text you, if you chose texts for appointments). The time "
                f"is held for you for {hold_minutes(practice.waitlist_hold_minutes)} minutes: accept it in that time "
                "or it is offered to the next person.",
            ],
            key=f"waitlist-joined:{entry.id}",
        )
    uow.commit()
    return view


def _give_up_held_offer(uow: AbstractUnitOfWork, acting: Acting, entry: WaitlistEntry) -> None:
    """The patient changed which appointment they want moved: an offer held for the other one goes to the next
    person (one being booked finishes as it began)."""
    offer = _held_offer(uow, entry, lock=True)
    if offer is None or offer.status != OfferStatus.HELD:
        return
    _end_offer(offer, OfferStatus.DECLINED, uow.now())
    entry.status = EntryStatus.WAITING.value
    _audit(uow, "waitlist.offer_declined", acting, entry, offer_id=offer.id, because="changed")


def leave(uow: AbstractUnitOfWork, acting: Acting) -> bool:
    """Take the patient off the list (and give up any offer they hold); False when they were not on it."""
    acting.require(Service.APPOINTMENTS)
    uow.writing()
    entry = _active_entry(uow, acting, lock=True)
    if entry is None:
        uow.commit()
        return False
    offer = _held_offer(uow, entry, lock=True)
    if offer is not None and offer.status == OfferStatus.HELD:
        _end_offer(offer, OfferStatus.DECLINED, uow.now())
    _end_entry(entry, EntryStatus.LEFT, uow.now())
    _audit(uow, "waitlist.left", acting, entry)
    look_soon(uow, acting.practice.id)
    uow.commit()
    return True


def offer_for(uow: AbstractUnitOfWork, acting: Acting, offer_id: int) -> OfferView:
    """One offer made to the patient (any state), for its page; NotFound for anyone else's."""
    acting.require(Service.APPOINTMENTS)
    offer, entry = _mine(uow, acting, offer_id)
    view = _offer_view(offer, entry, acting.practice)
    if view.live and view.hold_until <= uow.now():
        view = replace(view, status=OfferStatus.EXPIRED.value)  # the worker has not ended it yet
    uow.release()
    return view


def _mine(
    uow: AbstractUnitOfWork, acting: Acting, offer_id: int, lock: bool = False
) -> tuple[SlotOffer, WaitlistEntry]:
    stmt = (
        select(SlotOffer, WaitlistEntry)
        .join(WaitlistEntry, WaitlistEntry.id == SlotOffer.entry_id)
        .where(
            SlotOffer.id == offer_id,
            WaitlistEntry.patient_id == acting.patient.id,
            WaitlistEntry.practice_id == acting.practice.id,
        )
    )
    row = uow.session.execute(_fresh(stmt, lock)).first()
    if row is None:
        raise NotFound("We could not find that offer.")
    return row[0], row[1]


@dataclass(frozen=True)
class Accepted:
    """What accepting an offer did: the new appointment, and whether the later one it replaced is cancelled
    (False only when its cancellation failed: the patient holds both, and has been told which to cancel)."""

    appointment: Appointment
    replaced_cancelled: bool = True


def accept_offer(uow: AbstractUnitOfWork, acting: Acting, offer_id: int, reason: str) -> Accepted:
    """Book the offered time for the patient (moving their later appointment if the offer replaces one).

    The offer is taken under a conditional update (held and in time), so the worker cannot end it while it is
    being booked, and a second press of the button finds it taken; the booking uses the offer's own key, so
    the clinical system never books it twice.
    """
    acting.require(Service.APPOINTMENTS)
    uow.writing()
    offer, entry = _mine(uow, acting, offer_id)
    now = uow.now()
    if offer.status == OfferStatus.ACCEPTED:
        uow.commit()
        return Accepted(_booked(uow, acting, offer))  # a double submit that went through
    taken = uow.session.execute(
        update(SlotOffer)
        .where(SlotOffer.id == offer.id, SlotOffer.status == OfferStatus.HELD.value, SlotOffer.hold_until > now)
        .values(status=ACCEPTING)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        being_booked = offer.status == ACCEPTING
        uow.commit()
        raise OfferBeingBooked() if being_booked else OfferEnded()
    slot_id, start, replacing = offer.slot_id, offer.slot_start, entry.replacing_ref
    uow.commit()
    key = f"waitlist-offer-{offer.id}"
    try:
        accepted = _book(uow, acting, slot_id, start, replacing, reason, key)
        appointment = accepted.appointment
    except SlotUnavailable:
        _after_failure(uow, offer.id, OfferStatus.GONE)
        raise SlotUnavailable(
            "Sorry, that time has just been taken at the practice. You are still on the list for an earlier "
            "appointment."
        ) from None
    except BaseException:  # the system was down, a rule refused, a reason too long: they may try again in time
        _after_failure(uow, offer.id, OfferStatus.HELD)
        raise
    uow.writing()
    offer = uow.session.get_one(SlotOffer, offer.id, populate_existing=True)
    entry = uow.session.get_one(WaitlistEntry, entry.id, populate_existing=True)
    offer.appointment_ref = appointment.id
    _end_offer(offer, OfferStatus.ACCEPTED, uow.now())
    _end_entry(entry, EntryStatus.BOOKED, uow.now())
    _audit(
        uow,
        "waitlist.offer_accepted",
        acting,
        entry,
        offer_id=offer.id,
        appointment_id=appointment.id,
        slot_id=offer.slot_id,
        start=offer.slot_start.isoformat(),
        replaced=replacing,
    )
    uow.commit()
    return accepted


def _book(
    uow: AbstractUnitOfWork,
    acting: Acting,
    slot_id: str,
    start: dt.datetime,
    replacing: str,
    reason: str,
    key: str,
) -> Accepted:
    """Book the offered time; move the later appointment to it when the offer replaces one (booked first, then
    the later one cancelled, as rescheduling does). If the later one has gone meanwhile, just book."""
    from .appointments.booking import book_appointment
    from .appointments.rescheduling import reschedule_appointment

    if replacing:
        try:
            moved = reschedule_appointment(uow, acting, replacing, slot_id, reason, key, at=start)
            return Accepted(moved.new, moved.old_cancelled)
        except NotFound:
            pass
    return Accepted(book_appointment(uow, acting, slot_id, reason, key, at=start))


def _booked(uow: AbstractUnitOfWork, acting: Acting, offer: SlotOffer) -> Appointment:
    appointment_ref = offer.appointment_ref
    uow.release()
    now = uow.now()
    found = next(
        (a for a in uow.clinical(acting.practice).list_appointments(acting.ref, now) if a.id == appointment_ref),
        None,
    )
    if found is None:
        raise NotFound("We could not find that appointment in your upcoming appointments.")
    return found


def _after_failure(uow: AbstractUnitOfWork, offer_id: int, status: OfferStatus) -> None:
    """The booking did not happen: hold the offer again (while its time lasts), or end it when the time went."""
    uow.rollback()
    uow.writing()
    offer = uow.session.get_one(SlotOffer, offer_id, populate_existing=True)
    if offer.status == ACCEPTING:
        if status == OfferStatus.HELD and offer.hold_until > uow.now():
            offer.status = OfferStatus.HELD.value
        else:
            _end_offer(offer, OfferStatus.GONE if status == OfferStatus.GONE else OfferStatus.EXPIRED, uow.now())
            _passed_on(uow, offer, "waitlist.offer_ended", outcome=offer.status)
    uow.commit()


def _passed_on(uow: AbstractUnitOfWork, offer: SlotOffer, action: str, **details: Any) -> None:
    """The offer ended without a booking (the worker or a failed booking ended it): its patient waits again, the
    end is audited, and the practice's book is searched again for the next person. In the caller's transaction.
    """
    uow.session.execute(
        update(WaitlistEntry)
        .where(WaitlistEntry.id == offer.entry_id, WaitlistEntry.status == EntryStatus.OFFERED.value)
        .values(status=EntryStatus.WAITING.value)
    )
    entry = uow.session.get_one(WaitlistEntry, offer.entry_id, populate_existing=True)
    uow.audit(
        action,
        actor_role="system",
        patient_id=entry.patient_id,
        practice_id=entry.practice_id,
        offer_id=offer.id,
        **details,
    )
    look_soon(uow, entry.practice_id)


def decline_offer(uow: AbstractUnitOfWork, acting: Acting, offer_id: int) -> None:
    """The patient does not want this time: it goes to the next person; they stay on the list."""
    acting.require(Service.APPOINTMENTS)
    uow.writing()
    offer, entry = _mine(uow, acting, offer_id, lock=True)
    if offer.status != OfferStatus.HELD:
        uow.commit()
        return
    _end_offer(offer, OfferStatus.DECLINED, uow.now())
    if entry.status == EntryStatus.OFFERED:
        entry.status = EntryStatus.WAITING.value
    _audit(uow, "waitlist.offer_declined", acting, entry, offer_id=offer.id)
    look_soon(uow, entry.practice_id)
    uow.commit()


# What other use cases ask ------------------------------------------------------------------------------------
def look_soon(uow: AbstractUnitOfWork, practice_id: int) -> None:
    """A time may have been freed at the practice (a cancellation at the gateway, an offer ended): search its
    book on the worker's next round. In the caller's transaction."""
    done = uow.session.execute(
        update(WaitlistLook).where(WaitlistLook.practice_id == practice_id).values(due_at=uow.now())
    )
    if done.rowcount == 0:  # type: ignore[attr-defined]
        values = {"practice_id": practice_id, "due_at": uow.now()}
        if uow.session.get_bind().dialect.name == "postgresql":
            uow.session.execute(pg_insert(WaitlistLook).values(values).on_conflict_do_nothing())
        else:  # another transaction making it at the same moment is enough: it is due either way
            uow.session.execute(sqlite_insert(WaitlistLook).values(values).on_conflict_do_nothing())


def _live_now(now: dt.datetime) -> Any:
    """Offers that hold their time now: held and in time, or being booked (for a while, should its node die)."""
    return or_(
        (SlotOffer.status == OfferStatus.HELD.value) & (SlotOffer.hold_until > now),
        (SlotOffer.status == ACCEPTING) & (SlotOffer.hold_until > now - STUCK_ACCEPTING),
    )


def held_for_other(uow: AbstractUnitOfWork, practice_id: int, slot_id: str, patient_id: int) -> bool:
    """Whether the time is held for another patient's offer (nobody else may book it through the gateway)."""
    found = uow.session.scalar(
        select(SlotOffer.id)
        .join(WaitlistEntry, WaitlistEntry.id == SlotOffer.entry_id)
        .where(
            SlotOffer.live_key == _live_key(practice_id, slot_id),
            _live_now(uow.now()),
            WaitlistEntry.patient_id != patient_id,
        )
    )
    return found is not None


def held_slot_ids(uow: AbstractUnitOfWork, practice_id: int, patient_id: int) -> frozenset[str]:
    """The practice's times held for other patients' offers now (the slot pages leave them out)."""
    rows = uow.session.scalars(
        select(SlotOffer.slot_id)
        .join(WaitlistEntry, WaitlistEntry.id == SlotOffer.entry_id)
        .where(
            SlotOffer.practice_id == practice_id,
            SlotOffer.live_key.is_not(None),
            _live_now(uow.now()),
            WaitlistEntry.patient_id != patient_id,
        )
    )
    return frozenset(rows)


def figures(uow: AbstractUnitOfWork, practice_id: int, start: dt.datetime, end: dt.datetime) -> tuple[int, int]:
    """(offers made, slots filled by offers) in the period, for the uptake report."""
    rows = dict(
        uow.session.execute(
            select(AuditEvent.action, func.count(AuditEvent.id))
            .where(
                AuditEvent.practice_id == practice_id,
                AuditEvent.action.in_(("waitlist.offered", "waitlist.offer_accepted")),
                AuditEvent.at >= start,
                AuditEvent.at < end,
            )
            .group_by(AuditEvent.action)
        )
        .tuples()
        .all()
    )
    return int(rows.get("waitlist.offered", 0)), int(rows.get("waitlist.offer_accepted", 0))


# The worker ------------------------------------------------------------------------------------------------
@dataclass
class WaitlistReport:
    offered: int = 0
    expired: int = 0
    ended: int = 0
    looked: int = 0
    unreachable: int = 0

    @property
    def anything_done(self) -> bool:
        return bool(self.offered or self.expired or self.ended or self.unreachable)

    def __str__(self) -> str:
        return (
            f"earlier appointments: offered {self.offered}, holds ended {self.expired}, entries ended {self.ended}, "
            f"practices searched {self.looked}" + (f", unreachable {self.unreachable}" if self.unreachable else "")
        )


def run(uow: AbstractUnitOfWork) -> WaitlistReport:
    """One round of the worker; safe on any number of workers and nodes at once."""
    report = WaitlistReport()
    report.expired = _expire_holds(uow)
    report.ended = _end_entries(uow)
    for practice_id in _due_practices(uow):
        if not _claim_look(uow, practice_id):
            continue
        report.looked += 1
        try:
            report.offered += _look(uow, practice_id)
        except ClinicalSystemError:
            report.unreachable += 1  # searched again on the next look
    return report


def _expire_holds(uow: AbstractUnitOfWork) -> int:
    now = uow.now()
    # Held past its time, or being booked for so long that its node must have died; checked again in the
    # update, so an offer the patient began accepting meanwhile is left to its booking.
    run_out = or_(
        (SlotOffer.status == OfferStatus.HELD.value) & (SlotOffer.hold_until <= now),
        (SlotOffer.status == ACCEPTING) & (SlotOffer.hold_until <= now - STUCK_ACCEPTING),
    )
    due = uow.session.scalars(select(SlotOffer.id).where(run_out).order_by(SlotOffer.id)).all()
    uow.commit()
    if not due:
        return 0  # the usual round: no write transaction at all
    uow.writing()
    expired = 0
    for offer_id in due:
        ended = uow.session.execute(
            update(SlotOffer)
            .where(SlotOffer.id == offer_id, run_out)
            .values(status=OfferStatus.EXPIRED.value, live_key=None, decided_at=now)
        )
        if ended.rowcount != 1:  # type: ignore[attr-defined]
            continue  # another worker ended it, or the patient accepted it just now
        _passed_on(uow, uow.session.get_one(SlotOffer, offer_id, populate_existing=True), "waitlist.offer_expired")
        expired += 1
    uow.commit()
    return expired


def _end_entries(uow: AbstractUnitOfWork) -> int:
    """Entries whose last day has passed, or whose practice turned the list off, end (quietly, audited)."""
    today = uow.today()
    stale = (
        select(WaitlistEntry)
        .join(Practice, Practice.id == WaitlistEntry.practice_id)
        .where(
            WaitlistEntry.status == EntryStatus.WAITING.value,
            or_(WaitlistEntry.until < today, Practice.waitlist_enabled.is_(False)),
        )
        .limit(500)
    )
    if uow.session.scalar(stale.with_only_columns(WaitlistEntry.id)) is None:
        uow.commit()
        return 0  # the usual round: no write transaction at all
    uow.writing()
    # each still waiting once locked (the entries only: a manager's change to the practice is not held up)
    rows = uow.session.scalars(stale.execution_options(populate_existing=True).with_for_update(of=WaitlistEntry)).all()
    for entry in rows:
        _end_quietly(uow, entry)
    uow.commit()
    return len(rows)


def _end_quietly(uow: AbstractUnitOfWork, entry: WaitlistEntry, **details: Any) -> None:
    """The worker ends the entry (its time passed, the list was turned off, its person may no longer book):
    audited, nobody told."""
    _end_entry(entry, EntryStatus.ENDED, uow.now())
    uow.audit(
        "waitlist.ended",
        actor_role="system",
        patient_id=entry.patient_id,
        practice_id=entry.practice_id,
        entry_id=entry.id,
        **details,
    )


def _due_practices(uow: AbstractUnitOfWork) -> list[int]:
    """Practices with the list on and someone waiting, whose look is due (or was never made)."""
    now = uow.now()
    ids = uow.session.scalars(
        select(WaitlistEntry.practice_id)
        .join(Practice, Practice.id == WaitlistEntry.practice_id)
        .outerjoin(WaitlistLook, WaitlistLook.practice_id == WaitlistEntry.practice_id)
        .where(
            WaitlistEntry.status == EntryStatus.WAITING.value,
            Practice.waitlist_enabled.is_(True),
            or_(WaitlistLook.due_at.is_(None), WaitlistLook.due_at <= now),
        )
        .distinct()
    ).all()
    uow.commit()
    return sorted(ids)


def _claim_look(uow: AbstractUnitOfWork, practice_id: int) -> bool:
    """Make this worker the one to search the practice's book now (others skip it until it is due again)."""
    uow.writing()
    now = uow.now()
    every = dt.timedelta(seconds=float(uow.setting("WAITLIST_LOOK_SECONDS", DEFAULT_LOOK_SECONDS)))
    claimed = uow.session.execute(
        update(WaitlistLook)
        .where(WaitlistLook.practice_id == practice_id, WaitlistLook.due_at <= now)
        .values(due_at=now + every, looked_at=now)
    )
    if claimed.rowcount == 1:  # type: ignore[attr-defined]
        uow.commit()
        return True
    if uow.session.get(WaitlistLook, practice_id) is not None:
        uow.commit()
        return False  # another worker is searching it
    try:
        uow.session.add(WaitlistLook(practice_id=practice_id, due_at=now + every, looked_at=now))
        uow.commit()
        return True
    except IntegrityError:
        uow.rollback()
        return False


def _look(uow: AbstractUnitOfWork, practice_id: int) -> int:
    """Search the practice's book and offer each free time that suits someone to the first in the queue."""
    now = uow.now()
    practice = uow.session.get_one(Practice, practice_id)
    rules = rules_for(practice)
    entries = uow.session.scalars(
        select(WaitlistEntry)
        .where(WaitlistEntry.practice_id == practice_id, WaitlistEntry.status.in_([s.value for s in ACTIVE_ENTRY]))
        .order_by(WaitlistEntry.created_at, WaitlistEntry.id)
    ).all()
    offered_before: dict[int, set[str]] = defaultdict(set)
    live: set[str] = set()
    for entry_id, slot_id, status in uow.session.execute(
        # the offers of the people waiting now only: the practice's whole history is never needed here
        select(SlotOffer.entry_id, SlotOffer.slot_id, SlotOffer.status).where(
            SlotOffer.practice_id == practice_id, SlotOffer.entry_id.in_([e.id for e in entries])
        )
    ).tuples():
        offered_before[entry_id].add(slot_id)
        if status in LIVE_OFFER:
            live.add(slot_id)
    queue = [Waiting(e.id, _wish(e), e.status == EntryStatus.OFFERED, frozenset(offered_before[e.id])) for e in entries]
    if not any(not w.holds_offer for w in queue) or not rules.online_slot_types:
        uow.commit()
        return 0
    earliest, latest = rules.window(now)
    last_day = max(w.wish.until for w in queue)
    latest = min(latest, dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), dt.UTC))
    uow.release()
    slots = uow.clinical(practice).search_slots(SlotQuery(earliest, latest, rules.online_slot_types))
    offered = 0
    for slot in sorted(slots, key=lambda s: (s.start, s.id)):
        if slot.id in live:
            continue
        chosen = first_in_queue(slot, queue, rules, now)
        while chosen is not None and not _may_still_book(uow, chosen.entry_id):
            _end_for_access(uow, chosen.entry_id)  # nobody is told of a time they could not take
            queue = [w for w in queue if w.entry_id != chosen.entry_id]
            chosen = first_in_queue(slot, queue, rules, now)
        if chosen is None:
            continue
        if _offer(uow, practice, chosen.entry_id, slot):
            offered += 1
            live.add(slot.id)
        # whether or not the offer was made here, this patient is dealt with for this round
        queue = [replace(w, holds_offer=True) if w.entry_id == chosen.entry_id else w for w in queue]
        if all(w.holds_offer for w in queue):
            break
    return offered


def _may_still_book(uow: AbstractUnitOfWork, entry_id: int) -> bool:
    """Whether the person who joined may still book for the patient online: their account is open, their link
    (their own, or as a proxy) still active, and online appointments still on for the patient."""
    entry = uow.session.get_one(WaitlistEntry, entry_id)
    user = uow.session.get(User, entry.user_id)
    if user is None or not user.active:
        return False
    try:
        current = acting_for(uow.session, user, entry.patient_id)
    except NotAllowed:
        return False
    return (
        current is not None and current.practice.id == entry.practice_id and current.access.allows(Service.APPOINTMENTS)
    )


def _end_for_access(uow: AbstractUnitOfWork, entry_id: int) -> None:
    uow.writing()
    entry = uow.session.scalar(
        _fresh(
            select(WaitlistEntry).where(
                WaitlistEntry.id == entry_id, WaitlistEntry.status == EntryStatus.WAITING.value
            ),
            lock=True,
        )
    )
    if entry is not None:
        _end_quietly(uow, entry, because="no_longer_allowed")
    uow.commit()


def _offer(uow: AbstractUnitOfWork, practice: Practice, entry_id: int, slot: Slot) -> bool:
    """Offer one time to one patient: at most one live offer per time (unique key) and per patient."""
    uow.writing()
    now = uow.now()
    took = uow.session.execute(
        update(WaitlistEntry)
        .where(WaitlistEntry.id == entry_id, WaitlistEntry.status == EntryStatus.WAITING.value)
        .values(status=EntryStatus.OFFERED.value)
    )
    if took.rowcount != 1:  # type: ignore[attr-defined]
        uow.rollback()
        return False
    minutes = hold_minutes(practice.waitlist_hold_minutes)
    offer = SlotOffer(
        practice_id=practice.id,
        entry_id=entry_id,
        slot_id=slot.id,
        slot_start=slot.start,
        slot_end=slot.end,
        slot_type=slot.slot_type,
        clinician=slot.clinician.name,
        clinician_role=slot.clinician.role,
        delivery_mode=slot.delivery_mode.value,
        location=slot.location,
        status=OfferStatus.HELD.value,
        live_key=_live_key(practice.id, slot.id),
        offered_at=now,
        hold_until=now + dt.timedelta(minutes=minutes),
    )
    uow.session.add(offer)
    try:
        uow.flush()
    except IntegrityError:  # another worker offered this time a moment ago
        uow.rollback()
        return False
    entry = uow.session.get_one(WaitlistEntry, entry_id)
    user = uow.session.get_one(User, entry.user_id)
    uow.audit(
        "waitlist.offered",
        actor_role="system",
        patient_id=entry.patient_id,
        practice_id=practice.id,
        offer_id=offer.id,
        slot_id=slot.id,
        start=slot.start.isoformat(),
        hold_minutes=minutes,
    )
    _send_offer(uow, user, practice, offer, entry)
    uow.commit()
    log.info("waitlist offer made", extra={"fields": {"offer_id": offer.id, "practice_id": practice.id}})
    return True


# Messages --------------------------------------------------------------------------------------------------
def _for(acting: Acting) -> str:
    return f" for {acting.patient.given_name}" if acting.is_proxy else ""


def _tell(
    uow: AbstractUnitOfWork, user: User, practice: Practice, template: str, subject: str, lines: list[str], key: str
) -> None:
    if not contact.wants(uow, user.id, contact.APPOINTMENTS, "email"):
        return
    footer = [
        f"To see or change your appointments, sign in to Patient Online or {call(practice)}.",
        "If you need help now, use NHS 111 online or call 111. In an emergency, call 999.",
    ]
    uow.send_email(user.email, template, subject, "\n\n".join([*lines, *footer]), key=key, practice_id=practice.id)


def _send_offer(
    uow: AbstractUnitOfWork, user: User, practice: Practice, offer: SlotOffer, entry: WaitlistEntry
) -> None:
    """The offer by email (at once, on the priority lane: it is held for minutes) and by text where chosen."""
    held = offer.hold_until.astimezone(LONDON)
    until = held.strftime("%-I:%M%p").lower()
    if held.date() != offer.offered_at.astimezone(LONDON).date():
        until += f" on {held:%A} {held.day} {held:%B}"  # a hold that runs past midnight
    base = str(uow.setting("SERVICE_URL", "") or "").rstrip("/")
    address = f"{base}/appointments/offers/{offer.id}" if base else "sign in to Patient Online and choose Appointments"
    appointment = Appointment(id="", slot=_slot(offer), status=AppointmentStatus.BOOKED)
    moving = (
        f" If you accept, your appointment on {when(entry.replacing_start)} will be cancelled."
        if entry.replacing_start
        else ""
    )
    lines = [
        f"An earlier appointment is free at {practice.name}: {describe(appointment, practice)}.",
        f"We are holding it for you until {until}.{moving}",
        f"To accept it, go to {address}. If you do not want it, you need not do anything: it will be offered to "
        "the next person, and you stay on the list.",
    ]
    uow.send_email(
        user.email,
        "waitlist_offer",
        "An earlier GP appointment is free",
        "\n\n".join([*lines, "If you need help now, use NHS 111 online or call 111. In an emergency, call 999."]),
        key=f"waitlist-offer:{offer.id}",
        priority=True,
        practice_id=practice.id,
    )
    mobile = contact.verified_mobile(uow, user.id)
    if mobile and contact.wants(uow, user.id, contact.APPOINTMENTS, "sms"):
        where = offer.location or practice.name
        uow.send_sms(
            mobile,
            "waitlist_offer_sms",
            f"{practice.name}: an earlier appointment is free on {when(offer.slot_start)}, {where}. It is held for "
            f"you until {until}. Sign in to Patient Online to accept it.",
            key=f"waitlist-offer:{offer.id}:sms",
            priority=True,
            practice_id=practice.id,
        )


# Bookkeeping -----------------------------------------------------------------------------------------------
def _end_offer(offer: SlotOffer, status: OfferStatus, now: dt.datetime) -> None:
    offer.status = status.value
    offer.live_key = None
    offer.decided_at = now


def _end_entry(entry: WaitlistEntry, status: EntryStatus, now: dt.datetime) -> None:
    entry.status = status.value
    entry.active_key = None
    entry.ended_at = now


def _audit(uow: AbstractUnitOfWork, action: str, acting: Acting, entry: WaitlistEntry, **detail: Any) -> None:
    uow.audit(
        action,
        actor_id=acting.user.id,
        actor_role=acting.actor_role,
        patient_id=acting.patient.id,
        practice_id=acting.practice.id,
        entry_id=entry.id,
        **detail,
    )
