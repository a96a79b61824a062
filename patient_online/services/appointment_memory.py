"""Half a minute's memory of each patient's own appointments, for the pages that find a free time only.

Every slot, day and time page reads the patient's appointments, to leave out the times they already hold and to
say when they are at their maximum; a patient moving from week to week or day to day would otherwise cost the
practice's system one request per page. These pages may show the patient's appointments as they were a few
seconds ago: booking, cancelling and rescheduling always read them afresh, and check the maximum then.

The memory is personal, so it is kept per patient only and never served for anyone else: entries are keyed by
the patient's reference in their practice's system (the practice's ODS code, NHS number and clinical id). It is
per process, bounded (the oldest go first) and holds nothing past its time: expired entries are dropped
whenever the memory is used.

Every booking, cancellation and amendment the gateway makes for a patient (the resilience layer tells
``forget``, even when the call failed) forgets their entry in this process at once, and, with Redis, in every
other process and node: each change counts up the patient's number of changes in Redis (under a keyed hash of
their reference, never the reference itself), and an entry is used only while that number is the one it was read
under. A page may otherwise offer a time from a search made before the patient booked it elsewhere. While
Redis cannot be reached, nothing is kept, and Redis is asked for numbers again only a few seconds later (each
try costs the page a connection timeout); changes are always counted. The app keeps nothing without Redis: with
several worker processes, a booking in one could not make the others forget.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from patient_online.domain.appointments import Appointment
from patient_online.domain.patients import PatientRef

log = logging.getLogger(__name__)

# A few hundred bytes per appointment, a few appointments per patient: about 10 MB per process at the most.
MAX_PATIENTS = 10_000
# Seconds before Redis is asked again once it could not be reached.
RETRY_REDIS_AFTER = 5.0


class Changes(Protocol):
    """Each patient's number of changes, shared by every process; None when it cannot be known now."""

    def number(self, patient: PatientRef) -> str | None: ...

    def count(self, patient: PatientRef) -> None: ...


class RedisChanges:
    """Patients' numbers of changes in Redis, each kept a while longer than any memory of their appointments."""

    def __init__(self, redis_url: str, keep_seconds: float, secret: str | bytes = b"", client: Any = None) -> None:
        import redis

        # Keys are keyed hashes: an NHS number has too few possible values for a plain hash to hide it.
        self._secret = secret.encode() if isinstance(secret, str) else secret

        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._redis = client or redis.Redis.from_url(
            redis_url, socket_timeout=0.25, socket_connect_timeout=0.25, health_check_interval=30
        )
        self._keep = max(60, int(keep_seconds) * 2)
        self._down_until = 0.0  # while Redis is known to be down, it is not asked (each try costs a timeout)

    def _key(self, patient: PatientRef) -> str:
        reference = f"{patient.practice_ods}|{patient.nhs_number}|{patient.clinical_id}".encode()
        return "po:appointments-changed:" + hmac.new(self._secret, reference, hashlib.sha256).hexdigest()[:32]

    def number(self, patient: PatientRef) -> str | None:
        if self._down():
            return None
        try:
            found = self._redis.get(self._key(patient))
        except self._errors:
            self._went_down()
            return None
        self._came_back()
        return "0" if found is None else found.decode() if isinstance(found, bytes) else str(found)

    def count(self, patient: PatientRef) -> None:
        """Always tried, even while Redis seems down: a change the others miss leaves them a stale memory."""
        key = self._key(patient)
        try:
            with self._redis.pipeline() as pipe:
                pipe.incr(key).expire(key, self._keep).execute()
        except self._errors:
            self._went_down()
            return
        self._came_back()

    def _down(self) -> bool:
        return time.monotonic() < self._down_until

    def _went_down(self) -> None:
        first = self._down_until == 0.0
        self._down_until = time.monotonic() + RETRY_REDIS_AFTER
        if first:
            log.warning("Redis cannot be reached: patients' appointments are read afresh for every page")

    def _came_back(self) -> None:
        if self._down_until:
            self._down_until = 0.0
            log.warning("Redis reachable again: patients' appointments are remembered again")


class PatientAppointmentMemory:
    """Each patient's appointments by their reference, kept for ``seconds`` (0: not kept at all).

    A read that was under way when the patient's appointments changed is not kept (it may be from before the
    change): each change takes a number from a counter, and a read is kept only if no change for that patient
    took a number after the read began. The numbers of the last ``max_entries`` changes are known; a read that
    began before the oldest of them is not kept either.
    """

    def __init__(
        self,
        seconds: float,
        max_entries: int = MAX_PATIENTS,
        clock: Callable[[], float] | None = None,
        changes: Changes | None = None,
    ) -> None:
        self.seconds = seconds
        self.changes = changes
        self.max_entries = max_entries
        self._clock = clock or time.monotonic
        # patient -> (expiry, the shared number of changes it was read under, the appointments)
        self._entries: OrderedDict[PatientRef, tuple[float, str, tuple[Appointment, ...]]] = OrderedDict()
        self._changes = 0
        self._changed: OrderedDict[PatientRef, int] = OrderedDict()  # patient -> number of their last change
        self._changes_known_from = 0
        self._lock = threading.Lock()

    def appointments(self, patient: PatientRef, read: Callable[[], list[Appointment]]) -> list[Appointment]:
        """The patient's appointments as ``read`` (a read of their practice's system) gave them, from memory when
        it was made for this same patient within the last ``seconds``."""
        if self.seconds <= 0:
            return read()
        number = "" if self.changes is None else self.changes.number(patient)
        if number is None:
            return read()
        with self._lock:
            self._drop_expired(self._clock())
            found = self._entries.get(patient)
            if found is not None and found[1] == number:
                return list(found[2])
            began = self._changes
        value = tuple(read())  # outside the lock: one patient's slow read must not hold up the others
        with self._lock:
            if began >= self._changes_known_from and self._changed.get(patient, -1) <= began:
                now = self._clock()
                self._drop_expired(now)
                self._entries.pop(patient, None)
                self._entries[patient] = (now + self.seconds, number, value)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        return list(value)

    def forget(self, patient: PatientRef) -> None:
        """Something changed the patient's appointments: read them afresh next time."""
        if self.seconds <= 0:
            return
        if self.changes is not None:
            self.changes.count(patient)
        with self._lock:
            self._entries.pop(patient, None)
            self._changes += 1
            self._changed.pop(patient, None)
            self._changed[patient] = self._changes
            while len(self._changed) > self.max_entries:
                _, number = self._changed.popitem(last=False)
                self._changes_known_from = number

    def _drop_expired(self, now: float) -> None:
        """Entries are kept in the order they were made, which is the order they expire in."""
        while self._entries and next(iter(self._entries.values()))[0] <= now:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        with self._lock:
            self._drop_expired(self._clock())
            return len(self._entries)
