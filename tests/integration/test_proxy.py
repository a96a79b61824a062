"""Proxy access (issue 8): asking, reception's review for each basis, consent, capped permissions, the age rules
(10/11, 15/16, 29 February), ending, and crafted requests that try to do more than a proxy may."""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import func, select

from patient_online.adapters.demo.models import DemoPatient
from patient_online.domain.access import Service
from patient_online.domain.errors import InputError, NotAllowed, ServiceOff
from patient_online.domain.proxy import ProxyBasis, birthday
from patient_online.domain.record import RecordLevel
from patient_online.extensions import db
from patient_online.models import (
    AccountLink,
    AuditEvent,
    Notification,
    Patient,
    Practice,
    PrescriptionOrder,
    ProxyLink,
    User,
)
from patient_online.services import proxy as service
from patient_online.services.access import acting_for
from patient_online.services.activity import activity_for
from patient_online.services.proxy import Approval, ProxyRequest
from patient_online.wiring import uow as current_uow

PATIENT = "patient.y02001@example.com"
PATIENT2 = "patient2.y02001@example.com"
PARENT = "parent.y02001@example.com"
NEWCOMER = "newpatient.y02001@example.com"
RECEPTION = "reception.y02001@example.com"
RECEPTION2 = "reception.y02002@example.com"
ODS = "Y02001"


@pytest.fixture
def settings() -> dict[str, Any]:
    return {"RATELIMIT_PROXY_REQUEST": "100 per hour"}


# Helpers ------------------------------------------------------------------------------------------------------
def _user(email: str) -> User:
    found = db.session.scalar(select(User).where(User.email == email))
    assert found is not None
    return found


def _practice(ods: str = ODS) -> Practice:
    found = db.session.scalar(select(Practice).where(Practice.ods_code == ods))
    assert found is not None
    return found


def _demo(index: int, ods: str = ODS) -> DemoPatient:
    found = db.session.get(DemoPatient, f"{ods}-P{index + 1:03d}")
    assert found is not None
    return found


def _own(email: str) -> Patient:
    link = db.session.scalar(select(AccountLink).where(AccountLink.user_id == _user(email).id))
    assert link is not None
    return link.patient


def _child_link() -> ProxyLink:
    """The seeded active parental link: parent.y02001 for the 10-year-old demo child (index 5)."""
    found = db.session.scalar(select(ProxyLink).where(ProxyLink.proxy_user_id == _user(PARENT).id))
    assert found is not None
    return found


def _ask(email: str, index: int, basis: ProxyBasis, relationship: str = "Carer") -> ProxyLink:
    person = _demo(index)
    service.request_proxy(
        current_uow(),
        _user(email),
        ProxyRequest(ODS, person.nhs_number, person.date_of_birth, relationship, basis.value),
    )
    link = db.session.scalar(
        select(ProxyLink)
        .join(Patient, Patient.id == ProxyLink.patient_id)
        .where(ProxyLink.proxy_user_id == _user(email).id, Patient.nhs_number == person.nhs_number)
        .order_by(ProxyLink.id.desc())
    )
    assert link is not None
    return link


def _approval(chosen: ProxyBasis, **changes: Any) -> Approval:
    values: dict[str, Any] = {
        "basis": chosen.value,
        "evidence": "Seen at the front desk",
        "safeguarding_checked": True,
        "safeguarding_notes": "Spoke to the patient alone; no concerns",
        "can_appointments": True,
        "can_prescriptions": False,
        "record_level": "summary",
    }
    values.update(changes)
    return Approval(**values)


def _approve(link: ProxyLink, chosen: ProxyBasis, **changes: Any) -> ProxyLink:
    service.approve_proxy(current_uow(), _user(RECEPTION), _practice(), link.id, _approval(chosen, **changes))
    return link


def _active_link(proxy_email: str, index: int, basis: ProxyBasis = ProxyBasis.PARENTAL_RESPONSIBILITY) -> ProxyLink:
    link = _ask(proxy_email, index, basis, "Father")
    return _approve(link, basis)


def _emails(to: str) -> list[Notification]:
    return list(db.session.scalars(select(Notification).where(Notification.to == to).order_by(Notification.id)))


def _events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def _text(response: Any) -> str:
    return html.unescape(str(response.get_data(as_text=True)))


def _words(response: Any) -> str:
    """The page as a person reads it: no tags, single spaces."""
    return " ".join(re.sub(r"<[^>]+>", " ", _text(response)).split())


