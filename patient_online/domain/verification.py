"""Identity checks and links to the GP record: statuses, the documents rule, and what reception sees (rule 3)."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from .access import VerificationMethod
from .errors import InputError
from .patients import Demographics


class LinkRequestStatus(enum.StrEnum):
    """A patient's request for reception to link their account to their GP record."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class AccountLinkStatus(enum.StrEnum):
    """An account's link to the patient's own GP record."""

    ACTIVE = "active"
    SUSPENDED = "suspended"


STAFF_METHODS = (
    VerificationMethod.DOCUMENTS,
    VerificationMethod.VOUCHING,
    VerificationMethod.VOUCHING_WITH_CONFIRMATION,
)
PHOTO_DOCUMENTS = {
    "passport": "Passport",
    "driving_licence": "Photo driving licence",
    "id_card": "National ID card",
    "residence_permit": "Biometric residence permit",
}
OTHER_DOCUMENTS = {
    "utility_bill": "Utility bill (last 3 months)",
    "bank_statement": "Bank statement",
    "council_tax": "Council tax bill",
    "benefits_letter": "Benefits letter",
    "birth_certificate": "Birth certificate",
}
DOCUMENTS = {**PHOTO_DOCUMENTS, **OTHER_DOCUMENTS}


def staff_method(method: str) -> VerificationMethod:
    """The way reception checked someone's identity; only the in-practice methods are theirs to choose."""
    if method not in {m.value for m in STAFF_METHODS}:
        raise InputError("Choose how you verified this person's identity", "method")
    return VerificationMethod(method)


def documents_seen(method: VerificationMethod, documents: list[str]) -> list[dict[str, object]]:
    """Rule 3: documents means at least two documents seen, one of them with a photo."""
    if method is not VerificationMethod.DOCUMENTS:
        return []
    chosen = [d for d in dict.fromkeys(documents) if d in DOCUMENTS]
    if len(chosen) < 2:
        raise InputError("Select at least 2 documents you have seen", "documents")
    if not any(d in PHOTO_DOCUMENTS for d in chosen):
        raise InputError("Select at least 1 document with a photo, like a passport or driving licence", "documents")
    return [{"type": d, "photo": d in PHOTO_DOCUMENTS} for d in chosen]


def remote_vouching_only(method: VerificationMethod, remote: bool) -> bool:
    """Rule 3: vouching by phone or video alone never opens the detailed or full record."""
    return remote and method is not VerificationMethod.DOCUMENTS


def _squash(text: str) -> str:
    return "".join(text.split()).upper()


def details_match(person: Demographics, born: dt.date, family_name: str, postcode: str) -> bool:
    """Whether what someone typed matches the clinical system's record: date of birth, family name and
    postcode, ignoring case and spaces (the first name is often shortened, so it is left to reception)."""
    return (
        person.date_of_birth == born
        and _squash(person.family_name) == _squash(family_name)
        and _squash(person.postcode) == _squash(postcode)
    )


NOTES_MAX = 2000


@dataclass(frozen=True)
class IdentityCheck:
    """One identity check as the staff member made it (rule 3): what is recorded is exactly what they said."""

    method: VerificationMethod
    documents: list[dict[str, object]]
    remote: bool
    notes: str

    @property
    def remote_vouching_only(self) -> bool:
        return remote_vouching_only(self.method, self.remote)


def identity_check(method: str, documents: list[str], remote: bool, notes: str) -> IdentityCheck:
    """The check reception says they made, refused unless it meets rule 3 (a method; documents: two, one
    with a photo). Documents ticked for a vouching check were not the basis of it and are not recorded."""
    chosen = staff_method(method)
    text = notes.strip()
    if len(text) > NOTES_MAX:
        raise InputError(f"Notes must be {NOTES_MAX} characters or fewer", "notes")
    return IdentityCheck(method=chosen, documents=documents_seen(chosen, documents), remote=remote, notes=text)


@dataclass(frozen=True)
class PatientSummary:
    """A practice patient as the gateway holds them, for reception's pages."""

    id: int
    nhs_number: str
    given_name: str
    family_name: str
    date_of_birth: dt.date
    online_account_id: str

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}"


@dataclass(frozen=True)
class LinkRequestView:
    """A request to link an account, as the patient and reception see it."""

    id: int
    status: LinkRequestStatus
    practice_name: str
    nhs_number: str
    given_name: str
    family_name: str
    date_of_birth: dt.date
    postcode: str
    email: str
    created_at: dt.datetime
    rejection_reason: str = ""
    # Whether the details matched the clinical system when sent; for reception only, never the patient's pages.
    matched: bool = True
