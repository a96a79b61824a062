"""Identity checks and links to the GP record: statuses, the documents rule, and what reception sees (rule 3)."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from .access import VerificationMethod
from .errors import InputError


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