# Asking (rule 17, no enumeration) ------------------------------------------------------------------------------
def test_a_request_that_matches_waits_for_reception(app_ctx: Any, session: Any) -> None:
    link = _ask(PATIENT, 3, ProxyBasis.LASTING_POWER_OF_ATTORNEY, "Son")
    assert link.status == "requested" and link.basis == "lasting_power_of_attorney"
    assert link.relationship_text == "Son" and not link.can_appointments and link.record_level == "none"
    assert _events("proxy.requested")[-1].detail["matched"] is True
    assert "We have your request" in _emails(PATIENT)[-1].subject


def test_a_request_that_matches_nobody_looks_the_same_to_the_asker(app_ctx: Any, session: Any, uow: Any) -> None:
    person = _demo(3)
    before = session.scalar(select(func.count(ProxyLink.id)))
    wrong_birthday = person.date_of_birth - dt.timedelta(days=1)
    service.request_proxy(uow, _user(PATIENT), ProxyRequest(ODS, person.nhs_number, wrong_birthday, "Son", "consent"))
    assert session.scalar(select(func.count(ProxyLink.id))) == before
    unmatched = _events("proxy.requested")[-1]
    assert unmatched.detail["matched"] is False and unmatched.patient_id is None
    assert "We have your request" in _emails(PATIENT)[-1].subject, "the same email either way"


def test_request_mistakes_are_refused_with_a_message_for_the_field(app_ctx: Any, session: Any, uow: Any) -> None:
    person = _demo(3)
    cases = [
        (ProxyRequest(ODS, "123", person.date_of_birth, "Son", "consent"), "nhs_number"),
        (ProxyRequest(ODS, person.nhs_number, person.date_of_birth, "", "consent"), "relationship"),
        (ProxyRequest(ODS, person.nhs_number, person.date_of_birth, "x" * 101, "consent"), "relationship"),
        (ProxyRequest(ODS, person.nhs_number, person.date_of_birth, "Son", "friend"), "basis"),
        (ProxyRequest("ZZZ99", person.nhs_number, person.date_of_birth, "Son", "consent"), "practice"),
    ]
    for wanted, field in cases:
        with pytest.raises(InputError) as caught:
            service.request_proxy(uow, _user(PATIENT), wanted)
        assert caught.value.field == field


def test_only_verified_patients_can_ask(app_ctx: Any, session: Any, uow: Any) -> None:
    person = _demo(3)
    with pytest.raises(NotAllowed):
        service.request_proxy(
            uow, _user(NEWCOMER), ProxyRequest(ODS, person.nhs_number, person.date_of_birth, "Son", "consent")
        )


def test_asking_for_your_own_record_or_twice_for_the_same_person(app_ctx: Any, session: Any, uow: Any) -> None:
    me = _demo(0)
    with pytest.raises(InputError, match="your own record"):
        service.request_proxy(uow, _user(PATIENT), ProxyRequest(ODS, me.nhs_number, me.date_of_birth, "Me", "consent"))
    first = _ask(PATIENT, 3, ProxyBasis.BEST_INTERESTS)
    again = _ask(PATIENT, 3, ProxyBasis.BEST_INTERESTS)
    assert again.id == first.id, "an open request is not duplicated"


def test_no_requests_when_the_practice_switches_proxy_access_off(app_ctx: Any, session: Any) -> None:
    switch = _practice().switch("proxy")
    assert switch is not None
    switch.enabled = False
    session.commit()
    with pytest.raises(InputError, match="does not offer proxy access"):
        _ask(PATIENT, 3, ProxyBasis.CONSENT)


# Reception's review: each basis ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("basis", "index"),
    [
        (ProxyBasis.PARENTAL_RESPONSIBILITY, 4),  # a 6-year-old
        (ProxyBasis.LASTING_POWER_OF_ATTORNEY, 3),  # an 81-year-old without an account
        (ProxyBasis.COURT_DEPUTYSHIP, 3),
        (ProxyBasis.BEST_INTERESTS, 3),
    ],
)
def test_approving_each_basis_makes_an_active_link(app_ctx: Any, session: Any, basis: ProxyBasis, index: int) -> None:
    link = _approve(_ask(PATIENT, index, basis), basis)
    assert link.status == "active"
    assert link.safeguarding_checked_by_id == _user(RECEPTION).id and link.safeguarding_checked_at is not None
    assert link.evidence == "Seen at the front desk" and link.decided_by_id == _user(RECEPTION).id
    event = _events("proxy.approved")[-1]
    assert event.patient_id == link.patient_id and event.detail["basis"] == basis.value
    assert "Proxy access approved" in _emails(PATIENT)[-1].subject
    acting = acting_for(session, _user(PATIENT), link.patient_id)
    assert acting is not None and acting.is_proxy and acting.actor_role == "proxy"
    assert acting.access.allows(Service.APPOINTMENTS) and not acting.access.allows(Service.PRESCRIPTIONS)
    assert acting.access.record_level is RecordLevel.SUMMARY


