"""Write audit events in the caller's transaction (design rule 19).

An event is written without a hash, at no extra cost to the request; ``services/audit_chain.seal`` (``flask audit
seal``) links it into its practice's hash chain soon after, and ``flask audit verify`` proves the chains.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from patient_online.models import AuditEvent


def record(
    session: Session,
    action: str,
    *,
    actor_id: int | None = None,
    actor_role: str = "",
    patient_id: int | None = None,
    subject_user_id: int | None = None,
    practice_id: int | None = None,
    **detail: Any,
) -> AuditEvent:
    """Add an audit event to ``session``; it commits with the change it describes, or not at all."""
    event = AuditEvent(
        action=action,
        actor_user_id=actor_id,
        actor_role=actor_role,
        patient_id=patient_id,
        subject_user_id=subject_user_id,
        practice_id=practice_id,
        detail=detail,
        request_id="",
    )
    session.add(event)
    return event
