"""Staff accounts and their roles at practices."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from patient_online.crypto import hash_password
from patient_online.domain.accounts import PRACTICE_ROLES, AccountKind, StaffRole
from patient_online.domain.errors import InputError, NotAllowed
from patient_online.domain.passwords import password_problem
from patient_online.models import Practice, StaffMembership, User

from .accounts import EMAIL_FORMAT, find_by_email, normalise_email
from .unit_of_work import AbstractUnitOfWork

ROLES = tuple(r.value for r in PRACTICE_ROLES)
# What a manager is told for any address already in use, whoever uses it: a manager must not learn from this form
# that someone is a patient on the gateway (or has a staff account at another practice).
EMAIL_NOT_USABLE = (
    "You cannot use this email address for a new staff account. Use their work email address, or ask your "
    "system administrator to give an existing staff account a role at your practice"
)


@dataclass(frozen=True)
class StaffCreated:
    user_id: int
    email: str
    role: StaffRole


@dataclass(frozen=True)
class StaffPerson:
    display_name: str
    email: str
    totp_enrolled_at: dt.datetime | None


@dataclass(frozen=True)
class StaffMember:
    """One role of one person at the practice (``id`` is the membership's)."""

    id: int
    user_id: int
    role: str
    user: StaffPerson


def create_staff(
    uow: AbstractUnitOfWork,
    *,
    email: str,
    password: str,
    role: str,
    practice_ods: str | None,
    name: str = "",
    actor_id: int | None = None,
) -> StaffCreated:
    """A new staff account with one role. The password is a temporary one someone else chose: it must be
    changed at first sign-in, after the authenticator app is set up and before any staff page."""
    email = normalise_email(email)
    if "@" not in email:
        raise InputError(EMAIL_FORMAT, "email")
    if find_by_email(uow, email) is not None:
        raise InputError("There is already an account with this email address", "email")
    problem = password_problem(password, [email.split("@")[0]])
    if problem:
        raise InputError(problem, "password")
    practice = None
    if role != StaffRole.SYSTEM_ADMIN:
        practice = _practice(uow, practice_ods)
        _check_role(role)
    given, _, family = name.strip().partition(" ")
    user = User(
        kind=AccountKind.STAFF.value,
        email=email,
        password_hash=hash_password(password),
        given_name=given,
        family_name=family,
        must_change_password=True,
    )
    user.is_system_admin = practice is None
    uow.session.add(user)
    uow.flush()
    if practice is None:
        uow.audit("staff.created", actor_id=actor_id, subject_user_id=user.id, role=role)
    else:
        _add_role(uow, user, practice, role, actor_id)
    uow.commit()
    return StaffCreated(user.id, user.email, StaffRole(role))


def add_staff(
    uow: AbstractUnitOfWork, practice: Practice, *, email: str, role: str, password: str, name: str, actor_id: int
) -> None:
    """A manager adds a role at their practice: to someone already on its staff, or to a new account (which
    needs a temporary password).

    Every other address gets the same checks in the same order, and one message if it is in use, so the answer
    never says whether the address belongs to a patient, to staff elsewhere, or to nobody."""
    existing = find_by_email(uow, email)
    if existing is not None and existing.is_staff and any(m.practice_id == practice.id for m in existing.memberships):
        add_role(uow, practice, email, role, actor_id)
        return
    if not password:
        raise InputError("Enter a temporary password for the new account", "password")
    email = normalise_email(email)
    if "@" not in email:
        raise InputError(EMAIL_FORMAT, "email")
    problem = password_problem(password, [email.split("@")[0]])
    if problem:
        raise InputError(problem, "password")
    _check_role(role)
    if existing is not None:
        hash_password(password)  # the work of creating an account, so the time taken says nothing either
        raise InputError(EMAIL_NOT_USABLE, "email")
    create_staff(
        uow, email=email, password=password, role=role, practice_ods=practice.ods_code, name=name, actor_id=actor_id
    )


def _practice(uow: AbstractUnitOfWork, ods: str | None) -> Practice:
    practice = uow.session.scalar(select(Practice).where(Practice.ods_code == (ods or "").upper()))
    if practice is None:
        raise InputError("Enter the ODS code of a practice on the gateway", "practice")
    return practice


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise InputError("Choose a role", "role")


def _add_role(uow: AbstractUnitOfWork, user: User, practice: Practice, role: str, actor_id: int | None) -> None:
    _check_role(role)
    uow.session.add(StaffMembership(user_id=user.id, practice_id=practice.id, role=role, created_by_id=actor_id))
    uow.audit("staff.role_added", actor_id=actor_id, subject_user_id=user.id, practice_id=practice.id, role=role)


def add_role(uow: AbstractUnitOfWork, practice: Practice, email: str, role: str, actor_id: int) -> None:
    """Give an existing staff account a role at the practice."""
    user = find_by_email(uow, email)
    if user is None or not user.is_staff:
        raise InputError("There is no staff account with this email address", "email")
    if any(m.practice_id == practice.id and m.role == role for m in user.memberships):
        raise InputError("This person already has that role at your practice", "role")
    _add_role(uow, user, practice, role, actor_id)
    uow.commit()


def remove_role(uow: AbstractUnitOfWork, practice: Practice, membership_id: int, actor_id: int) -> None:
    """Take one role away; a manager cannot remove their own manager role (the practice would have none)."""
    membership = uow.session.get(StaffMembership, membership_id)
    if membership is None or membership.practice_id != practice.id:
        raise InputError("We could not find that member of staff at your practice")
    if membership.user_id == actor_id and membership.role == StaffRole.PRACTICE_MANAGER:
        raise InputError("You cannot remove your own practice manager role")
    uow.session.delete(membership)
    uow.audit(
        "staff.role_removed",
        actor_id=actor_id,
        subject_user_id=membership.user_id,
        practice_id=practice.id,
        role=membership.role,
    )
    uow.commit()


def practice_staff(uow: AbstractUnitOfWork, practice: Practice) -> list[StaffMember]:
    """Everyone with a role at the practice, in the order they were given it."""
    memberships = uow.session.scalars(
        select(StaffMembership).where(StaffMembership.practice_id == practice.id).order_by(StaffMembership.id)
    )
    return [
        StaffMember(m.id, m.user_id, m.role, StaffPerson(m.user.display_name, m.user.email, m.user.totp_enrolled_at))
        for m in memberships
    ]


PRACTICE_SWITCHED = "staff.practice_switched"


def choose_practice(uow: AbstractUnitOfWork, user: User, role: str, wanted: int | None, current: int | None) -> int:
    """The practice a member of staff works in for this request, among those where they hold ``role``: the one
    asked for, else the one chosen before, else the first. Moving from one practice to another is audited.

    Raises NotAllowed when they hold the role nowhere."""
    ids = sorted(m.practice_id for m in user.memberships if m.role == role)
    if not ids:
        raise NotAllowed("You do not have this role at any practice.")
    chosen = wanted if wanted in ids else current if current in ids else ids[0]
    if current in ids and chosen != current:
        uow.audit(
            PRACTICE_SWITCHED, actor_id=user.id, actor_role=role, practice_id=chosen, previous_practice_id=current
        )
        uow.commit()
    return chosen
