"""Adapter registry: adapter name -> factory and option schema, chosen per practice.

A practice row names its adapter and holds its options; options are validated against the adapter's
schema before they are saved, and options marked secret are stored encrypted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from patient_online.domain.ports import ClinicalSystem


@dataclass(frozen=True)
class OptionSpec:
    """One setting an adapter needs."""

    name: str
    help: str
    required: bool = True
    secret: bool = False
    kind: str = "text"  # "text", "url", "int", "float"
    default: str | None = None


@dataclass(frozen=True)
class AdapterContext:
    """What the composition root hands every adapter factory."""

    practice_ods: str
    options: Mapping[str, str]
    services: Mapping[str, Any] = field(default_factory=dict)  # e.g. "session_factory" for the demo


class OptionsInvalid(ValueError):
    """Options that do not fit the adapter's schema; ``errors`` maps option name to a message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True)
class AdapterType:
    name: str
    title: str
    factory: Callable[[AdapterContext], ClinicalSystem]
    options: tuple[OptionSpec, ...] = ()
    # Whether independent reads are worth making at the same time: true for a system reached over a network
    # link (each read waits on it); a system read in-process from the gateway's own database gains nothing.
    parallel_reads: bool = False

    def validate(self, raw: Mapping[str, str]) -> dict[str, str]:
        """Options checked and completed with defaults; raises OptionsInvalid with every problem."""
        known = {o.name: o for o in self.options}
        errors: dict[str, str] = {}
        for name in raw:
            if name not in known:
                errors[name] = f"'{name}' is not an option of the {self.title} adapter"
        cleaned: dict[str, str] = {}
        for spec in self.options:
            value = (raw.get(spec.name) or "").strip()
            if not value:
                if spec.default is not None:
                    cleaned[spec.name] = spec.default
                elif spec.required:
                    errors[spec.name] = f"Enter {spec.help.lower()}"
                continue
            problem = _check_kind(spec.kind, value)
            if problem:
                errors[spec.name] = problem
            cleaned[spec.name] = value
        if errors:
            raise OptionsInvalid(errors)
        return cleaned

    @property
    def secret_options(self) -> frozenset[str]:
        return frozenset(o.name for o in self.options if o.secret)


def _check_kind(kind: str, value: str) -> str | None:
    if kind == "url":
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            return "Enter a full web address starting with https://"
    elif kind == "int":
        if not value.isdigit():
            return "Enter a whole number"
    elif kind == "float":
        try:
            if float(value) <= 0:
                return "Enter a number greater than 0"
        except ValueError:
            return "Enter a number, like 2.5"
    return None


_REGISTRY: dict[str, AdapterType] = {}


def register(adapter: AdapterType) -> AdapterType:
    """Make an adapter available to practices under its name."""
    _REGISTRY[adapter.name] = adapter
    return adapter


def get(name: str) -> AdapterType:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"No clinical-system adapter called '{name}'. Known: {', '.join(sorted(_REGISTRY))}") from None


def names() -> list[str]:
    return sorted(_REGISTRY)


def all_types() -> list[AdapterType]:
    return [_REGISTRY[name] for name in names()]
