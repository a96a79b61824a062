"""Errors the clinical-system ports and the services raise, each with a message fit for a patient."""

from __future__ import annotations


class DomainError(Exception):
    """A rule of the service refused the request; ``message`` is safe to show to the user."""

    message = "Sorry, we could not do that."
    http_status = 400  # the status of the page that shows ``message``

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
    http_status = 503


class ClinicalSystemUnavailable(ClinicalSystemError):
    """The link to the clinical system is down, slow or its circuit is open."""


class PatientNotFound(ClinicalSystemError):
    message = (
        "Your GP practice's system could not find your record. Reception at your GP practice can help: "
        "they can check the details they hold for you."
    )
    http_status = 404


class NoPatientConsent(ClinicalSystemError):
    """The patient asked that their record is not shared (GP Connect NO_PATIENT_CONSENT)."""

    message = (
        "Your GP practice's system says your record is not to be shared, so it cannot be shown online. "
        "Contact your GP practice if you want to change this."
    )
    http_status = 403


class PracticeNotAllowed(ClinicalSystemError):
    """The practice's system refused: the practice has not allowed this to be done online (or not for us)."""

    message = "Your GP practice has not allowed this to be done online. Contact your GP practice to do it."
    http_status = 403


class NotOfferedBySystem(ClinicalSystemError):
    """The practice's system does not offer this at all (not a fault that trying again will mend)."""

    message = "Your GP practice's system does not offer this online. Contact your GP practice to do it."
    http_status = 501


class SlotUnavailable(DomainError):
    message = "Sorry, that appointment has just been taken. Choose another time."
    http_status = 409


class SlotGone(SlotUnavailable):
    """The practice's system no longer has the time the patient chose (removed from the appointment book)."""

    message = "That time is no longer available. Choose another time."


class AlreadyBooked(SlotUnavailable):
    """The practice's system refused a booking that would duplicate one it already holds."""

    message = (
        "That time has already been booked. If you booked it, it is in your appointments. If not, choose another time."
    )


class StaleVersion(DomainError):
    message = "This appointment changed while you were looking at it. Check it and try again."
    http_status = 409


class NotFound(DomainError):
    message = "We could not find that."
    http_status = 404


class InputError(DomainError):
    """A rule refused what a person entered. ``field`` names the form field to fix ("" for the whole form);
    ``fields`` maps each field to its message when more than one is wrong."""

    def __init__(self, message: str, field: str = "", *, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.fields: dict[str, str] = dict(fields) if fields else ({field: message} if field else {})
