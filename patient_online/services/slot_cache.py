"""A few seconds' memory of each practice's free slots, for the slots page only.

On a Monday morning many patients of one practice look at the same week within seconds of each other, and
each look would otherwise be a search of the clinical system (a GP Connect request, or a query of the demo
system). The slots page may show what was free a few seconds ago: booking always checks the slot again in
the clinical system, so a time that has just gone only means "That time is no longer available". Bookings
and cancellations made through this process forget the practice's entries at once; other processes see
them when their entries expire.

The memory is per process and holds no personal data: free slots are the same for every patient of the
practice. It is bounded: a week of slots takes about 100 kB, and at most 256 searches are kept (those of the
last few seconds), so about 25 MB per worker at the very most; a search that finds no room is simply made.

When an entry has expired and several pages of the practice ask at once, one search is made and the others wait
for its answer (within their request's deadline) instead of each asking the clinical system the same thing.

The same pages also read the patient's own appointments: that personal memory is kept apart, per patient, in
``appointments`` (see appointment_memory).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

from patient_online.adapters import deadline
from patient_online.domain.appointments import Slot, SlotQuery
from patient_online.memo import TimedMemo

from .appointment_memory import PatientAppointmentMemory

Search = Callable[[SlotQuery], list[Slot]]


class SlotSearchCache:
    """Search results by practice and query, kept for ``seconds`` (0: not kept at all), and beside them the
    memory of each patient's own appointments (``appointments``; none kept unless given)."""

    def __init__(
        self,
        seconds: float,
        max_entries: int = 256,
        clock: Callable[[], float] | None = None,
        appointments: PatientAppointmentMemory | None = None,
    ) -> None:
        self.appointments = appointments if appointments is not None else PatientAppointmentMemory(0)
        self._memo: TimedMemo[tuple[str, SlotQuery], list[Slot]] = TimedMemo(
            seconds, max_entries, clock or time.monotonic
        )
        self._seconds = seconds
        self._in_flight: dict[tuple[str, SlotQuery], Future[list[Slot]]] = {}
        self._lock = threading.Lock()

    def search(self, practice_ods: str, query: SlotQuery, search: Search) -> list[Slot]:
        """The slots ``search`` finds for the query, from memory when a recent search asked the same.

        The query is widened to whole minutes, so that searches made moments apart (each from "now plus the
        lead time" and perhaps to "now plus the horizon") share an entry; the caller filters out the few
        slots outside its own window.
        """
        end = query.end.replace(second=0, microsecond=0)
        if end < query.end:
            end += dt.timedelta(minutes=1)
        query = dataclasses.replace(query, start=query.start.replace(second=0, microsecond=0), end=end)
        key = (practice_ods, query)
        if self._seconds <= 0:
            return self._memo.get(key, lambda: search(query))
        return self._memo.get(key, lambda: self._once(key, lambda: search(query)))

    def _once(self, key: tuple[str, SlotQuery], make: Callable[[], list[Slot]]) -> list[Slot]:
        """Make the search, or wait for the same search another thread is making (its answer or its error)."""
        with self._lock:
            running = self._in_flight.get(key)
            if running is None:
                mine: Future[list[Slot]] = Future()
                self._in_flight[key] = mine
        if running is not None:
            try:
                return running.result(timeout=deadline.remaining())
            except FutureTimeout:
                raise deadline.DeadlineExceeded() from None
        try:
            found = make()
        except BaseException as exc:
            mine.set_exception(exc)
            raise
        else:
            mine.set_result(found)
            return found
        finally:
            with self._lock:
                self._in_flight.pop(key, None)

    def forget(self, practice_ods: str) -> None:
        """The practice's appointment book changed here: search it afresh next time."""
        self._memo.forget(lambda key: key[0] == practice_ods)
