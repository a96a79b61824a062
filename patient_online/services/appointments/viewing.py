"""The patient's appointments, upcoming first, each with what they may do with it online."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from patient_online.domain.access import Service
from patient_online.domain.appointments import Appointment, AppointmentRules, is_upcoming, split_upcoming
from patient_online.domain.errors import NotFound
from patient_online.domain.ports import AppointmentAmendment, ClinicalSystem
from patient_online.models import Practice

from ..access import Acting, practice_switches
from ..unit_of_work import AbstractUnitOfWork
from . import recording
from .common import HISTORY_DAYS, PracticeContact, call, call_sentence, clinical, limit_message, record, rules_for


@dataclass(frozen=True)
class AppointmentItem:
    """One appointment with what the patient may do with it, and why not."""

    appointment: Appointment
    upcoming: bool
    may_change: bool
    refusal: str = ""
    may_amend: bool = False  # change the reason: the practice's system offers it and the rules allow a change

    @property
    def id(self) -> str:
        return self.appointment.id


@dataclass(frozen=True)
class AppointmentList:
    """The patient's appointments. ``read_only`` when online appointments are switched off for them: they still
    see what they hold, and are told to call the practice to cancel or change it (``by_phone``)."""

    upcoming: list[AppointmentItem]
    past: list[AppointmentItem]
    may_book_more: bool
    limit_message: str = ""
    rules: AppointmentRules = field(default_factory=lambda: AppointmentRules(frozenset()))
    read_only: bool = False
    practice: PracticeContact | None = None
    off_message: str = ""  # the practice's own words, when it switched appointments off for everyone

    @property
    def by_phone(self) -> str:
        return f"To cancel or change an appointment, {call(self.practice)}." if self.practice else ""


def _item(
    appointment: Appointment,
    rules: AppointmentRules,
    practice: Practice,
    now: dt.datetime,
    *,
    read_only: bool = False,
    amendable: bool = False,
) -> AppointmentItem:
    upcoming = is_upcoming(appointment, now)
    if read_only:
        words = f"To cancel or change this appointment, {call(practice)}." if upcoming else ""
        return AppointmentItem(appointment, upcoming, False, words)
    refusal = rules.cancel_refusal(appointment, now) if upcoming else ""
    message = f"You cannot cancel or change this appointment online because {refusal}. {call_sentence(practice)}."
    may_change = upcoming and not refusal
    may_amend = may_change and amendable and rules.may_amend(appointment, now)
    return AppointmentItem(appointment, upcoming, may_change, message if refusal else "", may_amend)


def _read_only(acting: Acting) -> bool:
    """Whether the patient may only look at their appointments: online appointments are switched off for them
    (by the practice, for everyone or for this patient), but what they already hold stays theirs to see.

    A proxy whom the patient or practice never allowed appointments (or whose practice switched proxy access off)
    is refused as before: switching the service off must not open someone else's appointments to them.
    """
    if acting.access.allows(Service.APPOINTMENTS):
        return False
    if not acting.patient.clinical_id:
        acting.require(Service.APPOINTMENTS)  # no id at the practice's new system yet: reception is checking
    if acting.proxy is not None and not (
        acting.proxy.can_appointments and practice_switches(acting.practice)[Service.PROXY].enabled
    ):
        acting.require(Service.APPOINTMENTS)
    return True


def list_appointments(uow: AbstractUnitOfWork, acting: Acting) -> AppointmentList:
    """The patient's upcoming appointments first, then past and cancelled ones, each with its allowed actions.

    Bookings the clinical system took but the gateway failed to record are recorded here, once each. With online
    appointments switched off the list is read-only (see ``_read_only``).
    """
    read_only = _read_only(acting)
    now = uow.now()
    practice = acting.practice
    rules = rules_for(practice)
    intents = recording.pending(uow, acting.patient.id)
    system = clinical(uow, acting)
    found = system.list_appointments(acting.ref, now - dt.timedelta(days=HISTORY_DAYS))
    recording.reconcile(uow, acting, intents, found)
    uow.join_writing()
    record(uow, acting, "appointments.viewed")
    uow.commit()
    upcoming, past = split_upcoming(found, now)
    may_more = not read_only and rules.may_book_more(len(upcoming))
    amend = isinstance(system, AppointmentAmendment)
    return AppointmentList(
        upcoming=[_item(a, rules, practice, now, read_only=read_only, amendable=amend) for a in upcoming],
        past=[_item(a, rules, practice, now, read_only=read_only) for a in past],
        may_book_more=may_more,
        limit_message="" if may_more or read_only else limit_message(rules, practice),
        rules=rules,
        read_only=read_only,
        practice=PracticeContact.of(practice),
        off_message=acting.access.messages.get(Service.APPOINTMENTS, "") if read_only else "",
    )


def find_appointment(system: ClinicalSystem, acting: Acting, appointment_id: str, now: dt.datetime) -> Appointment:
    """One of the patient's own appointments, recent or upcoming; NotFound for anyone else's."""
    found = system.list_appointments(acting.ref, now - dt.timedelta(days=HISTORY_DAYS))
    appointment = next((a for a in found if a.id == appointment_id and a.status.shown), None)
    if appointment is None:
        raise NotFound("We could not find that appointment.")
    return appointment


def get_appointment(
    uow: AbstractUnitOfWork, acting: Acting, appointment_id: str, *, audited: bool = True
) -> AppointmentItem:
    """One of the patient's appointments with its allowed actions; NotFound for anyone else's. Read-only, with
    the practice's phone number, when online appointments are switched off for the patient."""
    read_only = _read_only(acting)
    now = uow.now()
    rules = rules_for(acting.practice)
    system = clinical(uow, acting)
    appointment = find_appointment(system, acting, appointment_id, now)
    if audited:
        record(uow, acting, "appointments.viewed", appointment_id=appointment.id)
        uow.commit()
    amend = isinstance(system, AppointmentAmendment)
    return _item(appointment, rules, acting.practice, now, read_only=read_only, amendable=amend)
