"""The durable outbox with a fake unit of work: handlers are given the unit of work, the clinical system is
called with no transaction open, failures are retried with backoff from the settings and given up on at the
limit, and a message leased to another worker is left alone."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from patient_online.domain.errors import ClinicalSystemUnavailable, PatientNotFound
from patient_online.domain.outbox import MessageStatus
from patient_online.models import OutboxMessage
from patient_online.services import outbox
from patient_online.services.unit_of_work import AbstractUnitOfWork, FixedClock, UnitOfWorkFactory
from tests.fakes import FakeClinicalSystems, FakeUnitOfWork
from tests.unit.conftest import practice

KIND = "test.delivery"


@dataclass
class Recorder:
    """A handler that records what it was given; ``answers`` are what successive calls return or raise."""

    answers: list[Any] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    open_during_call: list[bool] = field(default_factory=list)

    def prepare(self, uow: AbstractUnitOfWork, message: OutboxMessage) -> Callable[[], dict[str, Any]]:
        self.seen.append(f"prepare {message.payload['n']}")

        def call() -> dict[str, Any]:
            self.open_during_call.append(uow.in_transaction)
            answer = self.answers.pop(0) if self.answers else {"ok": True}
            if isinstance(answer, Exception):
                raise answer
            return dict(answer)

        return call

    def delivered(self, uow: AbstractUnitOfWork, message: OutboxMessage) -> None:
        self.seen.append(f"delivered {message.status} in transaction={uow.in_transaction}")

    def failed(self, uow: AbstractUnitOfWork, message: OutboxMessage) -> None:
        self.seen.append(f"failed {message.status}")


@pytest.fixture
def handler() -> Iterator[Recorder]:
    recorder = Recorder()
    outbox.register(KIND, outbox.Handler(recorder.prepare, recorder.delivered, recorder.failed))
    yield recorder
    outbox._HANDLERS.pop(KIND, None)


def advance(uow: FakeUnitOfWork, seconds: float) -> None:
    assert isinstance(uow.clock, FixedClock)
    uow.clock.advance(seconds=seconds)


def queued(uow: FakeUnitOfWork, n: int = 1, kind: str = KIND) -> OutboxMessage:
    message = outbox.enqueue(uow, practice(uow).id, kind, {"n": n}, f"key-{kind}-{n}")
    uow.commit()
    return message


def test_a_message_is_delivered_once_with_no_transaction_open_during_the_call(
    uow: FakeUnitOfWork, handler: Recorder
) -> None:
    message = queued(uow)
    assert (message.status, message.next_attempt_at) == (MessageStatus.PENDING, uow.now())
    report = outbox.deliver_due(uow, "w1")
    assert report.outcomes == [outbox.Outcome.DELIVERED] and str(report) == "delivered 1"
    assert handler.open_during_call == [False]
    assert handler.seen == ["prepare 1", "delivered delivered in transaction=True"]
    uow.session.refresh(message)
    assert (message.status, message.result, message.attempts, message.locked_by) == ("delivered", {"ok": True}, 1, "")
    assert message.delivered_at is not None and message.delivered_at.replace(tzinfo=dt.UTC) == uow.now()
    assert outbox.deliver_due(uow, "w1").outcomes == []


def test_an_unreachable_system_is_retried_with_backoff_then_given_up(handler: Recorder) -> None:
    uow = FakeUnitOfWork(settings={"OUTBOX_MAX_ATTEMPTS": 3, "OUTBOX_BACKOFF_BASE": 10, "OUTBOX_BACKOFF_CAP": 15})
    try:
        message = queued(uow)
        handler.answers = [ClinicalSystemUnavailable()] * 3
        assert outbox.deliver_due(uow, "w1").outcomes == [outbox.Outcome.RETRY]
        uow.session.refresh(message)
        assert message.next_attempt_at.replace(tzinfo=dt.UTC) == uow.now() + dt.timedelta(seconds=10)
        assert (message.last_error, message.locked_by) == ("ClinicalSystemUnavailable", "")
        assert outbox.deliver_due(uow, "w1").outcomes == []  # not due yet
        advance(uow, 10)
        assert outbox.deliver_due(uow, "w1").outcomes == [outbox.Outcome.RETRY]
        uow.session.refresh(message)
        assert message.next_attempt_at.replace(tzinfo=dt.UTC) == uow.now() + dt.timedelta(seconds=15)  # capped
        advance(uow, 15)
        assert outbox.deliver_due(uow, "w1").outcomes == [outbox.Outcome.FAILED]
        uow.session.refresh(message)
        assert message.status == "failed" and message.attempts == 3
        assert message.last_error == "gave up after 3 attempts: ClinicalSystemUnavailable"
        assert handler.seen[-1] == "failed failed"
    finally:
        uow.close()


def test_a_refusal_from_the_system_is_given_up_at_once(uow: FakeUnitOfWork, handler: Recorder) -> None:
    message = queued(uow)
    handler.answers = [PatientNotFound()]
    assert outbox.deliver_due(uow, "w1").outcomes == [outbox.Outcome.FAILED]
    uow.session.refresh(message)
    assert message.status == "failed" and message.last_error.startswith("PatientNotFound: ")
    assert handler.seen == ["prepare 1", "failed failed"]


def test_a_message_of_no_known_kind_is_given_up(uow: FakeUnitOfWork) -> None:
    message = queued(uow, kind="test.unknown")
    assert outbox.deliver_due(uow, "w1").outcomes == [outbox.Outcome.FAILED]
    uow.session.refresh(message)
    assert message.last_error == "no handler for test.unknown"


def test_a_message_leased_to_another_worker_is_left_alone(uow: FakeUnitOfWork, handler: Recorder) -> None:
    message = queued(uow)
    message.locked_by, message.locked_until = "other", uow.now() + dt.timedelta(seconds=60)
    uow.commit()
    assert outbox.deliver_message(uow, message.id, "web-1") is outbox.Outcome.BUSY
    assert outbox.deliver_due(uow, "w1").outcomes == []
    advance(uow, 61)  # the other worker's lease ran out
    assert outbox.deliver_message(uow, message.id, "web-1") is outbox.Outcome.DELIVERED
    assert handler.seen == ["prepare 1", "delivered delivered in transaction=True"]


def test_counts_name_every_status(uow: FakeUnitOfWork, handler: Recorder) -> None:
    queued(uow, 1)
    queued(uow, 2)
    outbox.deliver_due(uow, "w1", limit=1)
    assert outbox.counts(uow) == {
        MessageStatus.PENDING: 1,
        MessageStatus.DELIVERED: 1,
        MessageStatus.FAILED: 0,
        MessageStatus.WITHDRAWN: 0,
    }


def test_a_worker_round_makes_its_unit_of_work_from_the_factory_it_is_given(
    uow: FakeUnitOfWork, handler: Recorder
) -> None:
    message = queued(uow)
    later = FixedClock(uow.now() + dt.timedelta(hours=1))
    factory = UnitOfWorkFactory(FakeClinicalSystems(), uow.slot_cache, clock=later)
    report = outbox.run_once(factory, uow.session, "w1")
    assert report.outcomes == [outbox.Outcome.DELIVERED]
    uow.session.refresh(message)
    assert message.delivered_at is not None and message.delivered_at.replace(tzinfo=dt.UTC) == later.now()
