"""Proxy age rules (design rule 18) as pure functions: review age, 16, leap-day birthdays, the notice window."""

from __future__ import annotations

import datetime as dt

import pytest

from patient_online.domain.patients import Demographics, PatientRef
from patient_online.domain.proxy import (
    AgeDecision,
    LinkFacts,
    Milestone,
    ProxyBasis,
    ProxyStatus,
    age_on,
    approval_problem,
    birthday,
    check_review_age,
    proxy_review_due,
)

PARENTAL = LinkFacts(ProxyBasis.PARENTAL_RESPONSIBILITY, ProxyStatus.ACTIVE)
AGREED = LinkFacts(ProxyBasis.PARENTAL_RESPONSIBILITY, ProxyStatus.ACTIVE, competence_assessed=True, child_consent=True)
LEAP = dt.date(2016, 2, 29)


def _due(link: LinkFacts, born: dt.date, today: dt.date, review_age: int = 11, notice_days: int = 30) -> AgeDecision:
    return proxy_review_due(link, born, today, review_age, notice_days)


# Age and birthdays -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("today", "age"),
    [
        (dt.date(2027, 2, 28), 10),  # no 29 February in 2027: still 10 on the 28th
        (dt.date(2027, 3, 1), 11),  # ... and 11 on 1 March
        (dt.date(2028, 2, 28), 11),
        (dt.date(2028, 2, 29), 12),  # a leap year: the real birthday
        (dt.date(2032, 2, 28), 15),
        (dt.date(2032, 2, 29), 16),
        (dt.date(2031, 2, 28), 14),
        (dt.date(2031, 3, 1), 15),
    ],
)
def test_age_of_a_leap_day_child(today: dt.date, age: int) -> None:
    assert age_on(LEAP, today) == age
    person = Demographics(PatientRef("Y02001", "9434765919", "P1"), "Ada", "Lee", LEAP, "AB1 2CD")
    assert person.age_on(today) == age, "the same rule as Demographics.age_on"


def test_birthdays_of_a_leap_day_child_fall_on_1_march_in_common_years() -> None:
    assert birthday(LEAP, 11) == dt.date(2027, 3, 1)
    assert birthday(LEAP, 12) == dt.date(2028, 2, 29)
    assert birthday(LEAP, 16) == dt.date(2032, 2, 29)
    assert birthday(dt.date(2017, 2, 28), 16) == dt.date(2033, 2, 28)


# Review age (10/11) ------------------------------------------------------------------------------------------
BORN = dt.date(2015, 6, 15)


def test_ten_year_old_keeps_parental_access() -> None:
    decision = _due(PARENTAL, BORN, dt.date(2026, 1, 10))
    assert decision.age == 10 and decision.nothing


def test_day_before_the_review_birthday_nothing_is_suspended() -> None:
    decision = _due(PARENTAL, BORN, dt.date(2026, 6, 14))
    assert decision.age == 10 and decision.suspend is None


def test_suspended_for_review_on_the_eleventh_birthday() -> None:
    decision = _due(PARENTAL, BORN, dt.date(2026, 6, 15))
    assert decision.age == 11
    assert decision.suspend is Milestone.REVIEW
    assert decision.suspend_on == dt.date(2026, 6, 15)
    assert decision.suspend_key == "suspended:review:2026-06-15"


def test_competence_and_consent_recorded_keep_access_past_the_review_age() -> None:
    assert _due(AGREED, BORN, dt.date(2026, 6, 15)).suspend is None
    half = LinkFacts(ProxyBasis.PARENTAL_RESPONSIBILITY, ProxyStatus.ACTIVE, competence_assessed=True)
    assert _due(half, BORN, dt.date(2026, 6, 15)).suspend is Milestone.REVIEW, "competence alone is not enough"
    consent_only = LinkFacts(ProxyBasis.PARENTAL_RESPONSIBILITY, ProxyStatus.ACTIVE, child_consent=True)
    assert _due(consent_only, BORN, dt.date(2026, 6, 15)).suspend is Milestone.REVIEW


