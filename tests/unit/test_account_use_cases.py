"""Account, staff and NHS login use cases with a fake unit of work: registration, email codes, password
resets, second factors, staff accounts and what signing in with NHS login links or refuses.

Codes and authenticator secrets are keyed with the app's secret, so the tests that send or check a code run
inside a bare app context (``keyed``) holding only that secret. Password hashing is swapped for a cheap
stand-in (``quick_hashing``): its cost is the point in production and only slows the rules' tests.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pyotp
import pytest
from flask import Flask
from sqlalchemy import func, select, update

from patient_online.crypto import encrypt
from patient_online.domain.accounts import CodePurpose, SignInStep, StaffRole
from patient_online.domain.errors import ClinicalSystemUnavailable, InputError
from patient_online.domain.identity import AuthorizationRequest, Identity, IdentityRefused, LinkOutcome
from patient_online.domain.nhs_number import is_valid
from patient_online.domain.patients import Demographics, PatientRef
from patient_online.models import AccountLink, OneTimeCode, Practice, StaffMembership, User, Verification
from patient_online.services import accounts, nhs_login, staff
from patient_online.services.unit_of_work import FixedClock
from tests.fakes import FakeUnitOfWork
from tests.unit.conftest import linked_user, patient, practice, user

STRONG = "purple-kettle-orbit-42"
OTHER_STRONG = "granite-violin-harbour-7"
WEAK = "password123"


def hash_password(password: str) -> str:
    return f"quick${password}"


@pytest.fixture(autouse=True)
def quick_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accounts, "hash_password", hash_password)
    monkeypatch.setattr(accounts, "check_password", lambda stored, password: stored == hash_password(password))
    monkeypatch.setattr(staff, "hash_password", hash_password)


@pytest.fixture
def keyed() -> Iterator[None]:
    app = Flask("accounts-test")
    app.config["SECRET_KEY"] = "unit-test-secret"
    with app.app_context():
        yield


def last_code(uow: FakeUnitOfWork) -> str:
    found = re.search(r"security code is (\d{6})", uow.sent[-1].body)
    assert found is not None
    return found.group(1)


def later(uow: FakeUnitOfWork, **delta: float) -> None:
    assert isinstance(uow.clock, FixedClock)
    uow.clock.advance(**delta)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def count(uow: FakeUnitOfWork, model: Any) -> int:
    return int(uow.session.scalar(select(func.count()).select_from(model)) or 0)


def fresh(uow: FakeUnitOfWork) -> None:
    """Forget the commits made while setting the scene."""
    uow.commit()
    uow.commits = 0


def with_password(uow: FakeUnitOfWork, password: str = STRONG, **fields: Any) -> User:
    person = user(uow, password_hash=hash_password(password), **fields)
    fresh(uow)
    return person


def registered(uow: FakeUnitOfWork, email: str = "sam.taylor@example.org") -> User:
    user_id = accounts.register(uow, email, STRONG)
    assert user_id is not None
    found = uow.session.get(User, user_id)
    assert found is not None
    uow.commits = 0
    return found


# Registration ----------------------------------------------------------------------------------------------
def test_registration_refuses_an_address_that_is_not_an_email(uow: FakeUnitOfWork) -> None:
    with pytest.raises(InputError) as refused:
        accounts.register(uow, "sam.taylor.example.org", STRONG)
    assert (refused.value.field, refused.value.message) == ("email", accounts.EMAIL_FORMAT)
    assert (count(uow, User), uow.commits, uow.sent) == (0, 0, [])


@pytest.mark.parametrize(
    ("password", "message"),
    [("short1", "Password must be 10 characters or more"), (WEAK, "too easy to guess")],
)
def test_registration_refuses_a_weak_password(uow: FakeUnitOfWork, password: str, message: str) -> None:
    with pytest.raises(InputError) as refused:
        accounts.register(uow, "sam.taylor@example.org", password)
    assert refused.value.field == "password" and message in refused.value.message
    assert (count(uow, User), uow.commits, uow.sent) == (0, 0, [])


def test_registering_an_existing_email_creates_nothing_and_tells_the_owner(uow: FakeUnitOfWork) -> None:
    owner = user(uow, email="sam.taylor@example.org")
    fresh(uow)
    assert accounts.register(uow, " Sam.Taylor@Example.org ", STRONG) is None
    assert count(uow, User) == 1
    assert [(m.to, m.template) for m in uow.sent] == [("sam.taylor@example.org", "register_existing")]
    assert uow.audit_actions() == ["account.register_duplicate"]
    assert uow.commits == 1 and owner.email_confirmed_at is None


def test_registering_sends_a_confirmation_code(uow: FakeUnitOfWork, keyed: None) -> None:
    user_id = accounts.register(uow, "Sam.Taylor@example.org", STRONG, " 07700 900123 ")
    created = uow.session.get(User, user_id)
    assert created is not None and created.email == "sam.taylor@example.org" and created.mobile == "07700 900123"
    assert created.email_confirmed_at is None
    assert [(m.to, m.template) for m in uow.sent] == [("sam.taylor@example.org", "confirm_email")]
    assert uow.audit_actions() == ["account.registered"]
    assert uow.commits == 1


# Email confirmation codes ---------------------------------------------------------------------------------
def test_the_right_code_confirms_the_email(uow: FakeUnitOfWork, keyed: None) -> None:
    person = registered(uow)
    accounts.confirm_email(uow, person, last_code(uow))
    assert person.email_confirmed_at == uow.now()
    assert uow.audit_actions()[-1] == "account.email_confirmed" and uow.commits == 1


def test_a_wrong_code_is_refused_and_counted(uow: FakeUnitOfWork, keyed: None) -> None:
    person = registered(uow)
    with pytest.raises(InputError) as refused:
        accounts.confirm_email(uow, person, wrong(last_code(uow)))
    assert (refused.value.field, refused.value.message) == ("code", accounts.CODE_WRONG)
    assert person.email_confirmed_at is None
    assert uow.session.scalars(select(OneTimeCode.attempts)).one() == 1 and uow.commits == 1


def test_an_expired_code_is_refused(uow: FakeUnitOfWork, keyed: None) -> None:
    person = registered(uow)
    code = last_code(uow)
    later(uow, minutes=15, seconds=1)
    with pytest.raises(InputError, match=accounts.CODE_EXPIRED):
        accounts.confirm_email(uow, person, code)
    assert person.email_confirmed_at is None


def test_a_code_still_works_just_before_it_expires(uow: FakeUnitOfWork, keyed: None) -> None:
    person = registered(uow)
    code = last_code(uow)
    later(uow, minutes=14, seconds=59)
    accounts.confirm_email(uow, person, code)
    assert person.email_confirmed_at is not None


def test_a_code_already_used_is_refused(uow: FakeUnitOfWork, keyed: None) -> None:
    person = registered(uow)
    code = last_code(uow)
    accounts.confirm_email(uow, person, code)
    with pytest.raises(InputError, match=accounts.CODE_WRONG):
        accounts.confirm_email(uow, person, code)
    assert uow.audit_actions().count("account.email_confirmed") == 1


def test_five_wrong_codes_end_the_code(uow: FakeUnitOfWork, keyed: None) -> None:
    person = registered(uow)
    code = last_code(uow)
    for _ in range(accounts.MAX_CODE_ATTEMPTS):
        with pytest.raises(InputError, match=accounts.CODE_WRONG):
            accounts.confirm_email(uow, person, wrong(code))
    with pytest.raises(InputError, match=accounts.CODE_EXPIRED):
        accounts.confirm_email(uow, person, code)


def test_a_new_code_replaces_the_last(uow: FakeUnitOfWork, keyed: None) -> None:
    person = registered(uow)
    first = last_code(uow)
    accounts.resend_code(uow, person, CodePurpose.CONFIRM_EMAIL)
    second = last_code(uow)
    if first != second:
        with pytest.raises(InputError):
            accounts.confirm_email(uow, person, first)
    accounts.confirm_email(uow, person, second)
    assert person.email_confirmed_at is not None


# Password reset --------------------------------------------------------------------------------------------
def test_a_reset_for_an_unknown_email_sends_nothing(uow: FakeUnitOfWork) -> None:
    accounts.request_password_reset(uow, "nobody@example.org")
    assert (uow.sent, uow.commits, uow.audit_actions()) == ([], 0, [])


def test_a_reset_for_an_unknown_email_says_the_code_is_wrong(uow: FakeUnitOfWork) -> None:
    with pytest.raises(InputError) as refused:
        accounts.reset_password(uow, "nobody@example.org", "123456", STRONG)
    assert (refused.value.field, refused.value.message) == ("code", accounts.RESET_CODE_WRONG)


def test_a_reset_refuses_a_weak_password_before_using_the_code(uow: FakeUnitOfWork, keyed: None) -> None:
    person = with_password(uow)
    accounts.request_password_reset(uow, person.email)
    code = last_code(uow)
    with pytest.raises(InputError) as refused:
        accounts.reset_password(uow, person.email, code, WEAK)
    assert refused.value.field == "password"
    accounts.reset_password(uow, person.email, code, OTHER_STRONG)  # the code still works


def test_a_reset_with_a_wrong_code_changes_nothing(uow: FakeUnitOfWork, keyed: None) -> None:
    person = with_password(uow)
    before = person.password_hash
    accounts.request_password_reset(uow, person.email)
    with pytest.raises(InputError, match=accounts.RESET_CODE_WRONG):
        accounts.reset_password(uow, person.email, wrong(last_code(uow)), OTHER_STRONG)
    assert person.password_hash == before and person.session_epoch == 0


def test_a_reset_changes_the_password_ends_sessions_and_uses_the_code(uow: FakeUnitOfWork, keyed: None) -> None:
    person = with_password(uow)
    before = person.password_hash
    accounts.request_password_reset(uow, person.email.upper())
    assert [m.template for m in uow.sent] == ["reset_password"]
    code = last_code(uow)
    accounts.reset_password(uow, person.email, code, OTHER_STRONG)
    assert person.password_hash != before and person.session_epoch == 1
    assert uow.audit_actions() == ["account.reset_requested", "account.password_reset"]
    with pytest.raises(InputError, match=accounts.RESET_CODE_WRONG):
        accounts.reset_password(uow, person.email, code, STRONG)


def test_changing_the_password_needs_the_current_one(uow: FakeUnitOfWork) -> None:
    person = with_password(uow)
    with pytest.raises(InputError) as refused:
        accounts.change_password(uow, person, OTHER_STRONG, "granite-violin-harbour-8")
    assert refused.value.field == "current_password" and person.session_epoch == 0 and uow.commits == 0


# Signing in ------------------------------------------------------------------------------------------------
def test_a_wrong_password_is_audited_and_signs_nobody_in(uow: FakeUnitOfWork) -> None:
    person = with_password(uow)
    assert accounts.check_password_sign_in(uow, person.email, OTHER_STRONG) is None
    assert uow.audit_actions() == ["sign_in.failed"] and uow.commits == 1


def test_an_unknown_email_signs_nobody_in_and_records_nothing(uow: FakeUnitOfWork) -> None:
    assert accounts.check_password_sign_in(uow, "nobody@example.org", STRONG) is None
    assert (uow.audit_actions(), uow.commits) == ([], 0)


def test_an_unconfirmed_patient_goes_to_set_up_first(uow: FakeUnitOfWork) -> None:
    person = with_password(uow, second_factor="email")
    checked = accounts.check_password_sign_in(uow, person.email, STRONG)
    assert checked == accounts.PasswordChecked(person.id, SignInStep.SETUP) and uow.sent == []


def test_an_email_code_is_sent_when_that_is_the_second_factor(uow: FakeUnitOfWork, keyed: None) -> None:
    person = with_password(uow, second_factor="email", email_confirmed_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    checked = accounts.check_password_sign_in(uow, person.email, STRONG)
    assert checked == accounts.PasswordChecked(person.id, SignInStep.CODE)
    assert [m.template for m in uow.sent] == ["sign_in"]
    with pytest.raises(InputError, match=accounts.CODE_WRONG):
        accounts.check_second_factor(uow, person, wrong(last_code(uow)))
    assert uow.audit_actions() == ["sign_in.failed"] and person.last_sign_in_at is None
    accounts.check_second_factor(uow, person, last_code(uow))
    assert uow.audit_actions() == ["sign_in.failed", "sign_in"] and person.last_sign_in_at == uow.now()


def test_a_wrong_authenticator_code_is_refused_and_audited(uow: FakeUnitOfWork, keyed: None) -> None:
    secret = pyotp.random_base32()
    person = user(uow, kind="staff", totp_secret=encrypt(secret), totp_enrolled_at=uow.now())
    fresh(uow)
    with pytest.raises(InputError, match=accounts.APP_CODE_WRONG):
        accounts.check_second_factor(uow, person, "12345x")
    assert uow.audit_actions() == ["sign_in.failed"] and person.last_sign_in_at is None
    accounts.check_second_factor(uow, person, pyotp.TOTP(secret).now())
    assert uow.audit_actions()[-1] == "sign_in"


def test_staff_cannot_take_codes_by_email(uow: FakeUnitOfWork) -> None:
    person = user(uow, kind="staff")
    fresh(uow)
    with pytest.raises(InputError) as refused:
        accounts.choose_email_codes(uow, person)
    assert refused.value.field == "second_factor" and person.second_factor == "totp" and uow.sent == []


def test_enrolling_an_authenticator_needs_the_code_it_shows(uow: FakeUnitOfWork, keyed: None) -> None:
    person = user(uow, kind="staff")
    fresh(uow)
    secret = pyotp.random_base32()
    with pytest.raises(InputError) as refused:
        accounts.enrol_totp(uow, person, secret, "12345x")
    assert refused.value.field == "code" and person.totp_enrolled_at is None and uow.commits == 0
    accounts.enrol_totp(uow, person, secret, pyotp.TOTP(secret).now())
    assert uow.audit_actions() == ["account.totp_enrolled", "sign_in"] and uow.commits == 1


# Staff -------------------------------------------------------------------------------------------------------
def new_staff(uow: FakeUnitOfWork, **overrides: Any) -> staff.StaffCreated:
    arguments: dict[str, Any] = {
        "email": "robin.lee@practice.example",
        "password": STRONG,
        "role": "receptionist",
        "practice_ods": None,
        "name": "Robin Lee",
        "actor_id": None,
        **overrides,
    }
    return staff.create_staff(uow, **arguments)


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"email": "robin.lee"}, "email", accounts.EMAIL_FORMAT),
        ({"password": WEAK}, "password", "too easy to guess"),
        ({"practice_ods": "Z99999"}, "practice", "Enter the ODS code of a practice on the gateway"),
        ({"role": "doctor"}, "role", "Choose a role"),
        ({"role": "system_admin", "password": "short"}, "password", "Password must be 10 characters or more"),
    ],
)
def test_staff_creation_refusals(uow: FakeUnitOfWork, overrides: dict[str, Any], field: str, message: str) -> None:
    surgery = practice(uow)
    fresh(uow)
    with pytest.raises(InputError) as refused:
        new_staff(uow, **{"practice_ods": surgery.ods_code, **overrides})
    assert refused.value.field == field and message in refused.value.message
    assert (count(uow, User), count(uow, StaffMembership), uow.commits) == (0, 0, 0)


def test_staff_creation_refuses_an_email_already_in_use(uow: FakeUnitOfWork) -> None:
    surgery = practice(uow)
    user(uow, email="robin.lee@practice.example")
    fresh(uow)
    with pytest.raises(InputError) as refused:
        new_staff(uow, email="Robin.Lee@Practice.example", practice_ods=surgery.ods_code)
    assert (refused.value.field, refused.value.message) == (
        "email",
        "There is already an account with this email address",
    )
    assert count(uow, User) == 1


def test_a_practice_role_is_given_at_the_practice(uow: FakeUnitOfWork) -> None:
    surgery = practice(uow)
    fresh(uow)
    created = new_staff(uow, practice_ods=surgery.ods_code.lower(), role="practice_manager", actor_id=None)
    assert created.role is StaffRole.PRACTICE_MANAGER and created.email == "robin.lee@practice.example"
    member = uow.session.scalars(select(StaffMembership)).one()
    assert (member.user_id, member.practice_id, member.role) == (created.user_id, surgery.id, "practice_manager")
    made = uow.session.get(User, created.user_id)
    assert made is not None and made.kind == "staff" and not made.is_system_admin
    assert (made.given_name, made.family_name) == ("Robin", "Lee")
    assert uow.audit_actions() == ["staff.role_added"] and uow.commits == 1


def test_a_system_administrator_needs_no_practice(uow: FakeUnitOfWork) -> None:
    created = new_staff(uow, role="system_admin")
    made = uow.session.get(User, created.user_id)
    assert made is not None and made.is_system_admin and count(uow, StaffMembership) == 0
    assert uow.audit_actions() == ["staff.created"]


def test_a_manager_must_give_a_new_account_a_password(uow: FakeUnitOfWork) -> None:
    surgery = practice(uow)
    manager = user(uow, kind="staff")
    fresh(uow)
    with pytest.raises(InputError) as refused:
        staff.add_staff(
            uow, surgery, email="new@practice.example", role="receptionist", password="", name="", actor_id=manager.id
        )
    assert (refused.value.field, refused.value.message) == (
        "password",
        "Enter a temporary password for the new account",
    )


def test_a_role_is_added_to_an_existing_staff_account_once(uow: FakeUnitOfWork) -> None:
    surgery = practice(uow)
    manager = user(uow, kind="staff")
    colleague = user(uow, kind="staff")
    uow.session.add(StaffMembership(user_id=colleague.id, practice_id=surgery.id, role="practice_manager"))
    fresh(uow)
    uow.session.expire(colleague, ["memberships"])
    staff.add_staff(uow, surgery, email=colleague.email, role="receptionist", password="", name="", actor_id=manager.id)
    assert [m.role for m in staff.practice_staff(uow, surgery)] == ["practice_manager", "receptionist"]
    uow.session.expire(colleague, ["memberships"])
    with pytest.raises(InputError) as refused:
        staff.add_role(uow, surgery, colleague.email, "receptionist", manager.id)
    assert refused.value.fields == {"role": "This person already has that role at your practice"}


def test_a_patient_account_cannot_be_given_a_staff_role(uow: FakeUnitOfWork) -> None:
    surgery = practice(uow)
    someone = user(uow)
    fresh(uow)
    with pytest.raises(InputError) as refused:
        staff.add_role(uow, surgery, someone.email, "receptionist", 1)
    assert refused.value.fields == {"email": "There is no staff account with this email address"}


def test_a_manager_cannot_remove_their_own_manager_role_or_another_practices_staff(uow: FakeUnitOfWork) -> None:
    surgery, elsewhere = practice(uow), practice(uow)
    manager = user(uow, kind="staff")
    own = StaffMembership(user_id=manager.id, practice_id=surgery.id, role="practice_manager")
    theirs = StaffMembership(user_id=user(uow, kind="staff").id, practice_id=elsewhere.id, role="receptionist")
    uow.session.add_all([own, theirs])
    fresh(uow)
    with pytest.raises(InputError, match="You cannot remove your own practice manager role"):
        staff.remove_role(uow, surgery, own.id, manager.id)
    with pytest.raises(InputError, match="We could not find that member of staff at your practice"):
        staff.remove_role(uow, surgery, theirs.id, manager.id)
    assert count(uow, StaffMembership) == 2 and uow.commits == 0


# NHS login ---------------------------------------------------------------------------------------------------
def valid_nhs_number(start: int = 943_476_590) -> str:
    for n in range(start * 10, start * 10 + 100):
        if is_valid(str(n)):
            return str(n)
    raise AssertionError("no valid NHS number near the start")


def identity(level: str = "P9", **fields: Any) -> Identity:
    base = Identity(
        sub="nhs-login-sub-1",
        proofing_level=level,
        nhs_number=valid_nhs_number(),
        birthdate="1980-05-17",
        family_name="Jones",
        given_name="Ria",
        email="ria.jones@example.org",
        email_verified=True,
        gp_ods_code="",
    )
    return replace(base, **fields)


def on_record(uow: FakeUnitOfWork, surgery: Practice, who: Identity, born: dt.date = dt.date(1980, 5, 17)) -> None:
    uow.system.patients[who.nhs_number] = Demographics(
        PatientRef(surgery.ods_code, who.nhs_number, "C1"), who.given_name, who.family_name, born, "LS1 4AP"
    )


def links(uow: FakeUnitOfWork) -> list[tuple[int, str]]:
    return [(a.user_id, a.method) for a in uow.session.scalars(select(AccountLink))]


def test_a_p9_identity_matched_by_the_practice_is_linked_and_verified(uow: FakeUnitOfWork) -> None:
    surgery = practice(uow)
    who = identity(gp_ods_code=surgery.ods_code.lower())
    on_record(uow, surgery, who)
    fresh(uow)
    result = nhs_login.sign_in_with_nhs_login(uow, who)
    assert result.outcome is LinkOutcome.LINKED and result.proofing_level == "P9"
    assert result.user.nhs_login_sub == who.sub and result.user.second_factor == "nhs_login"
    assert result.user.email_confirmed_at == uow.now() and result.user.last_sign_in_at == uow.now()
    assert links(uow) == [(result.user.id, "nhs_login")]
    assert uow.session.scalars(select(Verification.method)).all() == ["nhs_login"]
    assert uow.audit_actions() == ["sign_in", "link.nhs_login"]
    assert uow.system.calls == ["find_patient"] and uow.commits == 2  # the sign-in, then the link


def test_signing_in_again_reuses_the_account_and_the_link(uow: FakeUnitOfWork) -> None:
    surgery = practice(uow)
    who = identity(gp_ods_code=surgery.ods_code)
    on_record(uow, surgery, who)
    first = nhs_login.sign_in_with_nhs_login(uow, who)
    again = nhs_login.sign_in_with_nhs_login(uow, who)
    assert again.outcome is LinkOutcome.ALREADY_LINKED and again.user.id == first.user.id
    assert count(uow, User) == 1 and uow.system.calls == ["find_patient"]


@pytest.mark.parametrize("level", ["P5", "P0", ""])
def test_below_p9_nothing_is_linked_and_the_practice_is_not_asked(uow: FakeUnitOfWork, level: str) -> None:
    surgery = practice(uow)
    who = identity(level, gp_ods_code=surgery.ods_code)
    on_record(uow, surgery, who)
    result = nhs_login.sign_in_with_nhs_login(uow, who)
    assert result.outcome is LinkOutcome.NEEDS_P9 and result.user.identity_proofing_level == level
    assert links(uow) == [] and uow.system.calls == [] and uow.audit_actions() == ["sign_in"]


def test_a_practice_not_on_the_gateway_is_said_so(uow: FakeUnitOfWork) -> None:
    result = nhs_login.sign_in_with_nhs_login(uow, identity(gp_ods_code="B99999"))
    assert result.outcome is LinkOutcome.PRACTICE_NOT_ON_GATEWAY and links(uow) == [] and uow.system.calls == []


def test_an_invalid_nhs_number_is_not_matched_without_asking(uow: FakeUnitOfWork) -> None:
    surgery = practice(uow)
    result = nhs_login.sign_in_with_nhs_login(uow, identity(gp_ods_code=surgery.ods_code, nhs_number="1234567890"))
    assert result.outcome is LinkOutcome.NOT_MATCHED and uow.system.calls == []


def test_a_different_date_of_birth_is_not_matched_and_is_audited(uow: FakeUnitOfWork) -> None:
    surgery = practice(uow)
    who = identity(gp_ods_code=surgery.ods_code)
    on_record(uow, surgery, who, born=dt.date(1950, 1, 1))
    result = nhs_login.sign_in_with_nhs_login(uow, who)
    assert result.outcome is LinkOutcome.NOT_MATCHED and links(uow) == []
    assert uow.audit_actions() == ["sign_in", "link.nhs_login_unmatched"]


def test_someone_the_practice_does_not_know_is_not_matched(uow: FakeUnitOfWork) -> None:
    surgery = practice(uow)
    result = nhs_login.sign_in_with_nhs_login(uow, identity(gp_ods_code=surgery.ods_code))
    assert result.outcome is LinkOutcome.NOT_MATCHED and links(uow) == []
    assert uow.audit_actions() == ["sign_in", "link.nhs_login_unmatched"]


def test_a_link_that_is_down_still_signs_the_person_in(uow: FakeUnitOfWork) -> None:
    surgery = practice(uow)
    who = identity(gp_ods_code=surgery.ods_code)
    on_record(uow, surgery, who)
    uow.system.fail_next["find_patient"] = ClinicalSystemUnavailable()
    result = nhs_login.sign_in_with_nhs_login(uow, who)
    assert result.outcome is LinkOutcome.NOT_MATCHED and links(uow) == []
    assert uow.session.get(User, result.user.id) is not None and uow.audit_actions() == ["sign_in"]


def test_a_record_already_linked_to_another_account_is_not_linked_again(uow: FakeUnitOfWork) -> None:
    surgery = practice(uow)
    who = identity(gp_ods_code=surgery.ods_code)
    on_record(uow, surgery, who)
    theirs = patient(uow, surgery, born=dt.date(1950, 1, 1))  # not this person's birth date: never bound to it
    theirs.nhs_number = who.nhs_number
    owner = linked_user(uow, theirs)
    result = nhs_login.sign_in_with_nhs_login(uow, who)
    assert result.outcome is LinkOutcome.NOT_MATCHED and links(uow) == [(owner.id, "letter")]


def test_a_verified_email_never_takes_over_the_patient_account_with_that_address(uow: FakeUnitOfWork) -> None:
    existing = user(uow, email="ria.jones@example.org")
    result = nhs_login.sign_in_with_nhs_login(uow, identity("P5"))
    assert result.user.id != existing.id and existing.nhs_login_sub is None


def test_an_unverified_email_gets_an_account_of_its_own(uow: FakeUnitOfWork) -> None:
    existing = user(uow, email="ria.jones@example.org")
    result = nhs_login.sign_in_with_nhs_login(uow, identity("P5", email_verified=False))
    assert result.user.id != existing.id and existing.nhs_login_sub is None
    assert result.user.email == "nhs-login-sub-1@nhs-login.invalid" and result.user.email_confirmed_at is None


def test_a_staff_account_with_the_same_email_is_never_taken_over(uow: FakeUnitOfWork) -> None:
    colleague = user(uow, email="ria.jones@example.org", kind="staff")
    result = nhs_login.sign_in_with_nhs_login(uow, identity("P5"))
    assert result.user.id != colleague.id and result.user.kind == "patient"


class Provider:
    def __init__(self, answer: Identity | IdentityRefused) -> None:
        self.answer = answer
        self.redeemed: list[tuple[str, str]] = []

    def authorization_url(self) -> tuple[str, str, str]:
        return "https://login.example/authorize?x=1", "state-1", "nonce-1"

    def redeem(self, code: str, nonce: str) -> Identity:
        self.redeemed.append((code, nonce))
        if isinstance(self.answer, IdentityRefused):
            raise self.answer
        return self.answer


def test_beginning_asks_the_provider_where_to_go() -> None:
    asked = nhs_login.begin_sign_in(Provider(identity()))
    assert asked == AuthorizationRequest("https://login.example/authorize?x=1", "state-1", "nonce-1")


def test_an_answer_the_gateway_does_not_trust_is_audited_and_refused(uow: FakeUnitOfWork) -> None:
    provider = Provider(IdentityRefused("ID token nonce does not match"))
    with pytest.raises(IdentityRefused):
        nhs_login.finish_sign_in(uow, provider, "code-1", "nonce-1")
    assert provider.redeemed == [("code-1", "nonce-1")] and count(uow, User) == 0
    assert uow.audit_actions() == ["sign_in.failed"] and uow.commits == 2  # released, then the refusal


def test_a_trusted_answer_signs_the_person_in(uow: FakeUnitOfWork) -> None:
    result = nhs_login.finish_sign_in(uow, Provider(identity("P5")), "code-1", "nonce-1")
    assert result.outcome is LinkOutcome.NEEDS_P9 and result.user.nhs_login_sub == "nhs-login-sub-1"


# Credentials (issue 18) --------------------------------------------------------------------------------------
def totp_user(uow: FakeUnitOfWork, **fields: Any) -> tuple[User, pyotp.TOTP]:
    secret = pyotp.random_base32()
    person = with_password(uow, kind="staff", totp_secret=encrypt(secret), totp_enrolled_at=uow.now(), **fields)
    return person, pyotp.TOTP(secret)


def step_code(totp: pyotp.TOTP, offset: int) -> str:
    return totp.generate_otp(totp.timecode(dt.datetime.now(dt.UTC)) + offset)


def test_an_authenticator_code_signs_in_once(uow: FakeUnitOfWork, keyed: None) -> None:
    person, totp = totp_user(uow)
    code = step_code(totp, 0)
    accounts.check_second_factor(uow, person, code)
    with pytest.raises(InputError, match=accounts.APP_CODE_WRONG):
        accounts.check_second_factor(uow, person, code)
    assert uow.audit_actions() == ["sign_in", "sign_in.failed"]
    assert person.totp_last_step == totp.timecode(dt.datetime.now(dt.UTC))


def test_a_code_from_before_the_last_one_used_is_refused(uow: FakeUnitOfWork, keyed: None) -> None:
    person, totp = totp_user(uow)
    accounts.check_second_factor(uow, person, step_code(totp, 1))  # a clock running ahead
    with pytest.raises(InputError, match=accounts.APP_CODE_WRONG):
        accounts.check_second_factor(uow, person, step_code(totp, 0))
    with pytest.raises(InputError, match=accounts.APP_CODE_WRONG):
        accounts.check_second_factor(uow, person, step_code(totp, -1))


def test_the_code_that_enrolled_the_app_cannot_sign_in_again(uow: FakeUnitOfWork, keyed: None) -> None:
    person = user(uow, kind="staff")
    fresh(uow)
    secret = pyotp.random_base32()
    code = pyotp.TOTP(secret).now()
    accounts.enrol_totp(uow, person, secret, code)
    with pytest.raises(InputError, match=accounts.APP_CODE_WRONG):
        accounts.check_second_factor(uow, person, code)


def test_a_code_claimed_by_another_request_at_the_same_moment_is_refused(uow: FakeUnitOfWork, keyed: None) -> None:
    person, totp = totp_user(uow)
    code = step_code(totp, 0)
    # Another request accepted the same code a moment ago: this one read the account before that was written.
    uow.session.execute(
        update(User).where(User.id == person.id).values(totp_last_step=totp.timecode(dt.datetime.now(dt.UTC)))
    )
    with pytest.raises(InputError, match=accounts.APP_CODE_WRONG):
        accounts.check_second_factor(uow, person, code)


def test_an_email_code_claimed_by_another_request_is_refused(uow: FakeUnitOfWork, keyed: None) -> None:
    person = with_password(uow, second_factor="email", email_confirmed_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    accounts.start_second_factor(uow, person)
    code = last_code(uow)
    uow.session.execute(update(OneTimeCode).values(used_at=uow.now()))  # used by a request racing it
    with pytest.raises(InputError):
        accounts.check_second_factor(uow, person, code)
    assert person.last_sign_in_at is None


def test_a_reset_answers_an_unknown_email_as_it_answers_a_known_one(uow: FakeUnitOfWork, keyed: None) -> None:
    person = with_password(uow)

    def answer(email: str, code: str, password: str) -> tuple[str | None, str]:
        with pytest.raises(InputError) as refused:
            accounts.reset_password(uow, email, code, password)
        return refused.value.field, refused.value.message

    # No code was ever sent to either address.
    assert answer(person.email, "123456", OTHER_STRONG) == answer("nobody@example.org", "123456", OTHER_STRONG)
    # A weak password is refused alike, whether the address has an account or not.
    assert answer(person.email, "123456", WEAK) == answer("nobody@example.org", "123456", WEAK)
    # A code that was sent and is wrong, or has expired, is answered as one never sent.
    accounts.request_password_reset(uow, person.email)
    sent = last_code(uow)
    assert answer(person.email, wrong(sent), OTHER_STRONG) == answer("nobody@example.org", "123456", OTHER_STRONG)
    later(uow, minutes=16)
    assert answer(person.email, sent, OTHER_STRONG) == answer("nobody@example.org", sent, OTHER_STRONG)


def test_registering_hashes_the_password_whether_or_not_the_email_is_taken(
    uow: FakeUnitOfWork, keyed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed: list[str] = []
    monkeypatch.setattr(accounts, "hash_password", lambda password: hashed.append(password) or f"quick${password}")
    accounts.register(uow, "sam.taylor@example.org", STRONG)
    assert len(hashed) == 1
    assert accounts.register(uow, "Sam.Taylor@example.org", OTHER_STRONG) is None
    assert len(hashed) == 2  # the same costly work on both paths: the time taken says nothing


def test_changing_the_email_needs_the_current_password(uow: FakeUnitOfWork, keyed: None) -> None:
    person = with_password(uow)
    with pytest.raises(InputError) as refused:
        accounts.start_email_change(uow, person, OTHER_STRONG, "sam.new@example.org")
    assert refused.value.field == "current_password" and uow.sent == []
    accounts.start_email_change(uow, person, STRONG, "sam.new@example.org")
    assert [m.to for m in uow.sent] == ["sam.new@example.org"]
    assert uow.audit_actions() == ["account.email_change_requested"]


def test_an_account_without_a_password_changes_its_email_at_nhs_login(uow: FakeUnitOfWork) -> None:
    person = user(uow, password_hash="")
    fresh(uow)
    with pytest.raises(InputError, match="NHS login"):
        accounts.start_email_change(uow, person, "", "sam.new@example.org")
    assert uow.sent == []


def test_a_changed_email_ends_every_session_and_tells_the_old_address(uow: FakeUnitOfWork, keyed: None) -> None:
    person = with_password(uow, email="sam.old@example.org")
    accounts.start_email_change(uow, person, STRONG, "sam.new@example.org")
    accounts.confirm_email_change(uow, person, last_code(uow))
    assert person.email == "sam.new@example.org" and person.session_epoch == 1
    told = uow.sent[-1]
    assert (told.to, told.template) == ("sam.old@example.org", "email_changed")
    assert uow.audit_actions()[-1] == "account.email_changed"


def test_a_staff_account_made_by_someone_else_must_change_its_password(uow: FakeUnitOfWork) -> None:
    created = new_staff(uow, role="system_admin")
    made = uow.session.get(User, created.user_id)
    assert made is not None and made.must_change_password
    with pytest.raises(InputError) as refused:
        accounts.change_password(uow, made, STRONG, STRONG)
    assert refused.value.field == "password" and made.must_change_password
    accounts.change_password(uow, made, STRONG, OTHER_STRONG)
    assert not made.must_change_password and made.session_epoch == 1


def test_a_patients_own_registration_owes_no_password_change(uow: FakeUnitOfWork, keyed: None) -> None:
    assert not registered(uow).must_change_password


def test_a_reset_password_is_the_persons_own(uow: FakeUnitOfWork, keyed: None) -> None:
    person = with_password(uow, kind="staff", must_change_password=True)
    accounts.request_password_reset(uow, person.email)
    accounts.reset_password(uow, person.email, last_code(uow), OTHER_STRONG)
    assert not person.must_change_password


def test_the_staff_form_answers_a_patients_email_as_any_other_in_use(uow: FakeUnitOfWork) -> None:
    surgery, elsewhere = practice(uow), practice(uow)
    manager = user(uow, kind="staff")
    a_patient = user(uow, email="pat.jones@example.org")
    staff_elsewhere = user(uow, kind="staff", email="robin.lee@other.example")
    uow.session.add(StaffMembership(user_id=staff_elsewhere.id, practice_id=elsewhere.id, role="receptionist"))
    fresh(uow)

    def answer(email: str, password: str) -> tuple[str | None, str]:
        with pytest.raises(InputError) as refused:
            staff.add_staff(
                uow, surgery, email=email, role="receptionist", password=password, name="", actor_id=manager.id
            )
        return refused.value.field, refused.value.message

    unused = "nobody.yet@practice.example"
    # The same checks in the same order for a patient's address and one nobody uses ...
    missing = ("password", "Enter a temporary password for the new account")
    assert answer(a_patient.email, "") == answer(unused, "") == missing
    assert answer(a_patient.email, WEAK)[0] == answer(unused, WEAK)[0] == "password"
    # ... and one answer for any address in use, whoever uses it.
    assert answer(a_patient.email, STRONG) == answer(staff_elsewhere.email, STRONG) == ("email", staff.EMAIL_NOT_USABLE)
    assert "patient" not in staff.EMAIL_NOT_USABLE.lower()
    assert count(uow, StaffMembership) == 1 and uow.commits == 0


def test_a_guarded_account_says_nothing_at_the_password_step(uow: FakeUnitOfWork, keyed: None) -> None:
    person = with_password(uow, second_factor="email", email_confirmed_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    wrong_password = accounts.check_password_sign_in(uow, person.email, OTHER_STRONG, guarded=True)
    unknown = accounts.check_password_sign_in(uow, "nobody@example.org", OTHER_STRONG, guarded=True)
    assert wrong_password == unknown == accounts.PasswordChecked(None, SignInStep.CODE)
    assert uow.sent == []  # no code for a wrong password
    right = accounts.check_password_sign_in(uow, person.email, STRONG, guarded=True)
    assert right == accounts.PasswordChecked(person.id, SignInStep.CODE)
    accounts.check_second_factor(uow, person, last_code(uow))  # the owner gets in with both
    assert person.last_sign_in_at == uow.now()


def test_an_account_not_yet_set_up_cannot_sign_in_at_the_code_step(uow: FakeUnitOfWork, keyed: None) -> None:
    person = with_password(uow, second_factor="email")  # email not confirmed
    checked = accounts.check_password_sign_in(uow, person.email, STRONG, guarded=True)
    assert checked == accounts.PasswordChecked(person.id, SignInStep.CODE) and uow.sent == []
    with pytest.raises(InputError):
        accounts.check_second_factor(uow, person, "123456")
    assert person.last_sign_in_at is None
