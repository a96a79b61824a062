"""The slots page's short memory of each practice's free slots, and the memo under it."""

from __future__ import annotations

import datetime as dt

import pytest

from patient_online.domain.appointments import Clinician, DeliveryMode, Slot, SlotQuery
from patient_online.memo import TimedMemo
from patient_online.services.slot_cache import SlotSearchCache

GP = Clinician("GP1", "Dr Sarah Mitchell", "GP")
START = dt.datetime(2026, 12, 7, 9, 0, 41, 5000, tzinfo=dt.UTC)
SLOT = Slot("S1", START, START + dt.timedelta(minutes=10), "GP appointment", GP, DeliveryMode.FACE_TO_FACE, "Surgery")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeBook:
    """Counts the searches that reach the clinical system."""

    def __init__(self) -> None:
        self.queries: list[SlotQuery] = []

    def search(self, query: SlotQuery) -> list[Slot]:
        self.queries.append(query)
        return [SLOT]


def _query(start: dt.datetime = START, end: dt.datetime | None = None) -> SlotQuery:
    end = end or START + dt.timedelta(days=7)
    return SlotQuery(start=start, end=end, slot_types=frozenset({"GP appointment"}))


def test_a_recent_search_of_the_same_week_is_served_from_memory_until_it_expires() -> None:
    clock, book = Clock(), FakeBook()
    cache = SlotSearchCache(10, clock=clock)
    assert cache.search("B81001", _query(), book.search) == [SLOT]
    clock.now += 9.9
    assert cache.search("B81001", _query(), book.search) == [SLOT]
    assert len(book.queries) == 1
    clock.now += 0.2
    cache.search("B81001", _query(), book.search)
    assert len(book.queries) == 2


def test_searches_moments_apart_share_an_entry_from_the_start_of_the_minute() -> None:
    clock, book = Clock(), FakeBook()
    cache = SlotSearchCache(10, clock=clock)
    later = START + dt.timedelta(seconds=12)
    cache.search("B81001", _query(START, START + dt.timedelta(days=28)), book.search)
    cache.search("B81001", _query(later, later + dt.timedelta(days=28)), book.search)
    assert len(book.queries) == 1
    # Never narrower than asked: from the start of the minute to the end of the minute.
    assert book.queries[0].start == dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)
    assert book.queries[0].end == dt.datetime(2027, 1, 4, 9, 1, tzinfo=dt.UTC)


def test_practices_and_queries_are_kept_apart() -> None:
    book = FakeBook()
    cache = SlotSearchCache(10, clock=Clock())
    cache.search("B81001", _query(), book.search)
    cache.search("B81002", _query(), book.search)
    cache.search("B81001", _query(START + dt.timedelta(days=7), START + dt.timedelta(days=14)), book.search)
    assert len(book.queries) == 3


def test_a_booking_here_makes_the_next_search_ask_again_for_that_practice_only() -> None:
    first, second = FakeBook(), FakeBook()
    cache = SlotSearchCache(10, clock=Clock())
    cache.search("B81001", _query(), first.search)
    cache.search("B81002", _query(), second.search)
    cache.forget("B81001")
    cache.search("B81001", _query(), first.search)
    cache.search("B81002", _query(), second.search)
    assert (len(first.queries), len(second.queries)) == (2, 1)


def test_zero_seconds_asks_every_time() -> None:
    book = FakeBook()
    cache = SlotSearchCache(0, clock=Clock())
    cache.search("B81001", _query(), book.search)
    cache.search("B81001", _query(), book.search)
    assert len(book.queries) == 2


def test_a_failed_search_is_not_remembered() -> None:
    calls = []

    def failing(query: SlotQuery) -> list[Slot]:
        calls.append(query)
        raise TimeoutError

    cache = SlotSearchCache(10, clock=Clock())
    for _ in range(2):
        with pytest.raises(TimeoutError):
            cache.search("B81001", _query(), failing)
    assert len(calls) == 2


def test_the_memo_drops_the_oldest_beyond_its_size() -> None:
    memo: TimedMemo[str, int] = TimedMemo(60, max_entries=2, clock=Clock())
    memo.get("a", lambda: 1)
    memo.get("b", lambda: 2)
    memo.get("c", lambda: 3)
    assert len(memo) == 2
    assert memo.get("b", lambda: -2) == 2 and memo.get("c", lambda: -3) == 3
    assert memo.get("a", lambda: -1) == -1  # made again


def test_the_memo_holds_only_what_was_made_within_its_seconds() -> None:
    clock = Clock()
    memo: TimedMemo[str, int] = TimedMemo(10, max_entries=100, clock=clock)
    for n in range(50):
        memo.get(f"week {n}", lambda: 0)
    clock.now += 11
    memo.get("one more", lambda: 0)  # the expired ones are dropped as it is added
    assert len(memo) == 1


def test_pages_asking_at_once_share_one_search() -> None:
    import threading
    import time as _time

    cache = SlotSearchCache(10)
    calls: list[int] = []
    started = threading.Event()

    def slow_search(query: SlotQuery) -> list[Slot]:
        calls.append(1)
        started.set()
        _time.sleep(0.3)
        return []

    query = SlotQuery(start=dt.datetime(2026, 1, 5, 8, tzinfo=dt.UTC), end=dt.datetime(2026, 1, 12, tzinfo=dt.UTC))
    threads = [threading.Thread(target=cache.search, args=("A1", query, slow_search)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert len(calls) == 1
