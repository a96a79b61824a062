"""Errors the clinical-system ports and the services raise, each with a message fit for a patient."""

from __future__ import annotations


class DomainError(Exception):
    """A rule of the service refused the request; ``message`` is safe to show to the user."""

    message = "Sorry, we could not do that."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        if message:
            self.message = message


class NotAllowed(DomainError):
    message = "You do not have access to this."


class ServiceOff(NotAllowed):
    message = "This service is not available online at your GP practice."


class ClinicalSystemError(DomainError):
    """The practice's clinical system could not be used."""

    message = "Your GP practice's system is not available at the moment. Try again later."


class ClinicalSystemUnavailable(ClinicalSystemError):
    """The link to the clinical system is down, slow or its circuit is open."""


class PatientNotFound(ClinicalSystemError):
    message = "Your GP record is not available online. Contact your GP practice."


class NoPatientConsent(ClinicalSystemError):
    message = "Your GP record is not available online. Contact your GP practice."


class SlotUnavailable(DomainError):
    message = "Sorry, that appointment has just been taken. Choose another time."


class StaleVersion(DomainError):
    message = "This appointment changed while you were looking at it. Check it and try again."


class NotFound(DomainError):
    message = "We could not find that."


class InputError(DomainError):
    """A rule refused what a person entered. ``field`` names the form field to fix ("" for the whole form);
    ``fields`` maps each field to its message when more than one is wrong."""

    def __init__(self, message: str, field: str = "", *, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.fields: dict[str, str] = dict(fields) if fields else ({field: message} if field else {})
