"""GP Connect error responses (HTTP status + OperationOutcome Spine code) as domain errors."""

from __future__ import annotations

from patient_online.domain.errors import (
    ClinicalSystemError,
    ClinicalSystemUnavailable,
    DomainError,
    NoPatientConsent,
    NotFound,
    PatientNotFound,
    SlotUnavailable,
    StaleVersion,
)

from . import constants as c
from .fhir_parse import Outcome

_PATIENT_NOT_FOUND = frozenset({c.PATIENT_NOT_FOUND})


class ProviderRejected(ClinicalSystemError):
    """The provider refused a request as malformed or not allowed (a fault to fix, not the patient's)."""

    message = "Your GP practice's system could not handle this request. Try again later or contact the practice."


def map_error(status: int, outcome: Outcome | None, *, conditional: bool = False) -> DomainError:
    """The domain error for a failed GP Connect response; ``conditional`` for requests sent with If-Match."""
    code = outcome.spine_code if outcome else ""
    if status >= 500 or status in (408, 429):
        return ClinicalSystemUnavailable()
    if code == c.DUPLICATE_REJECTED:
        return SlotUnavailable()
    if code in _PATIENT_NOT_FOUND:
        return PatientNotFound()
    if code == c.NO_PATIENT_CONSENT:
        return NoPatientConsent()
    if status == 412 or (status == 409 and conditional):
        return StaleVersion()
    if status == 409:
        return SlotUnavailable()
    if status == 404:
        return NotFound()
    return ProviderRejected()
