"""Which account an NHS login signs into, with a fake unit of work.

The rule under test: an NHS login is bound to an existing account only when its subject is already stored
there, or when it is P9 and its NHS number and birth date are those of the account's linked GP record at the
practice NHS login names. Never by email address, whatever the proofing level; below P9 nothing is linked.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from patient_online.domain.identity import (
    AccountMatch,
    Identity,
    IdentityProviderUnavailable,
    LinkOutcome,
    NHSLoginBelongsElsewhere,
    may_bind_by_record,
)
from patient_online.domain.nhs_number import is_valid
from patient_online.models import AccountLink, Patient, Practice, User
from patient_online.services import nhs_login
from tests.fakes import FakeUnitOfWork
from tests.unit.conftest import linked_user, patient, practice, user

BORN = dt.date(1980, 5, 17)
OWNER_EMAIL = "owner@example.org"


def valid_nhs_number(start: int = 943_476_591) -> str:
    return next(str(n) for n in range(start * 10, start * 10 + 100) if is_valid(str(n)))


def identity(level: str = "P9", **fields: str | bool) -> Identity:
    base = Identity(
        sub="nhs-login-sub-9",
        proofing_level=level,
        nhs_number=valid_nhs_number(),
        birthdate=BORN.isoformat(),
        family_name="Okafor",
        given_name="Sam",
        email="sam.okafor@example.org",
        email_verified=True,
        gp_ods_code="",
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def owned_record(uow: FakeUnitOfWork) -> tuple[Practice, Patient, User]:
    """A practice, a GP record on the gateway and the password account linked to it."""
    surgery = practice(uow)
    record = patient(uow, surgery, born=BORN)
    record.nhs_number = valid_nhs_number()
    owner = linked_user(uow, record, email=OWNER_EMAIL)
    uow.commit()
    return surgery, record, owner


def users(uow: FakeUnitOfWork) -> int:
    return int(uow.session.scalar(select(func.count()).select_from(User)) or 0)


def links_of(uow: FakeUnitOfWork, person: User) -> list[int]:
    return list(uow.session.scalars(select(AccountLink.patient_id).where(AccountLink.user_id == person.id)))


# The domain rule ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("level", "nhs_number", "born", "binds"),
    [
        ("P9", valid_nhs_number(), BORN, True),
        ("P9", valid_nhs_number(), dt.date(1950, 1, 1), False),
        ("P9", valid_nhs_number(943_476_600), BORN, False),
        ("P5", valid_nhs_number(), BORN, False),
        ("P0", valid_nhs_number(), BORN, False),
        ("", valid_nhs_number(), BORN, False),
    ],
)
def test_only_p9_with_both_nhs_number_and_birth_date_may_bind(
    level: str, nhs_number: str, born: dt.date, binds: bool
) -> None:
    assert may_bind_by_record(identity(level), nhs_number, born) is binds


def test_an_identity_without_a_readable_birth_date_never_binds() -> None:
    assert not may_bind_by_record(identity(birthdate="17/05/1980"), valid_nhs_number(), BORN)
    assert not may_bind_by_record(identity(nhs_number=""), "", BORN)


# The use case ---------------------------------------------------------------------------------------------
def test_a_stored_sub_signs_into_its_account_whatever_the_level_and_email(uow: FakeUnitOfWork) -> None:
    surgery, _, owner = owned_record(uow)
    owner.nhs_login_sub = "nhs-login-sub-9"
    result = nhs_login.sign_in_with_nhs_login(
        uow, identity("P5", email="new.address@example.org", gp_ods_code=surgery.ods_code)
    )
    assert result.user.id == owner.id and result.match is AccountMatch.BY_SUB
    assert result.outcome is LinkOutcome.ALREADY_LINKED and users(uow) == 1
    assert owner.email == OWNER_EMAIL


def test_p9_with_the_records_nhs_number_and_birth_date_binds_the_existing_account(uow: FakeUnitOfWork) -> None:
    surgery, record, owner = owned_record(uow)
    confirmed = owner.email_confirmed_at
    result = nhs_login.sign_in_with_nhs_login(uow, identity(gp_ods_code=surgery.ods_code.lower()))
    assert result.user.id == owner.id and result.match is AccountMatch.BY_RECORD
    assert owner.nhs_login_sub == "nhs-login-sub-9" and result.outcome is LinkOutcome.ALREADY_LINKED
    assert owner.email == OWNER_EMAIL and owner.email_confirmed_at == confirmed  # another address: not confirmed
    assert links_of(uow, owner) == [record.id] and users(uow) == 1
    assert uow.audit_actions() == ["nhs_login.bound", "sign_in"] and uow.system.calls == []


def test_signing_in_again_after_binding_finds_the_account_by_its_sub(uow: FakeUnitOfWork) -> None:
    surgery, _, owner = owned_record(uow)
    nhs_login.sign_in_with_nhs_login(uow, identity(gp_ods_code=surgery.ods_code))
    again = nhs_login.sign_in_with_nhs_login(uow, identity("P5", gp_ods_code=surgery.ods_code))
    assert again.user.id == owner.id and again.match is AccountMatch.BY_SUB


def test_p9_with_the_right_nhs_number_but_another_birth_date_gets_its_own_account(uow: FakeUnitOfWork) -> None:
    surgery, _, owner = owned_record(uow)
    result = nhs_login.sign_in_with_nhs_login(
        uow, identity(gp_ods_code=surgery.ods_code, birthdate="1950-01-01", email=OWNER_EMAIL)
    )
    assert result.user.id != owner.id and owner.nhs_login_sub is None
    assert result.match is AccountMatch.NEW_EMAIL_IN_USE and links_of(uow, result.user) == []


def test_p9_at_another_practice_is_not_bound_to_this_practices_record(uow: FakeUnitOfWork) -> None:
    _, _, owner = owned_record(uow)
    elsewhere = practice(uow)
    result = nhs_login.sign_in_with_nhs_login(uow, identity(gp_ods_code=elsewhere.ods_code))
    assert result.user.id != owner.id and owner.nhs_login_sub is None


def test_p9_of_another_person_with_the_owners_email_gets_a_separate_account(uow: FakeUnitOfWork) -> None:
    surgery, _, owner = owned_record(uow)
    someone = identity(gp_ods_code=surgery.ods_code, nhs_number=valid_nhs_number(943_476_600), email=OWNER_EMAIL)
    result = nhs_login.sign_in_with_nhs_login(uow, someone)
    assert result.user.id != owner.id and owner.nhs_login_sub is None and result.separate_account
    assert result.user.email == "nhs-login-sub-9@nhs-login.invalid" and result.user.email_confirmed_at is None
    assert result.user.nhs_login_sub == "nhs-login-sub-9" and result.user.second_factor == "nhs_login"


@pytest.mark.parametrize("level", ["P5", "P0", ""])
def test_below_p9_with_the_owners_email_and_details_gets_a_separate_account_and_no_record(
    uow: FakeUnitOfWork, level: str
) -> None:
    surgery, _, owner = owned_record(uow)
    result = nhs_login.sign_in_with_nhs_login(
        uow, identity(level, gp_ods_code=surgery.ods_code, email="OWNER@example.org")
    )
    assert result.user.id != owner.id and owner.nhs_login_sub is None
    assert result.match is AccountMatch.NEW_EMAIL_IN_USE and result.outcome is LinkOutcome.NEEDS_P9
    assert links_of(uow, result.user) == [] and uow.system.calls == []


def test_an_unverified_email_is_neither_bound_nor_kept(uow: FakeUnitOfWork) -> None:
    _, _, owner = owned_record(uow)
    result = nhs_login.sign_in_with_nhs_login(uow, identity("P5", email=OWNER_EMAIL, email_verified=False))
    assert result.user.id != owner.id and result.match is AccountMatch.NEW and not result.separate_account
    assert result.user.email == "nhs-login-sub-9@nhs-login.invalid"


def test_a_new_person_keeps_the_email_nhs_login_confirmed(uow: FakeUnitOfWork) -> None:
    result = nhs_login.sign_in_with_nhs_login(uow, identity("P5", email="Sam.Okafor@Example.org"))
    assert result.match is AccountMatch.NEW and result.user.email == "sam.okafor@example.org"
    assert result.user.email_confirmed_at == uow.now()


def test_a_record_bound_to_another_nhs_login_is_refused_and_audited(uow: FakeUnitOfWork) -> None:
    surgery, _, owner = owned_record(uow)
    owner.nhs_login_sub = "an-earlier-nhs-login"
    uow.commit()
    with pytest.raises(NHSLoginBelongsElsewhere):
        nhs_login.sign_in_with_nhs_login(uow, identity(gp_ods_code=surgery.ods_code))
    assert owner.nhs_login_sub == "an-earlier-nhs-login" and users(uow) == 1
    assert uow.audit_actions() == ["sign_in.failed"]


def test_two_accounts_on_one_record_are_not_guessed_between(uow: FakeUnitOfWork) -> None:
    surgery, record, owner = owned_record(uow)
    second = linked_user(uow, record)
    result = nhs_login.sign_in_with_nhs_login(uow, identity(gp_ods_code=surgery.ods_code))
    assert result.user.id not in (owner.id, second.id) and result.outcome is LinkOutcome.NOT_MATCHED


def test_a_staff_account_is_never_bound(uow: FakeUnitOfWork) -> None:
    surgery, record, _ = owned_record(uow)
    colleague = user(uow, kind="staff")
    uow.session.add(AccountLink(user_id=colleague.id, patient_id=record.id, method="letter"))
    result = nhs_login.sign_in_with_nhs_login(uow, identity(gp_ods_code=surgery.ods_code))
    assert result.user.id != colleague.id and colleague.nhs_login_sub is None


class Unreachable:
    def authorization_url(self) -> tuple[str, str, str]:
        raise IdentityProviderUnavailable("discovery unreachable (ConnectError)")

    def redeem(self, code: str, nonce: str) -> Identity:
        raise IdentityProviderUnavailable("token request failed (ConnectError)")


def test_a_provider_that_cannot_be_reached_is_audited_and_nobody_is_signed_in(uow: FakeUnitOfWork) -> None:
    with pytest.raises(IdentityProviderUnavailable):
        nhs_login.finish_sign_in(uow, Unreachable(), "code-1", "nonce-1")
    assert users(uow) == 0 and uow.audit_actions() == ["sign_in.failed"]
    with pytest.raises(IdentityProviderUnavailable):
        nhs_login.begin_sign_in(Unreachable())
