"""A local GP Connect provider for tests and demos: stateful, spec-following, and breakable on demand.

Run it with ``python -m tools.gpconnect_simulator --port 8090``, or in-process with
``start_simulator()``. ``POST /_control`` with JSON ``{"delay": 5, "fail": "502"}`` makes it slow or failing.
"""

from __future__ import annotations

from .data import ALICE, BOB, CAROL_CONFIDENTIAL, DAN_NO_CONSENT, NOT_FOUND, PROVIDER_ASID, PROVIDER_ODS
from .server import SimulatorServer, start_simulator
from .state import SimulatorState

__all__ = [
    "ALICE",
    "BOB",
    "CAROL_CONFIDENTIAL",
    "DAN_NO_CONSENT",
    "NOT_FOUND",
    "PROVIDER_ASID",
    "PROVIDER_ODS",
    "SimulatorServer",
    "SimulatorState",
    "start_simulator",
]
