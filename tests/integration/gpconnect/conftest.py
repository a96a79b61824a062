"""The GP Connect simulator on 127.0.0.1 (ephemeral port), and an adapter pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from patient_online.adapters.gpconnect import Endpoint, GPConnectClinicalSystem
from tools.gpconnect_simulator import PROVIDER_ASID, PROVIDER_ODS, SimulatorServer, start_simulator

CONSUMER_ASID = "200000000359"
CONSUMER_ODS = "X26"


@pytest.fixture(scope="session")
def simulator() -> Iterator[SimulatorServer]:
    _url, server = start_simulator()
    yield server
    server.stop()


@pytest.fixture
def sim(simulator: SimulatorServer) -> Iterator[SimulatorServer]:
    simulator.state.reset()
    yield simulator
    simulator.state.reset()


def make_system(server: SimulatorServer, read_timeout: float = 5.0) -> GPConnectClinicalSystem:
    endpoint = Endpoint(
        base_url=server.base_url,
        provider_asid=PROVIDER_ASID,
        consumer_asid=CONSUMER_ASID,
        provider_ods=PROVIDER_ODS,
        consumer_ods=CONSUMER_ODS,
        connect_timeout=1.0,
        read_timeout=read_timeout,
    )
    return GPConnectClinicalSystem(endpoint, practice_ods=PROVIDER_ODS)


@pytest.fixture
def system(sim: SimulatorServer) -> Iterator[GPConnectClinicalSystem]:
    adapter = make_system(sim)
    yield adapter
    adapter.close()


@pytest.fixture
def make_gpc(sim: SimulatorServer) -> Iterator[Callable[..., GPConnectClinicalSystem]]:
    """A factory of adapters pointed at the simulator (closed after the test)."""
    made: list[GPConnectClinicalSystem] = []

    def factory(read_timeout: float = 5.0) -> GPConnectClinicalSystem:
        made.append(make_system(sim, read_timeout))
        return made[-1]

    yield factory
    for adapter in made:
        adapter.close()
