"""The steps of the GP Connect patient journey, over real HTTP against the simulator: appointments name their
clinician and place, the reason can be changed (amend) and the appointment cancelled afterwards, and an allergy
list sent empty carries its reason to the patient."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import replace

from patient_online.adapters.gpconnect import GPConnectClinicalSystem
from patient_online.domain.appointments import AppointmentStatus, SlotQuery
from patient_online.domain.ports import AppointmentAmendment
from patient_online.domain.record import Section, SectionNote
from tools.gpconnect_simulator import ALICE, SimulatorServer

NOW = dt.datetime.now(dt.UTC)


def test_appointments_name_clinician_and_place_and_the_reason_can_be_changed(system: GPConnectClinicalSystem) -> None:
    alice = system.find_patient(ALICE)
    assert alice is not None
    slot = system.search_slots(SlotQuery(NOW + dt.timedelta(days=1), NOW + dt.timedelta(days=8)))[0]
    booked = system.book(alice.ref, slot.id, "Follow-up on my blood pressure", str(uuid.uuid4()))

    (listed,) = system.list_appointments(alice.ref, NOW)
    assert listed.slot.clinician.name and listed.slot.clinician.name == slot.clinician.name
    assert listed.slot.location, "the appointment's Location is resolved to its name"

    assert isinstance(system, AppointmentAmendment)
    amended = system.amend(alice.ref, booked.id, "Blood pressure and a repeat of my tablets")
    assert amended.reason == "Blood pressure and a repeat of my tablets"
    assert amended.status is AppointmentStatus.BOOKED
    (again,) = system.list_appointments(alice.ref, NOW)
    assert again.reason == amended.reason

    cancelled = system.cancel(alice.ref, booked.id, "")
    assert cancelled.status is AppointmentStatus.CANCELLED


def test_an_empty_allergy_list_says_why(system: GPConnectClinicalSystem, sim: SimulatorServer) -> None:
    alice_row = sim.state.patients[ALICE]
    sim.state.patients[ALICE] = replace(alice_row, record=tuple(e for e in alice_row.record if e.kind != "allergy"))
    alice = system.find_patient(ALICE)
    assert alice is not None
    extract = system.get_record(alice.ref, frozenset({Section.ALLERGIES, Section.IMMUNISATIONS}))
    assert [e for e in extract.entries if e.section is Section.ALLERGIES] == []
    assert SectionNote(Section.ALLERGIES, empty_reason="Nothing to show: nothing has been recorded.") in (
        extract.section_notes
    )
    vaccinations = [e for e in extract.entries if e.section is Section.IMMUNISATIONS]
    given = {e.term for e in vaccinations if not e.not_given}
    refused = [(e.term, e.not_given_reason) for e in vaccinations if e.not_given]
    assert given >= {"Influenza vaccine"}, "the term comes from the VaccinationProcedure extension, not UNK"
    assert refused == [("Shingles vaccine", "Patient declined")]