def test_the_patients_consent_is_asked_inside_the_gateway(app_ctx: Any, session: Any, uow: Any) -> None:
    link = _approve(_ask(PATIENT, 2, ProxyBasis.CONSENT, "Friend"), ProxyBasis.CONSENT)  # index 2 is patient2
    assert link.status == "awaiting_consent"
    assert "asked to act for you" in _emails(PATIENT2)[-1].subject
    with pytest.raises(NotAllowed):
        acting_for(session, _user(PATIENT), link.patient_id)
    overview = service.proxy_overview(uow, _user(PATIENT2))
    assert [c.id for c in overview.consent_requests] == [link.id]
    with pytest.raises(NotAllowed):
        service.give_consent(uow, _user(PATIENT), link.id)  # the proxy cannot consent for the patient
    service.give_consent(uow, _user(PATIENT2), link.id)
    assert link.status == "active" and link.patient_consent_at is not None
    assert "You can now act for" in _emails(PATIENT)[-1].subject
    assert acting_for(session, _user(PATIENT), link.patient_id) is not None
    with pytest.raises(InputError):
        service.give_consent(uow, _user(PATIENT2), link.id)


def test_the_patient_can_say_no(app_ctx: Any, session: Any, uow: Any) -> None:
    link = _approve(_ask(PATIENT, 2, ProxyBasis.CONSENT), ProxyBasis.CONSENT)
    service.refuse_consent(uow, _user(PATIENT2), link.id, "I manage myself")
    assert link.status == "rejected" and link.status_reason == "I manage myself"
    assert "was not agreed" in _emails(PATIENT)[-1].subject
    assert session.get(ProxyLink, link.id) is not None, "kept for audit"


def test_consent_needs_the_patient_to_have_an_account(app_ctx: Any, session: Any) -> None:
    link = _ask(PATIENT, 3, ProxyBasis.CONSENT)
    with pytest.raises(InputError, match="no online account"):
        _approve(link, ProxyBasis.CONSENT)
    assert link.status == "requested"


def test_reception_must_record_evidence_and_the_safeguarding_check(app_ctx: Any, session: Any) -> None:
    link = _ask(PATIENT, 3, ProxyBasis.BEST_INTERESTS)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"evidence": " "}, "evidence"),
        ({"safeguarding_checked": False}, "safeguarding_checked"),
        ({"safeguarding_notes": ""}, "safeguarding_notes"),
        ({"basis": "friendship"}, "basis"),
        ({"can_appointments": False, "record_level": "none"}, "can_appointments"),
    ]
    for changes, field in cases:
        with pytest.raises(InputError) as caught:
            _approve(link, ProxyBasis.BEST_INTERESTS, **changes)
        assert caught.value.field == field
    assert session.get(ProxyLink, link.id).status == "requested"


def test_permissions_never_exceed_the_patients_own_access(app_ctx: Any, session: Any, uow: Any) -> None:
    patient = _own(PATIENT2)
    patient.record_level = "summary"
    patient.prescriptions_enabled = False
    session.commit()
    link = _ask(PATIENT, 2, ProxyBasis.BEST_INTERESTS)
    with pytest.raises(InputError, match="own access") as caught:
        _approve(link, ProxyBasis.BEST_INTERESTS, record_level="detailed")
    assert caught.value.field == "record_level"
    with pytest.raises(InputError) as caught:
        _approve(link, ProxyBasis.BEST_INTERESTS, can_prescriptions=True)
    assert caught.value.field == "can_prescriptions"
    review = service.review_view(uow, _user(RECEPTION), _practice(), link.id)
    assert review.allowed_levels == (RecordLevel.NONE, RecordLevel.SUMMARY)
    assert not review.offers_prescriptions and review.offers_appointments


def test_the_record_level_offered_follows_what_the_practice_offers(app_ctx: Any, session: Any, uow: Any) -> None:
    switch = _practice().switch("record")
    assert switch is not None
    switch.enabled = False
    session.commit()
    link = _ask(PATIENT, 3, ProxyBasis.BEST_INTERESTS)
    assert service.review_view(uow, _user(RECEPTION), _practice(), link.id).allowed_levels == (RecordLevel.NONE,)
    with pytest.raises(InputError):
        _approve(link, ProxyBasis.BEST_INTERESTS, record_level="summary")


