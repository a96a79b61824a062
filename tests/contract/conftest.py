"""Parametrisation of the ClinicalSystem contract suite: one entry per adapter under test.

To add an adapter, put a factory in ``CONTRACT_FACTORIES``: a context manager yielding a ``ContractSubject``
whose patient has data (bookable slots in ``slot_window``, repeat items, record entries).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from patient_online.adapters.gpconnect import Endpoint, GPConnectClinicalSystem
from patient_online.adapters.gpconnect.simulator import ALICE, BOB, NOT_FOUND, PROVIDER_ASID, start_simulator
from patient_online.domain.patients import PatientRef
from patient_online.domain.ports import ClinicalSystem


@dataclass(frozen=True)
class ContractSubject:
    """What every contract test needs from an adapter under test."""

    system: ClinicalSystem
    patient: PatientRef  # a test patient with slots, repeats and a record
    other_patient: PatientRef  # a second patient of the same practice (for double booking)
    other_nhs_number_not_found: str  # a valid NHS number not registered at the practice
    slot_window: tuple[dt.datetime, dt.datetime]  # a window with free slots


Factory = Callable[[], contextlib.AbstractContextManager[ContractSubject]]


@contextlib.contextmanager
def gpconnect_subject() -> Iterator[ContractSubject]:
    """The GP Connect adapter against a fresh simulator on 127.0.0.1."""
    url, server = start_simulator()
    endpoint = Endpoint(url, PROVIDER_ASID, "200000000359", "A20047", "X26", connect_timeout=1, read_timeout=5)
    system = GPConnectClinicalSystem(endpoint, practice_ods="A20047")
    try:
        patient, other = system.find_patient(ALICE), system.find_patient(BOB)
        assert patient is not None and other is not None
        now = dt.datetime.now(dt.UTC)
        yield ContractSubject(
            system=system,
            patient=patient.ref,
            other_patient=other.ref,
            other_nhs_number_not_found=NOT_FOUND,
            slot_window=(now + dt.timedelta(days=1), now + dt.timedelta(days=15)),
        )
    finally:
        system.close()
        server.stop()


CONTRACT_FACTORIES: dict[str, Factory] = {
    "gpconnect": gpconnect_subject,
    # "demo": demo_subject,  # <- the demo adapter's factory goes here
}


@pytest.fixture(params=sorted(CONTRACT_FACTORIES))
def contract_system(request: pytest.FixtureRequest) -> Iterator[ContractSubject]:
    """One adapter under test, fresh for each test."""
    with CONTRACT_FACTORIES[request.param]() as subject:
        yield subject
