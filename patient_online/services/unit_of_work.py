"""The unit of work every use case takes: one transaction, its clock, notifier, clinical systems and audit.

A use case asks the unit of work for what it needs and never reaches for the web framework or a global:

- ``uow.session``: the gateway's database session, for reads and writes;
- ``uow.commit()`` / ``uow.rollback()``: the only way a use case ends its transaction;
- ``uow.writing()``: start a transaction that reads and then writes, holding the write lock from its start
  (SQLite), so that concurrent writers queue instead of failing half-way;
- ``uow.release()`` or ``with uow.outside_transaction():``: end the transaction before calling a practice's
  clinical system. A slow practice link must never hold a database transaction (and its locks and pooled
  connection) open, so a clinical system reached through ``uow.clinical(practice)`` refuses every call made
  while the session is still in a transaction (``TransactionStillOpen``);
- ``uow.clock``, ``uow.audit(...)``, ``uow.send_email(...)``: time, the audit trail (in the same transaction
  as the change it describes) and messages (likewise).

The web layer builds one per request from the app's parts (see ``UnitOfWorkFactory``); commands and workers
build their own; unit tests use ``tests.fakes.FakeUnitOfWork``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, cast
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from patient_online.domain.ports import ClinicalSystem
from patient_online.extensions import WRITE_TRANSACTION, begin_write
from patient_online.models import AuditEvent, Notification, Practice

from . import audit
from .notify import LocalOutboxNotifier, Notifier
from .slot_cache import SlotSearchCache

LONDON = ZoneInfo("Europe/London")


class TransactionStillOpen(RuntimeError):
    """A clinical system was called while the database transaction was open: a programming error.

    The use case must end its transaction first (``uow.release()`` or ``with uow.outside_transaction():``).
    """


class Clock(Protocol):
    def now(self) -> dt.datetime: ...


class SystemClock:
    """The real time, in UTC."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


@dataclass
class FixedClock:
    """A clock that says what it is told (tests, and the commands' ``--now``)."""

    at: dt.datetime

    def now(self) -> dt.datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += dt.timedelta(**delta)


class ClinicalLookup(Protocol):
    """Finds the clinical system of a practice (``services.clinical.ClinicalSystems`` in the app)."""

    def system_for(self, practice: Practice) -> ClinicalSystem: ...

    def concurrently(self, practice: Practice, *calls: Callable[[], Any]) -> list[Any]:
        """Independent reads of the practice's system, at the same time where that helps; results in order."""
        ...


class GuardedClinicalSystem:
    """A practice's clinical system that refuses to be called while ``session`` is in a transaction."""

    def __init__(self, inner: ClinicalSystem, session: Session) -> None:
        self._inner = inner
        self._session = session

    @property
    def inner(self) -> ClinicalSystem:
        return self._inner

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name.startswith("_") or not callable(attribute):
            return attribute

        def guarded(*args: Any, **kwargs: Any) -> Any:
            if _in_transaction(self._session):
                raise TransactionStillOpen(
                    f"clinical call {name}() made with a database transaction open; release the unit of work first"
                )
            return attribute(*args, **kwargs)

        return guarded


def _in_transaction(session: Session) -> bool:
    target: Session = session if isinstance(session, Session) else cast(Any, session)()  # a scoped_session
    return target.in_transaction()