def test_a_proxy_uses_the_links_permissions_not_the_patients(app_ctx: Any, session: Any) -> None:
    link = _child_link()
    link.can_prescriptions = False
    session.commit()
    acting = acting_for(session, _user(PARENT), link.patient_id)
    assert acting is not None
    with pytest.raises(ServiceOff):
        acting.require(Service.PRESCRIPTIONS)
    assert acting.access.record_level is RecordLevel.SUMMARY


def test_reception_of_another_practice_cannot_see_or_decide(app_ctx: Any, session: Any, uow: Any) -> None:
    link = _ask(PATIENT, 3, ProxyBasis.BEST_INTERESTS)
    other = _user(RECEPTION2)
    from patient_online.domain.errors import NotFound

    with pytest.raises(NotAllowed):
        service.review_view(uow, other, _practice(), link.id)
    with pytest.raises(NotFound):
        service.approve_proxy(uow, other, _practice("Y02002"), link.id, _approval(ProxyBasis.BEST_INTERESTS))


def test_reception_turns_a_request_down_with_a_reason(app_ctx: Any, session: Any, uow: Any) -> None:
    link = _ask(PATIENT, 3, ProxyBasis.BEST_INTERESTS)
    with pytest.raises(InputError):
        service.reject_proxy(uow, _user(RECEPTION), _practice(), link.id, " ")
    service.reject_proxy(uow, _user(RECEPTION), _practice(), link.id, "Bring the court order to the practice")
    assert link.status == "rejected" and "court order" in _emails(PATIENT)[-1].body
    overview = service.proxy_overview(uow, _user(PATIENT))
    assert [r.id for r in overview.my_requests] == [link.id]


# Age boundaries when approving ------------------------------------------------------------------------------
def test_parental_access_to_a_fifteen_year_old_needs_the_childs_say(app_ctx: Any, session: Any) -> None:
    link = _ask(PATIENT, 6, ProxyBasis.PARENTAL_RESPONSIBILITY)  # 15
    with pytest.raises(InputError, match="competence") as caught:
        _approve(link, ProxyBasis.PARENTAL_RESPONSIBILITY)
    assert caught.value.field == "competence_assessed"
    with pytest.raises(InputError):
        _approve(link, ProxyBasis.PARENTAL_RESPONSIBILITY, competence_assessed=True)
    _approve(link, ProxyBasis.PARENTAL_RESPONSIBILITY, competence_assessed=True, child_consent=True)
    assert link.status == "active"


def test_no_parental_access_at_sixteen(app_ctx: Any, session: Any) -> None:
    link = _ask(PATIENT, 12, ProxyBasis.PARENTAL_RESPONSIBILITY)  # 16
    with pytest.raises(InputError, match="16") as caught:
        _approve(link, ProxyBasis.PARENTAL_RESPONSIBILITY, competence_assessed=True, child_consent=True)
    assert caught.value.field == "basis"


# The age rules, as `flask proxies review` runs them ------------------------------------------------------------
def _review_on(day: dt.date) -> service.AgeRulesReport:
    return service.apply_age_rules(current_uow(), day)


def test_review_age_notice_then_suspension_and_running_twice_changes_nothing(app_ctx: Any, session: Any) -> None:
    link = _child_link()
    eleventh = birthday(link.patient.date_of_birth, 11)
    assert _review_on(eleventh - dt.timedelta(days=31)).notices == 0
    report = _review_on(eleventh - dt.timedelta(days=30))
    assert report.notices >= 1 and link.status == "active"
    assert f"notice:review:{eleventh.isoformat()}" in link.notices_sent
    assert "Proxy access will change soon" in _emails(PARENT)[-1].subject
    sent = len(_emails(PARENT))
    _review_on(eleventh - dt.timedelta(days=30))
    _review_on(eleventh - dt.timedelta(days=10))
    assert len(_emails(PARENT)) == sent, "each notice is sent once"

    _review_on(eleventh - dt.timedelta(days=1))
    assert link.status == "active", "10 on the day before the birthday"
    _review_on(eleventh)
    assert link.status == "suspended" and "At 11" in link.status_reason
    assert _emails(PARENT)[-1].subject == "Proxy access has been paused"
    event = _events("proxy.suspended")[-1]
    assert event.actor_role == "system" and event.patient_id == link.patient_id
    events, mails = len(session.scalars(select(AuditEvent)).all()), len(_emails(PARENT))
    _review_on(eleventh)
    assert (len(session.scalars(select(AuditEvent)).all()), len(_emails(PARENT))) == (events, mails)
    with pytest.raises(NotAllowed):
        acting_for(session, _user(PARENT), link.patient_id)


