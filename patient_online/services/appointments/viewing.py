"""The patient's appointments, upcoming first, each with what they may do with it online."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from patient_online.domain.access import Service
from patient_online.domain.appointments import Appointment, AppointmentRules, is_upcoming, split_upcoming
from patient_online.domain.errors import NotFound
from patient_online.domain.ports import ClinicalSystem
from patient_online.models import Practice

from ..access import Acting
from ..unit_of_work import AbstractUnitOfWork
from . import recording
from .common import HISTORY_DAYS, call, clinical, limit_message, record, rules_for


@dataclass(frozen=True)
class AppointmentItem:
    """One appointment with what the patient may do with it, and why not."""

    appointment: Appointment
    upcoming: bool
    may_change: bool
    refusal: str = ""

    @property
    def id(self) -> str:
        return self.appointment.id


@dataclass(frozen=True)
class AppointmentList:
    upcoming: list[AppointmentItem]
    past: list[AppointmentItem]
    may_book_more: bool
    limit_message: str = ""
    rules: AppointmentRules = field(default_factory=lambda: AppointmentRules(frozenset()))


def _item(appointment: Appointment, rules: AppointmentRules, practice: Practice, now: dt.datetime) -> AppointmentItem:
    upcoming = is_upcoming(appointment, now)
    refusal = rules.cancel_refusal(appointment, now) if upcoming else ""
    message = f"You cannot cancel or change this appointment online because {refusal}. {call(practice).capitalize()}."
    return AppointmentItem(appointment, upcoming, upcoming and not refusal, message if refusal else "")


def list_appointments(uow: AbstractUnitOfWork, acting: Acting) -> AppointmentList:
    """The patient's upcoming appointments first, then past and cancelled ones, each with its allowed actions.

    Bookings the clinical system took but the gateway failed to record are recorded here, once each.
    """
    acting.require(Service.APPOINTMENTS)
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
    may_more = rules.may_book_more(len(upcoming))
    return AppointmentList(
        upcoming=[_item(a, rules, practice, now) for a in upcoming],
        past=[_item(a, rules, practice, now) for a in past],
        may_book_more=may_more,
        limit_message="" if may_more else limit_message(rules, practice),
        rules=rules,
    )


def find_appointment(system: ClinicalSystem, acting: Acting, appointment_id: str, now: dt.datetime) -> Appointment:
    """One of the patient's own appointments, recent or upcoming; NotFound for anyone else's."""
    found = system.list_appointments(acting.ref, now - dt.timedelta(days=HISTORY_DAYS))
    appointment = next((a for a in found if a.id == appointment_id), None)
    if appointment is None:
        raise NotFound("We could not find that appointment.")
    return appointment


def get_appointment(
    uow: AbstractUnitOfWork, acting: Acting, appointment_id: str, *, audited: bool = True
) -> AppointmentItem:
    """One of the patient's appointments with its allowed actions; NotFound for anyone else's."""
    acting.require(Service.APPOINTMENTS)
    now = uow.now()
    rules = rules_for(acting.practice)
    system = clinical(uow, acting)
    appointment = find_appointment(system, acting, appointment_id, now)
    if audited:
        record(uow, acting, "appointments.viewed", appointment_id=appointment.id)
        uow.commit()
    return _item(appointment, rules, acting.practice, now)
