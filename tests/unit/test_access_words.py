"""What patients and proxies read about their own access is plain: no contract names, no flags, no codes."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from patient_online.domain.access import EffectiveAccess, Service, effective_access
from patient_online.domain.record import RecordLevel
from tests.unit.test_effective_access import inputs, review

JARGON = ("coded", "default", "SNOMED", "enhanced review", "indicated", "practice default", "_")


def words(access: EffectiveAccess, acting_for: str | None = None) -> str:
    return " ".join(access.in_plain_words(acting_for))


def test_the_issues_example_reads_in_plain_words() -> None:
    access = effective_access(inputs())
    assert access.explanation[0] == "Full record: practice default"  # staff keep the contract's words
    said = words(access)
    assert "You can see your full record: notes and documents from 31 October 2023" in said
    assert "You can book, check and cancel your appointments online." in said
    assert "You can order your repeat prescriptions online." in said


@pytest.mark.parametrize("level", list(RecordLevel))
def test_no_level_is_named_in_jargon(level: RecordLevel) -> None:
    access = effective_access(inputs(patient_level=level))
    for said in (words(access), words(access, "Ava")):
        assert not [j for j in JARGON if j in said], said
    assert level.plain_label and "coded" not in level.plain_label


def test_the_reason_for_holding_back_is_not_put_to_the_patient() -> None:
    access = effective_access(inputs(flags=(review(dt.date(2024, 5, 2)),)))
    assert "enhanced review" in " ".join(access.explanation).lower()
    assert "You can see your detailed record" in words(access)
    assert "review" not in words(access).lower()


def test_a_proxy_reads_first_who_they_act_for_then_their_own_cap() -> None:
    own = effective_access(inputs())
    capped = replace(
        own,
        record_level=RecordLevel.SUMMARY,
        services={**own.services, Service.PRESCRIPTIONS: False, Service.PROXY: False},
    )
    lines = capped.in_plain_words("Ava")
    assert lines[0] == "You are acting for Ava."
    assert "You can book, check and cancel Ava's appointments online." in lines
    assert "You cannot order Ava's repeat prescriptions online." in lines
    assert lines[-1] == "You can see Ava's summary record: allergies, adverse reactions and medicines."
    assert "full record" not in " ".join(lines), "the patient's own level is not the proxy's"


def test_switched_off_services_say_so() -> None:
    access = effective_access(inputs(off=(Service.APPOINTMENTS, Service.RECORD)))
    assert "You cannot manage your appointments online." in words(access)
    assert "You cannot see your GP record online." in words(access)


def test_the_contract_duty_says_online_once() -> None:
    for service in Service:
        duty = service.contract_duty
        assert duty.count("online") <= 1, duty
    assert Service.APPOINTMENTS.contract_duty == "Practices must let patients book appointments online."
    assert Service.PROXY.contract_duty == ""