def test_competence_and_consent_keep_access_at_eleven_but_not_at_sixteen(app_ctx: Any, session: Any, uow: Any) -> None:
    link = _child_link()
    service.record_competence(uow, _user(RECEPTION), _practice(), link.id, True, True)
    born = link.patient.date_of_birth
    _review_on(birthday(born, 11))
    assert link.status == "active"
    _review_on(birthday(born, 16) - dt.timedelta(days=1))
    assert link.status == "active"
    assert f"notice:sixteen:{birthday(born, 16).isoformat()}" in link.notices_sent
    _review_on(birthday(born, 16))
    assert link.status == "suspended" and "At 16" in link.status_reason


def test_the_review_age_and_notice_days_are_set_per_practice(app_ctx: Any, session: Any) -> None:
    link = _child_link()
    practice = _practice()
    practice.proxy_review_age, practice.proxy_notice_days = 13, 7
    session.commit()
    born = link.patient.date_of_birth
    _review_on(birthday(born, 11))
    assert link.status == "active"
    assert _review_on(birthday(born, 13) - dt.timedelta(days=8)).notices == 0
    assert _review_on(birthday(born, 13) - dt.timedelta(days=7)).notices == 1
    _review_on(birthday(born, 13))
    assert link.status == "suspended"


def test_a_leap_day_child_is_suspended_on_1_march_in_a_common_year(app_ctx: Any, session: Any) -> None:
    link = _active_link(PATIENT, 7)  # born 29 February 2016
    assert link.patient.date_of_birth == dt.date(2016, 2, 29)
    _review_on(dt.date(2027, 2, 28))
    assert link.status == "active"
    assert "notice:review:2027-03-01" in link.notices_sent
    _review_on(dt.date(2027, 3, 1))
    assert link.status == "suspended"


def test_a_leap_day_child_turns_sixteen_on_29_february_2032(app_ctx: Any, session: Any, uow: Any) -> None:
    link = _active_link(PATIENT, 7)
    service.record_competence(uow, _user(RECEPTION), _practice(), link.id, True, True)
    _review_on(dt.date(2032, 2, 28))
    assert link.status == "active"
    _review_on(dt.date(2032, 2, 29))
    assert link.status == "suspended"


def test_the_age_rules_leave_other_bases_alone(app_ctx: Any, session: Any, uow: Any) -> None:
    link = _approve(_ask(PATIENT, 2, ProxyBasis.CONSENT), ProxyBasis.CONSENT)
    service.give_consent(uow, _user(PATIENT2), link.id)
    _review_on(dt.date(2040, 1, 1))
    assert link.status == "active"


def test_reinstating_follows_the_age_rules(app_ctx: Any, session: Any, uow: Any) -> None:
    link = _ask(PATIENT, 6, ProxyBasis.PARENTAL_RESPONSIBILITY)  # 15 today
    _approve(link, ProxyBasis.PARENTAL_RESPONSIBILITY, competence_assessed=True, child_consent=True)
    service.record_competence(uow, _user(RECEPTION), _practice(), link.id, False, False)
    _review_on(dt.date.today())
    assert link.status == "suspended" and "At 11" in link.status_reason
    with pytest.raises(InputError, match="competence"):
        service.reinstate_proxy(uow, _user(RECEPTION), _practice(), link.id)
    with pytest.raises(InputError):
        service.record_competence(uow, _user(RECEPTION), _practice(), link.id, False, True)
    service.record_competence(uow, _user(RECEPTION), _practice(), link.id, True, True)
    service.reinstate_proxy(uow, _user(RECEPTION), _practice(), link.id)
    assert link.status == "active"
    assert _events("proxy.reinstated")[-1].patient_id == link.patient_id


def test_the_command_line_review_takes_a_date(app: Any) -> None:
    with app.app_context():
        born = _child_link().patient.date_of_birth
        day = birthday(born, 11).isoformat()
    runner = app.test_cli_runner()
    result: Result = runner.invoke(args=["proxies", "review", "--today", day])
    assert result.exit_code == 0, result.output
    assert "suspended 1" in result.output
    again: Result = runner.invoke(args=["proxies", "review", "--today", day])
    assert "suspended 0" in again.output and "notices sent 0" in again.output
    bad = runner.invoke(args=["proxies", "review", "--today", "31-12-2026"])
    assert bad.exit_code != 0
    with app.app_context():
        assert _child_link().status == "suspended"


