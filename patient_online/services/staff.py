"""Staff accounts and their roles at practices."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from patient_online.crypto import hash_password
from patient_online.domain.errors import DomainError
from patient_online.domain.passwords import password_problem
from patient_online.models import Practice, StaffMembership, User

from . import audit
from .accounts import find_by_email, normalise_email

ROLES = ("receptionist", "practice_manager")


class StaffError(DomainError):
    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


def create_staff(
    session: Session,
    *,
    email: str,
    password: str,
    role: str,
    practice_ods: str | None,
    name: str = "",
    actor_id: int | None = None,
) -> User:
    """A new staff account with one role; it enrols an authenticator app at first sign-in."""
    email = normalise_email(email)
    if "@" not in email:
        raise StaffError("Enter an email address in the correct format, like name@example.com", "email")
    if find_by_email(session, email) is not None:
        raise StaffError("There is already an account with this email address", "email")
    problem = password_problem(password, [email.split("@")[0]])
    if problem:
        raise StaffError(problem, "password")
    given, _, family = name.strip().partition(" ")
    user = User(kind="staff", email=email, password_hash=hash_password(password), given_name=given, family_name=family)
    if role == "system_admin":
        user.is_system_admin = True
        session.add(user)
        session.flush()
        audit.record(session, "staff.created", actor_id=actor_id, subject_user_id=user.id, role=role)
    else:
        practice = _practice(session, practice_ods)
        session.add(user)
        session.flush()
        _add_role(session, user, practice, role, actor_id)
    session.commit()
    return user


def _practice(session: Session, ods: str | None) -> Practice:
    practice = session.scalar(select(Practice).where(Practice.ods_code == (ods or "").upper()))
    if practice is None:
        raise StaffError("Enter the ODS code of a practice on the gateway", "practice")
    return practice


def _add_role(session: Session, user: User, practice: Practice, role: str, actor_id: int | None) -> None:
    if role not in ROLES:
        raise StaffError("Choose a role", "role")
    session.add(StaffMembership(user_id=user.id, practice_id=practice.id, role=role, created_by_id=actor_id))
    audit.record(
        session, "staff.role_added", actor_id=actor_id, subject_user_id=user.id, practice_id=practice.id, role=role
    )


def add_role(session: Session, practice: Practice, email: str, role: str, actor_id: int) -> User:
    user = find_by_email(session, email)
    if user is None or not user.is_staff:
        raise StaffError("There is no staff account with this email address", "email")
    if any(m.practice_id == practice.id and m.role == role for m in user.memberships):
        raise StaffError("This person already has that role at your practice", "role")
    _add_role(session, user, practice, role, actor_id)
    session.commit()
    return user


def remove_role(session: Session, practice: Practice, membership_id: int, actor_id: int) -> None:
    membership = session.get(StaffMembership, membership_id)
    if membership is None or membership.practice_id != practice.id:
        raise StaffError("We could not find that member of staff at your practice")
    if membership.user_id == actor_id and membership.role == "practice_manager":
        raise StaffError("You cannot remove your own practice manager role")
    session.delete(membership)
    audit.record(
        session,
        "staff.role_removed",
        actor_id=actor_id,
        subject_user_id=membership.user_id,
        practice_id=practice.id,
        role=membership.role,
    )
    session.commit()


def practice_staff(session: Session, practice: Practice) -> list[StaffMembership]:
    return list(
        session.scalars(
            select(StaffMembership).where(StaffMembership.practice_id == practice.id).order_by(StaffMembership.id)
        )
    )