class AbstractUnitOfWork:
    """What a use case is given. Subclasses supply the session and the parts; the rules live here once."""

    session: Session
    clock: Clock
    notifier: Notifier
    clinical_systems: ClinicalLookup
    slot_cache: SlotSearchCache
    request_id: str = ""
    settings: Mapping[str, Any]

    # The transaction ------------------------------------------------------------------------------------
    def commit(self) -> None:
        """Make the transaction's changes (and their audit events and messages) permanent together."""
        self.session.commit()

    def rollback(self) -> None:
        """Drop whatever the transaction did."""
        self.session.rollback()

    def flush(self) -> None:
        """Send pending changes to the database (to learn generated ids) without ending the transaction."""
        self.session.flush()

    def writing(self) -> None:
        """End any transaction (a no-op when none is open) and start one that holds the write lock from its
        start (SQLite; PostgreSQL takes row locks as it goes), for a use case that reads and then writes."""
        begin_write(self.session)

    def join_writing(self) -> None:
        """Take the write lock for the transaction about to start; keep a transaction already open as it is."""
        target: Session = self.session if isinstance(self.session, Session) else cast(Any, self.session)()
        if not target.in_transaction():
            target.connection(execution_options=WRITE_TRANSACTION)

    def release(self) -> None:
        """End the transaction (committing what it did) before a clinical-system call."""
        self.commit()

    @contextmanager
    def outside_transaction(self) -> Iterator[None]:
        """``with uow.outside_transaction(): system.book(...)``: the block runs with no transaction open."""
        self.release()
        yield

    @property
    def in_transaction(self) -> bool:
        return _in_transaction(self.session)

    # The parts --------------------------------------------------------------------------------------------
    def clinical(self, practice: Practice) -> ClinicalSystem:
        """The practice's clinical system, guarded: calling it with a transaction open raises."""
        return cast(ClinicalSystem, GuardedClinicalSystem(self.clinical_systems.system_for(practice), self.session))

    def now(self) -> dt.datetime:
        return self.clock.now()

    def today(self) -> dt.date:
        """Today in England."""
        return self.clock.now().astimezone(LONDON).date()

    def audit(
        self,
        action: str,
        *,
        actor_id: int | None = None,
        actor_role: str = "",
        patient_id: int | None = None,
        subject_user_id: int | None = None,
        practice_id: int | None = None,
        **detail: Any,
    ) -> AuditEvent:
        """An audit event in this transaction: it commits with the change it describes, or not at all."""
        event = audit.record(
            self.session,
            action,
            actor_id=actor_id,
            actor_role=actor_role,
            patient_id=patient_id,
            subject_user_id=subject_user_id,
            practice_id=practice_id,
            **detail,
        )
        event.request_id = self.request_id  # the web request's id; a detail may carry a "request_id" of its own
        return event

    def send_email(self, to: str, template: str, subject: str, body: str, **options: Any) -> Notification:
        """Queue an email in this transaction: the outbox sends it once the transaction commits (never from
        inside the request). ``options``: ``key`` (once-only), ``priority``, ``personalisation``, ``practice_id``
        (see ``services.messages.queue``)."""
        from . import messages

        return messages.queue(self, "email", to, template, subject, body, **options)

    def send_sms(self, to: str, template: str, body: str, **options: Any) -> Notification:
        """Queue a text message in this transaction, as ``send_email`` does."""
        from . import messages

        return messages.queue(self, "sms", to, template, "", body, **options)

    @property
    def urgent_messages(self) -> list[str]:
        """References of priority messages (security codes) queued by this unit of work: the web layer tries
        them at once after the request's transaction has committed."""
        found: list[str] | None = self.__dict__.get("_urgent_messages")
        if found is None:
            found = self.__dict__["_urgent_messages"] = []
        return found

    def setting(self, name: str, default: Any = None) -> Any:
        return self.settings.get(name, default)


class SqlAlchemyUnitOfWork(AbstractUnitOfWork):
    """The unit of work on the gateway's database, with the app's parts."""

    def __init__(
        self,
        session: Session,
        *,
        clinical_systems: ClinicalLookup,
        slot_cache: SlotSearchCache,
        notifier: Notifier | None = None,
        clock: Clock | None = None,
        request_id: str = "",
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.session = session
        self.clinical_systems = clinical_systems
        self.slot_cache = slot_cache
        self.notifier = notifier or LocalOutboxNotifier()
        self.clock = clock or SystemClock()
        self.request_id = request_id
        self.settings = settings or {}


@dataclass
class UnitOfWorkFactory:
    """The app's parts, from which a unit of work is made for each request, command or worker."""

    clinical_systems: ClinicalLookup
    slot_cache: SlotSearchCache
    notifier: Callable[[], Notifier] = LocalOutboxNotifier
    clock: Clock = field(default_factory=SystemClock)
    settings: Mapping[str, Any] = field(default_factory=dict)

    def __call__(self, session: Session, request_id: str = "") -> SqlAlchemyUnitOfWork:
        return SqlAlchemyUnitOfWork(
            session,
            clinical_systems=self.clinical_systems,
            slot_cache=self.slot_cache,
            notifier=self.notifier(),
            clock=self.clock,
            request_id=request_id,
            settings=self.settings,
        )