# Ending ----------------------------------------------------------------------------------------------------------
def test_the_proxy_ends_a_link_with_a_reason_and_it_is_kept(app_ctx: Any, session: Any, uow: Any) -> None:
    link = _child_link()
    with pytest.raises(InputError):
        service.end_link(uow, _user(PARENT), link.id, "")
    service.end_link(uow, _user(PARENT), link.id, "My partner will do this now")
    assert link.status == "ended" and link.ended_by_id == _user(PARENT).id and link.ended_at is not None
    assert link.status_reason == "My partner will do this now"
    assert session.get(ProxyLink, link.id) is not None
    with pytest.raises(InputError):
        service.end_link(uow, _user(PARENT), link.id, "again")


def test_the_patient_ends_a_link_and_the_proxy_is_told(app_ctx: Any, session: Any, uow: Any) -> None:
    link = _approve(_ask(PATIENT, 2, ProxyBasis.CONSENT), ProxyBasis.CONSENT)
    service.give_consent(uow, _user(PATIENT2), link.id)
    with pytest.raises(NotAllowed):
        service.end_link(uow, _user(NEWCOMER), link.id, "not mine")
    service.end_link(uow, _user(PATIENT2), link.id, "I withdraw my consent")
    assert link.status == "ended"
    assert "I withdraw my consent" in _emails(PATIENT)[-1].body
    assert _events("proxy.ended")[-1].actor_role == "patient"


def test_reception_suspends_and_ends_links(app_ctx: Any, session: Any, uow: Any) -> None:
    link = _child_link()
    service.suspend_proxy(uow, _user(RECEPTION), _practice(), link.id, "Change of parental responsibility")
    assert link.status == "suspended"
    lines = service.practice_links(uow, _user(RECEPTION), _practice(), (service.ProxyStatus.SUSPENDED,))
    assert [line.link.id for line in lines] == [link.id]
    service.end_proxy_by_reception(uow, _user(RECEPTION), _practice(), link.id, "Court order received")
    assert link.status == "ended" and link.ended_by_id == _user(RECEPTION).id
    assert _emails(PARENT)[-1].subject == "Proxy access has ended"


# Through the pages -------------------------------------------------------------------------------------------
def test_the_parent_switches_to_the_child_and_every_page_says_whose_account(
    client: Any, sign_in: Any, app: Any
) -> None:
    sign_in(PARENT)
    with app.app_context():
        link = _child_link()
        child_id, child_name = link.patient_id, link.patient.full_name
    page = _text(client.get("/proxy"))
    assert child_name in page and "Act for" in page
    switched = client.submit("/proxy/act-for", {"patient_id": str(child_id)}, page="/proxy")
    assert switched.status_code == 302 and switched.headers["Location"].endswith("/home")
    for url in ("/home", "/proxy", "/account/activity"):
        assert f"You are acting for {child_name}" in _words(client.get(url)), url
    back = client.submit("/proxy/act-for", {"patient_id": ""}, page="/proxy")
    assert back.status_code == 302
    assert "You are acting for" not in _text(client.get("/home"))
    with app.app_context():
        assert _events("proxy.switched")[-1].patient_id == child_id


def test_switching_to_someone_without_an_active_link_is_refused(client: Any, sign_in: Any, app: Any) -> None:
    sign_in(PARENT)
    with app.app_context():
        stranger = _own(PATIENT).id
        child_id = _child_link().patient_id
    assert client.submit("/proxy/act-for", {"patient_id": str(child_id)}, page="/proxy").status_code == 302
    refused = client.submit("/proxy/act-for", {"patient_id": str(stranger)}, page="/proxy")
    assert refused.status_code == 403
    assert "You are acting for" in _text(client.get("/home")), "still acting for the child, nothing changed"
    with app.app_context():
        assert _events("access.refused")
        assert not [e for e in _events("proxy.switched") if e.patient_id == stranger]
    assert client.submit("/proxy/act-for", {"patient_id": "abc"}, page="/proxy").status_code == 400


def test_a_proxy_without_prescriptions_cannot_order_through_a_crafted_post(client: Any, sign_in: Any, app: Any) -> None:
    with app.app_context():
        link = _child_link()
        link.can_prescriptions = False
        db.session.commit()
        child_id = link.patient_id
    sign_in(PARENT)
    client.submit("/proxy/act-for", {"patient_id": str(child_id)}, page="/proxy")
    response = client.submit(
        "/prescriptions/order",
        {"items": ["Y02001-P006-M01"], "note": "", "idempotency_key": "a" * 32},
        page="/home",
    )
    assert response.status_code == 403
    assert client.get("/prescriptions").status_code == 403
    with app.app_context():
        assert db.session.scalar(select(func.count(PrescriptionOrder.id))) == 0


