"""Finding a patient's logical id at their practice's system by NHS number, and keeping it per system."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from patient_online.domain.errors import ClinicalSystemUnavailable
from patient_online.domain.patients import Demographics, PatientRef
from patient_online.models import AuditEvent, Patient, PatientSystemId
from patient_online.services import system_ids
from tests.fakes import FakeClinicalSystems, FakeUnitOfWork
from tests.unit.conftest import patient, practice


def _known(uow: FakeUnitOfWork, whom: Patient, logical_id: str) -> None:
    ref = PatientRef(whom.practice.ods_code, whom.nhs_number, logical_id)
    uow.system.patients[whom.nhs_number] = Demographics(ref, "Alex", whom.family_name, dt.date(1980, 5, 17), "LS1 4AP")


def _stored(uow: FakeUnitOfWork, whom: Patient) -> dict[str, str]:
    rows = uow.session.scalars(select(PatientSystemId).where(PatientSystemId.patient_id == whom.id))
    return {r.system_key: r.logical_id for r in rows}


def test_system_key_names_the_adapter_and_where_it_reaches(uow: FakeUnitOfWork) -> None:
    where = practice(uow)
    assert system_ids.system_key(where) == f"fake:{where.ods_code}"
    where.adapter_name, where.adapter_options = "gpconnect", {"base_url": "https://gpc.example/fhir/"}
    assert system_ids.system_key(where) == "gpconnect:https://gpc.example/fhir"


def test_find_patient_id_stores_the_id_and_audits_a_change(uow: FakeUnitOfWork) -> None:
    whom = patient(uow, practice(uow))
    _known(uow, whom, "logical-7")
    assert system_ids.find_patient_id(uow, whom.id) == "logical-7"
    assert whom.clinical_id == "logical-7"
    assert _stored(uow, whom) == {system_ids.system_key(whom.practice): "logical-7"}
    actions = [e.action for e in uow.session.scalars(select(AuditEvent).where(AuditEvent.patient_id == whom.id))]
    assert actions == ["patient.system_id_found"]
    assert "find_patient" in uow.system.calls
    # Asked again with nothing changed: nothing new is written or audited.
    assert system_ids.find_patient_id(uow, whom.id) == "logical-7"
    assert len(list(uow.session.scalars(select(AuditEvent).where(AuditEvent.patient_id == whom.id)))) == 1


def test_find_patient_id_of_someone_the_system_does_not_hold(uow: FakeUnitOfWork) -> None:
    whom = patient(uow, practice(uow))
    before = whom.clinical_id
    assert system_ids.find_patient_id(uow, whom.id) is None
    assert whom.clinical_id == before and _stored(uow, whom) == {}


def test_ids_are_kept_per_system(uow: FakeUnitOfWork) -> None:
    where = practice(uow)
    whom = patient(uow, where)
    _known(uow, whom, "at-fake")
    system_ids.find_patient_id(uow, whom.id)
    where.adapter_name, where.adapter_options = "gpconnect", {"base_url": "https://gpc.example/fhir"}
    assert isinstance(uow.clinical_systems, FakeClinicalSystems)
    uow.clinical_systems.by_adapter["gpconnect"] = uow.system
    _known(uow, whom, "at-gpc")
    system_ids.find_patient_id(uow, whom.id)
    assert _stored(uow, whom) == {f"fake:{where.ods_code}": "at-fake", "gpconnect:https://gpc.example/fhir": "at-gpc"}
    assert whom.clinical_id == "at-gpc"


def test_refind_practice_patients_in_batches_counts_found_changed_not_found_and_failed(uow: FakeUnitOfWork) -> None:
    where = practice(uow)
    people = [patient(uow, where) for _ in range(5)]
    _known(uow, people[0], people[0].clinical_id)  # found, unchanged
    _known(uow, people[1], "new-1")
    _known(uow, people[2], "new-2")
    # people[3]: not held by the system; people[4]: the link fails for it
    original = uow.system.find_patient

    def flaky(nhs_number: str) -> Demographics | None:
        if nhs_number == people[4].nhs_number:
            raise ClinicalSystemUnavailable()
        return original(nhs_number)

    uow.system.find_patient = flaky  # type: ignore[method-assign]
    uow.commit()
    commits = uow.commits
    report = system_ids.refind_practice_patients(uow, where.ods_code, batch_size=2)
    assert (report.found, report.changed, report.not_found, report.failed) == (3, 3, 1, 1)
    assert report.total == 5
    assert [p.clinical_id for p in people[:3]] == [people[0].clinical_id, "new-1", "new-2"]
    assert uow.commits - commits >= 3  # one per batch at least, plus the summary
    summary = uow.session.scalar(select(AuditEvent).where(AuditEvent.action == "practice.patient_ids_refound"))
    assert summary is not None and summary.detail["not_found"] == 1 and summary.detail["failed"] == 1


def test_record_found_id_stores_what_the_adapter_found_again(uow: FakeUnitOfWork) -> None:
    whom = patient(uow, practice(uow))
    assert system_ids.record_found_id(uow, whom.practice.ods_code, whom.nhs_number, "fresh-9") is True
    assert whom.clinical_id == "fresh-9"
    assert system_ids.record_found_id(uow, whom.practice.ods_code, whom.nhs_number, "fresh-9") is False
    assert system_ids.record_found_id(uow, whom.practice.ods_code, "9999999999", "x") is False


def test_linking_a_patient_stores_the_id_at_the_practice_system(uow: FakeUnitOfWork) -> None:
    from patient_online.services.linking import ensure_patient

    where = practice(uow)
    ref = PatientRef(where.ods_code, "9990000018", "logical-55")
    person = Demographics(ref, "Alice", "Example", dt.date(1980, 1, 1), "LS1 4AP")
    created = ensure_patient(uow, where, person)
    assert created.clinical_id == "logical-55"
    assert _stored(uow, created) == {f"fake:{where.ods_code}": "logical-55"}
    moved = Demographics(
        PatientRef(where.ods_code, "9990000018", "logical-56"), "Alice", "Example", dt.date(1980, 1, 1), "LS1 4AP"
    )
    assert ensure_patient(uow, where, moved).clinical_id == "logical-56"
    assert _stored(uow, created) == {f"fake:{where.ods_code}": "logical-56"}
