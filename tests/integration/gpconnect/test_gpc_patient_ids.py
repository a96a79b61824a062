"""A practice switched to GP Connect: every patient's logical id is found again there by NHS number."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update

from patient_online.domain.patients import PatientRef
from patient_online.models import AuditEvent, Patient, PatientSystemId, Practice
from patient_online.wiring import clinical_systems
from tools.gpconnect_simulator import ALICE, NOT_FOUND, PROVIDER_ASID, SimulatorServer


def _patient(session: Any, practice: Practice, nhs_number: str, clinical_id: str, account: str) -> Patient:
    row = Patient(
        practice_id=practice.id,
        nhs_number=nhs_number,
        clinical_id=clinical_id,
        given_name="Alice",
        family_name="Example",
        date_of_birth=dt.date(1980, 1, 1),
        online_account_id=account,
    )
    session.add(row)
    session.commit()
    return row


def test_set_adapter_finds_every_patient_again_at_the_new_system(app: Any, session: Any, sim: SimulatorServer) -> None:
    practice = session.scalar(select(Practice).where(Practice.ods_code == "Y02002"))
    alice = _patient(session, practice, ALICE, "demo-17", "Y02002900001")
    stranger = _patient(session, practice, NOT_FOUND, "demo-18", "Y02002900002")
    result = app.test_cli_runner().invoke(
        args=[
            "practice",
            "set-adapter",
            "Y02002",
            "gpconnect",
            "--option",
            f"base_url={sim.base_url}",
            "--option",
            f"provider_asid={PROVIDER_ASID}",
            "--option",
            "consumer_asid=200000000359",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "1 found (1 with a new id)" in result.output and "0 not reached" in result.output
    session.expire_all()
    assert session.get(Patient, alice.id).clinical_id == "1"  # the simulator's logical id for Alice
    assert session.get(Patient, stranger.id).clinical_id == "demo-18"  # not held there: left as it was
    stored = session.scalars(select(PatientSystemId).where(PatientSystemId.patient_id == alice.id)).all()
    assert [(r.system_key, r.logical_id) for r in stored] == [(f"gpconnect:{sim.base_url}", "1")]
    found = session.scalars(select(AuditEvent).where(AuditEvent.action == "patient.system_id_found")).all()
    assert [e.patient_id for e in found] == [alice.id]
    summary = session.scalars(select(AuditEvent).where(AuditEvent.action == "practice.patient_ids_refound")).one()
    assert summary.detail["not_found"] >= 1 and summary.detail["found"] >= 1


def test_an_id_the_provider_no_longer_knows_is_found_again_and_stored(
    app: Any, session: Any, sim: SimulatorServer
) -> None:
    practice = session.scalar(select(Practice).where(Practice.ods_code == "Y02002"))
    alice = _patient(session, practice, ALICE, "demo-17", "Y02002900001")
    args = ["practice", "set-adapter", "Y02002", "gpconnect", "--option", f"base_url={sim.base_url}"]
    args += ["--option", f"provider_asid={PROVIDER_ASID}", "--option", "consumer_asid=200000000359"]
    assert app.test_cli_runner().invoke(args=args).exit_code == 0
    # An id the provider has never given (a stale one, as after a merge of records at the practice).
    session.execute(update(Patient).where(Patient.id == alice.id).values(clinical_id="424242"))
    session.execute(update(PatientSystemId).where(PatientSystemId.patient_id == alice.id).values(logical_id="424242"))
    session.commit()

    with app.app_context():
        system = clinical_systems(app).system_for(practice)
        # Appointments are asked by the patient's logical id (the structured record goes by NHS number).
        appointments = system.list_appointments(PatientRef("Y02002", ALICE, "424242"), dt.datetime.now(dt.UTC))
    assert isinstance(appointments, list)
    session.expire_all()
    assert session.get(Patient, alice.id).clinical_id == "1", "the id found again is stored for the next request"
    found = session.scalars(select(AuditEvent).where(AuditEvent.action == "patient.system_id_found")).all()
    assert [e.detail.get("reason") for e in found] == ["adapter_changed", "unknown_reference"]
