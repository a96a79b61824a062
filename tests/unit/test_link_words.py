"""The clinical-system link in words staff read, never "circuit closed; embedded"."""

from __future__ import annotations

import datetime as dt

from patient_online.domain.link_words import LinkStatus, link_words, words_for
from patient_online.domain.ports import LinkState

NOW = dt.datetime(2026, 3, 2, 11, 0, tzinfo=dt.UTC)  # 11:00 in London (GMT)
SUMMER = dt.datetime(2026, 7, 2, 11, 0, tzinfo=dt.UTC)  # 12:00 in London (BST)


def test_an_embedded_system_is_connected() -> None:
    words = words_for(LinkState(ok=True, detail="circuit closed; embedded"), NOW)
    assert (words.status, words.sentence, words.tag) == (LinkStatus.CONNECTED, "Patients' requests reach it.", "green")
    assert "circuit" not in words.sentence and "embedded" not in words.sentence


def test_an_open_circuit_is_not_connected_since_the_last_failure_in_uk_time() -> None:
    state = LinkState(ok=False, detail="circuit open; GP Connect: last call failed at 10:42:07 UTC")
    words = words_for(state, NOW)
    assert words.status is LinkStatus.NOT_CONNECTED and not words.ok
    assert words.sentence.startswith("Not connected since 10:42.")
    assert words_for(state, SUMMER).sentence.startswith("Not connected since 11:42.")


def test_a_half_open_circuit_is_slow() -> None:
    words = words_for(LinkState(ok=True, detail="circuit half-open; GP Connect: no calls yet"), NOW)
    assert words.status is LinkStatus.SLOW and words.tag == "yellow"


def test_failing_calls_behind_a_closed_circuit_are_slow() -> None:
    words = words_for(LinkState(ok=False, detail="circuit closed; GP Connect: last call failed at 10:58:00 UTC"), NOW)
    assert words.status is LinkStatus.SLOW and "since 10:58" in words.sentence


def test_a_last_success_is_shown_and_a_time_later_than_now_is_yesterdays() -> None:
    words = words_for(LinkState(ok=True, detail="circuit closed; GP Connect: last call succeeded at 10:40:00 UTC"), NOW)
    assert words.sentence == "Patients' requests reach it. Last answered at 10:40."
    late = words_for(LinkState(ok=False, detail="GP Connect: last call failed at 23:50:00 UTC"), NOW)
    assert late.status is LinkStatus.NOT_CONNECTED and "since 23:50" in late.sentence


def test_link_words_from_the_facts() -> None:
    failed = dt.datetime(2026, 3, 2, 10, 42, tzinfo=dt.UTC)
    assert link_words(False, circuit="open", last_failure=failed).sentence.startswith("Not connected since 10:42.")
    assert link_words(True, last_ok=failed, last_failure=failed - dt.timedelta(minutes=1)).ok
    assert link_words(False).status is LinkStatus.NOT_CONNECTED
