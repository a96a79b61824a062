"""The embedded demo clinical system: the default adapter, with realistic seeded data."""

from __future__ import annotations

from typing import Any

from patient_online.adapters.registry import AdapterContext, AdapterType, OptionSpec, register

from .system import DemoClinicalSystem


def _build(context: AdapterContext) -> DemoClinicalSystem:
    factory: Any = context.services["session_factory"]
    copy = context.options.get("copy", "")  # a second copy of the practice's data: the system it moves to
    space = f"{context.practice_ods}~{copy}" if copy else context.practice_ods
    return DemoClinicalSystem(space, factory, context.services.get("read_session_factory"))


COPY = OptionSpec("copy", "Which copy of the practice's demo data to use (blank for the first)", required=False)
DEMO = register(AdapterType(name="demo", title="Demo clinical system", factory=_build, options=(COPY,)))

__all__ = ["DEMO", "DemoClinicalSystem"]
