"""A small, bounded, thread-safe memory of recent results, each kept for a fixed number of seconds."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TimedMemo(Generic[K, V]):
    """Results by key for ``seconds`` (0 keeps nothing), at most ``max_entries`` of them.

    Entries are kept in the order they were made, which is also the order they expire in, so each new entry
    first drops those that have expired: the memory holds what was made in the last ``seconds`` and never
    more than ``max_entries`` (the oldest go first).
    """

    def __init__(self, seconds: float, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, make: Callable[[], V]) -> V:
        """The remembered value for ``key`` while it is fresh, else ``make()``'s, remembered."""
        if self.seconds <= 0:
            return make()
        now = self._clock()
        with self._lock:
            found = self._entries.get(key)
            if found is not None and found[0] > now:
                return found[1]
        value = make()  # outside the lock: one slow ``make`` must not hold up every other key
        with self._lock:
            self._entries.pop(key, None)
            while self._entries and next(iter(self._entries.values()))[0] <= now:
                self._entries.popitem(last=False)
            self._entries[key] = (now + self.seconds, value)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value

    def forget(self, matches: Callable[[K], bool]) -> None:
        """Drop every entry whose key ``matches``."""
        with self._lock:
            for key in [k for k in self._entries if matches(k)]:
                del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)