def test_the_review_age_is_configurable() -> None:
    assert _due(PARENTAL, BORN, dt.date(2026, 6, 15), review_age=13).suspend is None
    assert _due(PARENTAL, BORN, dt.date(2028, 6, 15), review_age=13).suspend is Milestone.REVIEW
    with pytest.raises(ValueError):
        check_review_age(17)
    with pytest.raises(ValueError):
        _due(PARENTAL, BORN, dt.date(2026, 6, 15), review_age=0)


def test_leap_day_child_reaches_the_review_age_on_1_march() -> None:
    assert _due(PARENTAL, LEAP, dt.date(2027, 2, 28)).suspend is None
    decision = _due(PARENTAL, LEAP, dt.date(2027, 3, 1))
    assert decision.suspend is Milestone.REVIEW and decision.suspend_on == dt.date(2027, 3, 1)


# Sixteen (15/16) ---------------------------------------------------------------------------------------------
def test_fifteen_year_old_with_the_childs_consent_keeps_access() -> None:
    assert _due(AGREED, BORN, dt.date(2031, 6, 14)).suspend is None


def test_sixteen_always_suspends_even_with_the_childs_consent() -> None:
    decision = _due(AGREED, BORN, dt.date(2031, 6, 15))
    assert decision.age == 16 and decision.suspend is Milestone.SIXTEEN
    assert decision.suspend_key == "suspended:sixteen:2031-06-15"
    assert _due(PARENTAL, BORN, dt.date(2031, 6, 15)).suspend is Milestone.SIXTEEN, "16 wins over the review"


def test_leap_day_child_turns_sixteen_on_29_february_2032() -> None:
    assert _due(AGREED, LEAP, dt.date(2032, 2, 28)).suspend is None
    assert _due(AGREED, LEAP, dt.date(2032, 2, 29)).suspend is Milestone.SIXTEEN


def test_leap_day_child_in_a_common_year_is_fifteen_until_1_march() -> None:
    born = dt.date(2012, 2, 29)  # 16 in 2028, a leap year; check 15 in 2027 (common)
    assert age_on(born, dt.date(2027, 2, 28)) == 14
    assert age_on(born, dt.date(2027, 3, 1)) == 15


def test_review_age_of_sixteen_means_one_suspension_only() -> None:
    decision = _due(PARENTAL, BORN, dt.date(2031, 5, 20), review_age=16)
    assert [n.milestone for n in decision.notices] == [Milestone.SIXTEEN]


# Which links the rules touch ---------------------------------------------------------------------------------
@pytest.mark.parametrize("basis", [b for b in ProxyBasis if b is not ProxyBasis.PARENTAL_RESPONSIBILITY])
def test_other_bases_are_not_touched_by_the_age_rules(basis: ProxyBasis) -> None:
    decision = _due(LinkFacts(basis, ProxyStatus.ACTIVE), BORN, dt.date(2031, 6, 15))
    assert decision.nothing


@pytest.mark.parametrize("status", [s for s in ProxyStatus if s is not ProxyStatus.ACTIVE])
def test_only_active_links_are_suspended_or_noticed(status: ProxyStatus) -> None:
    link = LinkFacts(ProxyBasis.PARENTAL_RESPONSIBILITY, status)
    assert _due(link, BORN, dt.date(2031, 6, 15)).nothing
    assert _due(link, BORN, dt.date(2026, 6, 1)).nothing


