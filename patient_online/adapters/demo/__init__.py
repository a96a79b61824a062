"""The embedded demo clinical system: the default adapter, with realistic seeded data."""

from __future__ import annotations

from typing import Any

from patient_online.adapters.registry import AdapterContext, AdapterType, register

from .system import DemoClinicalSystem


def _build(context: AdapterContext) -> DemoClinicalSystem:
    factory: Any = context.services["session_factory"]
    return DemoClinicalSystem(context.practice_ods, factory, context.services.get("read_session_factory"))


DEMO = register(AdapterType(name="demo", title="Demo clinical system", factory=_build, options=()))

__all__ = ["DEMO", "DemoClinicalSystem"]
