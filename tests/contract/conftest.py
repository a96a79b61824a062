"""Parametrisation of the ClinicalSystem contract suite: one entry per adapter under test.

To add an adapter, put a factory in ``CONTRACT_FACTORIES``: a context manager yielding a ``ContractSubject``
whose patient has data (bookable slots in ``slot_window``, repeat items, record entries).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from patient_online.adapters.gpconnect import Endpoint, GPConnectClinicalSystem
from patient_online.domain.patients import PatientRef
from patient_online.domain.ports import ClinicalSystem
from tools.gpconnect_simulator import ALICE, BOB, NOT_FOUND, PROVIDER_ASID, start_simulator
from tools.gpconnect_simulator.state import RULE_BROKEN


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
        # The simulator is as strict as a real provider: no request of the adapter may break a rule.
        broken = [r for r in server.state.refusals if r.spine_code in RULE_BROKEN]
        assert not broken, f"the adapter sent requests a provider refuses: {broken}"
    finally:
        system.close()
        server.stop()


@functools.cache
def _demo_database() -> tuple[Any, str]:
    """One seeded demo database (SQLite, in a temporary folder) for the whole run."""
    import patient_online.adapters.demo.models  # noqa: F401
    from patient_online import create_app
    from patient_online.adapters.demo.seed import seed
    from patient_online.extensions import db, make_engine
    from patient_online.models import Base
    from tests.conftest import PROJECT_ROOT, TEST_SETTINGS

    folder = tempfile.mkdtemp(prefix="po-contract-")
    engine = make_engine(f"sqlite:///{folder}/demo.sqlite3", PROJECT_ROOT)
    Base.metadata.create_all(engine)
    app = create_app({**TEST_SETTINGS, "DATABASE_ENGINE": engine})
    with app.app_context():
        seed(db.session)
        db.scoped.remove()
    return engine, folder


@contextlib.contextmanager
def demo_subject() -> Iterator[ContractSubject]:
    """The embedded demo clinical system over its own seeded tables."""
    from sqlalchemy.orm import sessionmaker

    from patient_online.adapters.demo import DemoClinicalSystem

    engine, _ = _demo_database()
    system = DemoClinicalSystem("Y02001", sessionmaker(bind=engine, expire_on_commit=False))
    patient, other = system.find_patient("9990010005"), system.find_patient("9990010021")
    assert patient is not None and other is not None
    now = dt.datetime.now(dt.UTC)
    yield ContractSubject(
        system=system,
        patient=patient.ref,
        other_patient=other.ref,
        other_nhs_number_not_found="9999000002",
        slot_window=(now + dt.timedelta(days=1), now + dt.timedelta(days=15)),
    )


CONTRACT_FACTORIES: dict[str, Factory] = {
    "gpconnect": gpconnect_subject,
    "demo": demo_subject,
}


@pytest.fixture(params=sorted(CONTRACT_FACTORIES))
def contract_system(request: pytest.FixtureRequest) -> Iterator[ContractSubject]:
    """One adapter under test, fresh for each test."""
    with CONTRACT_FACTORIES[request.param]() as subject:
        yield subject