# Notices -----------------------------------------------------------------------------------------------------
def test_notice_is_due_inside_the_window_and_not_before() -> None:
    assert _due(PARENTAL, BORN, dt.date(2026, 5, 15)).notices == ()  # 31 days before
    decision = _due(PARENTAL, BORN, dt.date(2026, 5, 16))  # 30 days before
    assert [(n.milestone, n.on) for n in decision.notices] == [(Milestone.REVIEW, dt.date(2026, 6, 15))]
    assert decision.notices[0].key == "notice:review:2026-06-15"
    assert _due(PARENTAL, BORN, dt.date(2026, 6, 14)).notices[0].milestone is Milestone.REVIEW  # the last day


def test_a_notice_already_sent_is_not_sent_again() -> None:
    sent = LinkFacts(
        ProxyBasis.PARENTAL_RESPONSIBILITY, ProxyStatus.ACTIVE, notices_sent=frozenset({"notice:review:2026-06-15"})
    )
    assert _due(sent, BORN, dt.date(2026, 6, 1)).nothing


def test_the_notice_window_is_configurable() -> None:
    assert _due(PARENTAL, BORN, dt.date(2026, 6, 1), notice_days=7).notices == ()
    assert len(_due(PARENTAL, BORN, dt.date(2026, 6, 8), notice_days=7).notices) == 1
    assert _due(PARENTAL, BORN, dt.date(2026, 6, 14), notice_days=0).notices == ()


def test_no_review_notice_when_the_child_has_agreed_but_a_sixteen_notice_comes() -> None:
    assert _due(AGREED, BORN, dt.date(2026, 6, 1)).notices == ()
    decision = _due(AGREED, BORN, dt.date(2031, 6, 1))
    assert [(n.milestone, n.on) for n in decision.notices] == [(Milestone.SIXTEEN, dt.date(2031, 6, 15))]


def test_both_notices_when_both_milestones_fall_inside_a_long_window() -> None:
    born = dt.date(2016, 6, 15)  # 15 on 15 June 2031, 16 on 15 June 2032
    decision = _due(PARENTAL, born, dt.date(2031, 5, 1), review_age=15, notice_days=420)
    assert [(n.milestone, n.on) for n in decision.notices] == [
        (Milestone.REVIEW, dt.date(2031, 6, 15)),
        (Milestone.SIXTEEN, dt.date(2032, 6, 15)),
    ]
    decision = _due(PARENTAL, born, dt.date(2031, 5, 1), review_age=15, notice_days=60)
    assert [n.milestone for n in decision.notices] == [Milestone.REVIEW]


def test_leap_day_notice_counts_back_from_1_march() -> None:
    decision = _due(PARENTAL, LEAP, dt.date(2027, 1, 30))  # 30 days before 1 March 2027
    assert [(n.milestone, n.on) for n in decision.notices] == [(Milestone.REVIEW, dt.date(2027, 3, 1))]
    assert _due(PARENTAL, LEAP, dt.date(2027, 1, 29)).notices == ()


# Approving (the same rules when reception sets a link up or restarts it) -------------------------------------
def test_approval_problem_for_parental_access() -> None:
    assert approval_problem(ProxyBasis.PARENTAL_RESPONSIBILITY, 10, 11, child_agreed=False) == ""
    assert "competence" in approval_problem(ProxyBasis.PARENTAL_RESPONSIBILITY, 11, 11, child_agreed=False)
    assert approval_problem(ProxyBasis.PARENTAL_RESPONSIBILITY, 15, 11, child_agreed=True) == ""
    assert "16" in approval_problem(ProxyBasis.PARENTAL_RESPONSIBILITY, 16, 11, child_agreed=True)
    assert approval_problem(ProxyBasis.CONSENT, 16, 11, child_agreed=False) == ""
    assert approval_problem(ProxyBasis.LASTING_POWER_OF_ATTORNEY, 70, 11, child_agreed=False) == ""


def test_every_basis_and_status_has_a_label() -> None:
    assert all(b.label and b.hint for b in ProxyBasis)
    assert all(s.label for s in ProxyStatus)
    assert [b for b in ProxyBasis if b.needs_patient_consent] == [ProxyBasis.CONSENT]