def test_a_summary_proxy_cannot_open_test_results(client: Any, sign_in: Any, app: Any) -> None:
    with app.app_context():
        child_id = _child_link().patient_id
    sign_in(PARENT)
    client.submit("/proxy/act-for", {"patient_id": str(child_id)}, page="/proxy")
    assert client.get("/record/test-results").status_code == 403
    with app.app_context():
        assert not [e for e in _events("record.viewed") if e.patient_id == child_id]


def test_ending_a_link_while_acting_falls_back_to_the_own_record(client: Any, sign_in: Any, app: Any) -> None:
    with app.app_context():
        child_id = _child_link().patient_id
    sign_in(PARENT)
    client.submit("/proxy/act-for", {"patient_id": str(child_id)}, page="/proxy")
    with app.app_context():
        service.suspend_proxy(current_uow(), _user(RECEPTION), _practice(), _child_link().id, "Review")
    response = client.get("/appointments")
    assert response.status_code == 302 and response.headers["Location"].endswith("/proxy")
    page = _text(client.get("/proxy"))
    assert "You can no longer act for that person" in page
    home = _text(client.get("/home"))
    assert "You are acting for" not in home


def test_the_proxy_ends_their_access_from_the_page(client: Any, sign_in: Any, app: Any) -> None:
    with app.app_context():
        link_id = _child_link().id
    sign_in(PARENT)
    empty = client.submit(f"/proxy/{link_id}/end", {"reason": ""})
    assert empty.status_code == 400 and "Enter why you are ending this" in _text(empty)
    done = client.submit(f"/proxy/{link_id}/end", {"reason": "Not needed"})
    assert done.status_code == 302
    with app.app_context():
        assert _child_link().status == "ended"


def test_someone_else_cannot_end_or_answer_a_link(client: Any, sign_in: Any, app: Any) -> None:
    with app.app_context():
        link_id = _child_link().id
    sign_in(PATIENT)
    assert client.get(f"/proxy/{link_id}/end").status_code == 403
    assert client.submit(f"/proxy/{link_id}/end", {"reason": "x"}, page="/proxy").status_code == 403
    assert client.submit(f"/proxy/{link_id}/consent", {"decision": "yes"}, page="/proxy").status_code == 403
    with app.app_context():
        assert _child_link().status == "active"


def test_asking_from_the_page_gives_the_same_answer_whether_or_not_the_person_exists(
    client: Any, sign_in: Any, app: Any
) -> None:
    with app.app_context():
        person = _demo(3)
        number, born = person.nhs_number, person.date_of_birth
    sign_in(PATIENT)
    form = client.get("/proxy/request")
    assert form.status_code == 200 and "Parental responsibility" in _text(form)

    def ask(day: dt.date) -> Any:
        return client.submit(
            "/proxy/request",
            {
                "practice": ODS,
                "nhs_number": number,
                "date_of_birth-day": str(day.day),
                "date_of_birth-month": str(day.month),
                "date_of_birth-year": str(day.year),
                "relationship": "Son",
                "basis": "lasting_power_of_attorney",
            },
        )

    matched, unmatched = ask(born), ask(born + dt.timedelta(days=2))
    assert matched.status_code == unmatched.status_code == 302
    assert matched.headers["Location"] == unmatched.headers["Location"]
    page = _text(client.get("/proxy"))
    assert "Request sent" in page and person.family_name not in page
    with app.app_context():
        assert _events("proxy.requested")[-1].detail["matched"] is False


def test_request_form_errors_show_next_to_the_field_and_keep_the_answers(client: Any, sign_in: Any) -> None:
    sign_in(PATIENT)
    response = client.submit(
        "/proxy/request",
        {"practice": ODS, "nhs_number": "12345", "relationship": "Grandmother", "date_of_birth-day": "1"},
    )
    page = _text(response)
    assert response.status_code == 400
    assert "Choose why you can act for them" in page
    assert "Their date of birth must include a month and year" in page
    assert 'value="Grandmother"' in page and 'value="12345"' in page


