"""GP Connect error responses (HTTP status + OperationOutcome Spine code) as domain errors.

Every Spine error code of the specification's error handling guidance (Appointment Management 1.2 and Access
Record Structured 1.6) has a true, plain message here. The failing interaction, status and code are logged by
the HTTP layer (never the diagnostics, which may carry personal data).
"""

from __future__ import annotations

from patient_online.domain.errors import (
    AlreadyBooked,
    ClinicalSystemError,
    ClinicalSystemUnavailable,
    DomainError,
    NoPatientConsent,
    NotFound,
    NotOfferedBySystem,
    PatientNotFound,
    PracticeNotAllowed,
    SlotGone,
    SlotUnavailable,
    StaleVersion,
)

from .fhir_parse import Outcome


class ProviderRejected(ClinicalSystemError):
    """The provider refused a request as malformed or invalid: a fault on our side to fix, not the patient's."""

    message = (
        "Something went wrong on our side when we asked your GP practice's system, and we have recorded it. "
        "Try again later, or contact your GP practice."
    )
    http_status = 502


# The patient's record could not be found at the practice (identity validation errors).
_PATIENT_NOT_FOUND = frozenset(
    {"PATIENT_NOT_FOUND", "NO_RECORD_FOUND", "INVALID_NHS_NUMBER", "INVALID_PATIENT_DEMOGRAPHICS"}
)
# The practice (or its system's configuration) does not allow it (security validation errors).
_NOT_ALLOWED = frozenset(
    {"ACCESS_DENIED", "ACCESS DENIED", "NOT_AUTHORISED", "NOT_AUTHORIZED", "NO_ORGANISATION_CONSENT", "NO_RELATIONSHIP"}
)
# What we sent was wrong: resource, parameter or request validation errors, and identifiers of ours.
_OUR_FAULT = frozenset(
    {
        "BAD_REQUEST",
        "INVALID_RESOURCE",
        "INVALID_PARAMETER",
        "INVALID_IDENTIFIER_SYSTEM",
        "INVALID_IDENTIFIER_VALUE",
        "FHIR_CONSTRAINT_VIOLATION",
        "ORGANISATION_NOT_FOUND",
        "PRACTITIONER_NOT_FOUND",
    }
)
_UNAVAILABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def map_error(status: int, outcome: Outcome | None, *, conditional: bool = False) -> DomainError:
    """The domain error for a failed GP Connect response; ``conditional`` for requests sent with If-Match."""
    code = outcome.spine_code.upper() if outcome else ""
    if code == "NOT_IMPLEMENTED" or status == 501:
        return NotOfferedBySystem()
    if code == "INTERNAL_SERVER_ERROR" or status in _UNAVAILABLE_STATUSES or status >= 500:
        return ClinicalSystemUnavailable()
    if code == "DUPLICATE_REJECTED":
        return AlreadyBooked()
    if code == "REFERENCE_NOT_FOUND":
        return SlotGone()  # the only reference a patient's request can lose is the time they chose
    if code in _PATIENT_NOT_FOUND:
        return PatientNotFound()
    if code == "NO_PATIENT_CONSENT":
        return NoPatientConsent()
    if code in _NOT_ALLOWED:
        return PracticeNotAllowed()
    if status == 412 or (status == 409 and conditional):
        return StaleVersion()  # the appointment changed since it was read (If-Match no longer matches)
    if code in _OUR_FAULT:
        return ProviderRejected()
    if status == 409:
        return SlotUnavailable()
    if status == 404:
        return NotFound()
    if status in (401, 403) and "MESSAGESENDER" not in (outcome.diagnostics.upper() if outcome else ""):
        return PracticeNotAllowed()  # the Spine Secure Proxy: the practice's system is not set up to receive it
    return ProviderRejected()  # our sender not authorised, a method or media type refused, anything else