def test_reception_reviews_a_request_on_the_page(client: Any, sign_in: Any, app: Any) -> None:
    with app.app_context():
        link = _ask(PATIENT, 4, ProxyBasis.PARENTAL_RESPONSIBILITY, "Uncle")
        link_id, child = link.id, link.patient.full_name
    sign_in(RECEPTION)
    queue = _text(client.get("/reception/proxies"))
    assert child in queue and "Waiting for you to check" in queue
    detail = _text(client.get(f"/reception/proxies/{link_id}"))
    assert "Verified: their own record" in detail and "The child's say" in detail
    missing = client.submit(f"/reception/proxies/{link_id}", {"approve-basis": "parental_responsibility"})
    assert missing.status_code == 400
    assert "Enter the evidence you have seen" in _text(missing)
    crafted = client.submit(
        f"/reception/proxies/{link_id}",
        {
            "approve-basis": "parental_responsibility",
            "approve-evidence": "Birth certificate",
            "approve-safeguarding_checked": "y",
            "approve-safeguarding_notes": "No concerns",
            "approve-can_appointments": "y",
            "approve-record_level": "historic",
        },
    )
    assert crafted.status_code == 400, "a level above the patient's own is refused"
    ok = client.submit(
        f"/reception/proxies/{link_id}",
        {
            "approve-basis": "parental_responsibility",
            "approve-evidence": "Birth certificate",
            "approve-safeguarding_checked": "y",
            "approve-safeguarding_notes": "No concerns",
            "approve-can_appointments": "y",
            "approve-record_level": "summary",
        },
    )
    assert ok.status_code == 302
    with app.app_context():
        done = db.session.get(ProxyLink, link_id)
        assert done is not None
        assert done.status == "active" and done.can_appointments and not done.can_prescriptions
    page = _text(client.get(f"/reception/proxies/{link_id}"))
    assert "Suspend" in page and "End access" in page
    assert client.submit(f"/reception/proxies/{link_id}/suspend", {"suspend-reason": ""}).status_code == 400
    assert client.submit(f"/reception/proxies/{link_id}/suspend", {"suspend-reason": "Review"}).status_code == 302
    assert client.submit(f"/reception/proxies/{link_id}/reinstate", {}).status_code == 302
    assert client.submit(f"/reception/proxies/{link_id}/end", {"end-reason": "Moved away"}).status_code == 302
    assert child in _text(client.get("/reception/proxies?show=closed"))
    with app.app_context():
        ended = db.session.get(ProxyLink, link_id)
        assert ended is not None and ended.status == "ended"


def test_reception_of_another_practice_gets_not_found(client: Any, sign_in: Any, app: Any) -> None:
    with app.app_context():
        link_id = _child_link().id
    sign_in(RECEPTION2)
    assert client.get(f"/reception/proxies/{link_id}").status_code == 404
    assert (
        client.submit(f"/reception/proxies/{link_id}/end", {"end-reason": "x"}, page="/reception/proxies").status_code
        == 404
    )


def test_the_patient_consents_on_the_page_and_sees_what_the_proxy_did(client: Any, sign_in: Any, app: Any) -> None:
    with app.app_context():
        link = _approve(_ask(PATIENT, 2, ProxyBasis.CONSENT, "Daughter"), ProxyBasis.CONSENT)
        link_id, patient_id, proxy_name = link.id, link.patient_id, link.proxy.display_name
    sign_in(PATIENT2)
    page = _text(client.get("/proxy"))
    assert "Asking to act for you" in page and proxy_name in page
    ask = _text(client.get(f"/proxy/{link_id}/consent"))
    assert "book, change and cancel your appointments" in ask
    assert client.submit(f"/proxy/{link_id}/consent", {}).status_code == 400
    assert client.submit(f"/proxy/{link_id}/consent", {"decision": "yes"}).status_code == 302
    assert "People who can act for you" in _text(client.get("/proxy"))
    client.post("/logout", data={"csrf_token": client.csrf_token("/home")})

    sign_in(PATIENT)
    client.submit("/proxy/act-for", {"patient_id": str(patient_id)}, page="/proxy")
    assert client.get("/appointments").status_code == 200
    with app.app_context():
        lines = activity_for(current_uow(), _user(PATIENT2))
    assert any(line.who == f"{proxy_name} (acting for you)" for line in lines)


def test_the_header_switch_lists_own_account_and_each_person(app: Any) -> None:
    from flask import g, render_template
    from flask_login import login_user

    with app.test_request_context("/home"):
        parent = _user(PARENT)
        login_user(parent)
        g.acting = acting_for(db.session, parent, _child_link().patient_id)
        html_ = render_template("partials/acting_switch.html")
        assert 'action="/proxy/act-for"' in html_ and "Your own account" in html_
        assert f'value="{_child_link().patient_id}" selected' in html_
        login_user(_user(PATIENT))
        g.acting = None
        assert "app-acting-switch" not in render_template("partials/acting_switch.html"), "nobody to switch to"
