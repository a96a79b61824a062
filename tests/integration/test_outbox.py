"""Nothing lost, nothing twice (issue 6, rule 15): orders made while the clinical system is unreachable are
kept in the durable outbox and delivered exactly once, through retries, a worker killed mid-delivery and
two workers running side by side."""

from __future__ import annotations

import datetime as dt
import html
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from patient_online import wiring
from patient_online.adapters.demo.models import DemoRepeatRequest
from patient_online.domain.prescriptions import PrescriptionType, RepeatItem, RequestStatus
from patient_online.extensions import WRITE_TRANSACTION, make_engine
from patient_online.models import Notification, OutboxMessage, Patient, PrescriptionOrder, User
from patient_online.services import outbox
from patient_online.services import prescriptions as rx
from tests.conftest import PROJECT_ROOT, drop_database, new_database_url
from tests.fakes import FakeClinicalSystem

PATIENT = "patient.y02001@example.com"
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
KEY_RE = re.compile(r'name="idempotency_key" value="([^"]+)"')


@pytest.fixture
def settings() -> dict[str, Any]:
    return {"OUTBOX_BACKOFF_BASE": 0.0, "OUTBOX_MAX_ATTEMPTS": 4}


@pytest.fixture
def fake(app: Any) -> Iterator[FakeClinicalSystem]:
    """A fake clinical system for Riverside, holding two repeats for the demo patient."""
    from patient_online.extensions import db

    with app.app_context():
        nhs = db.session.scalar(select(Patient.nhs_number).where(Patient.clinical_id == "Y02001-P001"))
    system = FakeClinicalSystem()
    system.templates[nhs] = [
        RepeatItem("F1", "Amlodipine 5mg tablets", "One a day", "28 tablets", PrescriptionType.REPEAT),
        RepeatItem("F2", "Ramipril 5mg capsules", "One a day", "28 capsules", PrescriptionType.REPEAT),
    ]
    wiring.override_clinical(app, "Y02001", system)
    yield system
    wiring.override_clinical(app, "Y02001", None)


def text(response: Any) -> str:
    return html.unescape(response.get_data(as_text=True))


def order_while_link_breaks(client: Any, fake: FakeClinicalSystem, items: list[str]) -> Any:
    """Open the order form while the link works, then submit it after the link has gone down."""
    page = client.get("/prescriptions/order").get_data(as_text=True)
    token, key = CSRF_RE.search(page), KEY_RE.search(page)
    assert token and key
    fake.down = True
    form = {"csrf_token": token.group(1), "idempotency_key": key.group(1), "items": items}
    first = client.post("/prescriptions/order", data=form)
    assert first.status_code == 302
    retried = client.post("/prescriptions/order", data=form)  # a retried POST: still one order
    assert retried.headers["Location"] == first.headers["Location"]
    return first


def one_message(session: Any) -> OutboxMessage:
    """The one queued write for the clinical system (emails to the patient are outbox messages too)."""
    [message] = session.scalars(select(OutboxMessage).where(OutboxMessage.kind == rx.KIND)).all()
    session.refresh(message)
    return message


# (a) Link down: queued, the patient told, delivered exactly once when the link returns ------------------------
def test_an_order_made_while_the_link_is_down_is_queued_and_sent_once_later(
    client: Any, sign_in: Any, app: Any, fake: FakeClinicalSystem, uow: Any
) -> None:
    from patient_online.extensions import db

    sign_in(PATIENT)
    done = text(client.get(order_while_link_breaks(client, fake, ["F1", "F2"]).headers["Location"]))
    assert "Request received" in done and "Queued, and will be sent" in done
    assert "You do not need to order again" in done and "Ready by" in done
    assert fake.requests == {}
    history = text(client.get("/prescriptions/requests"))
    assert "Waiting to be sent to your GP practice" in history and "may not be up to date" in history
    assert client.get("/prescriptions").status_code == 503  # nothing to read from: says so plainly

    with app.app_context():
        message = one_message(db.session)
        assert (message.status, message.attempts, message.last_error) == ("pending", 1, "ClinicalSystemUnavailable")
        assert outbox.deliver_due(uow, "w1", limit=1).outcomes == [outbox.Outcome.RETRY]  # still down
        assert one_message(db.session).attempts == 2

        fake.down = False
        report = outbox.deliver_due(uow, "w1")
        assert report.outcomes == [outbox.Outcome.DELIVERED]
        assert outbox.deliver_due(uow, "w1").outcomes == []  # nothing left: never twice
        assert len(fake.requests) == 1 and fake.calls.count("request_repeats") == 3
        message = one_message(db.session)
        assert message.status == "delivered" and message.result == {"request_id": "FR1", "status": "requested"}
        order = db.session.scalar(select(PrescriptionOrder))
        assert (order.status, order.external_id) == ("requested", "FR1")
        subjects = list(db.session.scalars(select(Notification.subject).where(Notification.to == PATIENT)))
        assert subjects == ["Your repeat prescription request", "Your repeat prescription request has been sent"]

    history = text(client.get("/prescriptions/requests"))
    assert "Waiting to be sent" not in history and "may not be up to date" not in history
    assert "Cancel this request" in history


def test_the_outbox_gives_up_after_the_maximum_attempts_and_says_so(
    client: Any, sign_in: Any, app: Any, fake: FakeClinicalSystem, uow: Any
) -> None:
    from patient_online.extensions import db

    sign_in(PATIENT)
    order_while_link_breaks(client, fake, ["F1"])
    with app.app_context():
        report = outbox.deliver_due(uow, "w1")
        assert report.outcomes == [outbox.Outcome.RETRY, outbox.Outcome.RETRY, outbox.Outcome.FAILED]
        message = one_message(db.session)
        assert message.status == "failed" and message.attempts == 4 and "gave up" in message.last_error
        assert db.session.scalar(select(PrescriptionOrder.status)) == "failed"
        last = db.session.scalars(select(Notification).order_by(Notification.id.desc())).first()
        assert last is not None and last.subject == "We could not send your repeat prescription request"
    history = text(client.get("/prescriptions/requests"))
    assert "Not sent" in history and "We could not send this request" in history
    fake.down = False
    assert "Can be ordered online" in text(client.get("/prescriptions"))  # a failed request blocks nothing


def test_a_permanent_refusal_is_not_retried(app_ctx: Any, session: Any, uow: Any, fake: FakeClinicalSystem) -> None:
    from patient_online.domain.errors import PatientNotFound
    from patient_online.services.access import acting_for

    user = session.scalar(select(User).where(User.email == PATIENT))
    acting = acting_for(session, user, None)
    assert acting is not None
    fake.fail_next["request_repeats"] = PatientNotFound()
    result = rx.order_repeats(uow, acting, ["F1"], "", "q" * 32)
    assert result.status is RequestStatus.FAILED
    assert one_message(session).status == "failed" and one_message(session).attempts == 1


class Killed(BaseException):
    """Stands for the worker process dying between the clinical system's answer and marking delivered."""


def test_a_worker_that_dies_after_the_call_is_redelivered_with_the_same_key(
    app_ctx: Any, session: Any, uow: Any, fake: FakeClinicalSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    from patient_online.services.access import acting_for

    user = session.scalar(select(User).where(User.email == PATIENT))
    acting = acting_for(session, user, None)
    assert acting is not None
    fake.down = True
    rx.order_repeats(uow, acting, ["F1"], "", "w" * 32, offered={"F1": "Amlodipine 5mg tablets"})
    fake.down = False

    def die(_uow: Any) -> None:
        raise Killed()

    monkeypatch.setattr(outbox, "_pause_after_call", die)
    with pytest.raises(Killed):
        outbox.deliver_due(uow, "w1")
    session.rollback()
    assert len(fake.requests) == 1
    message = one_message(session)
    assert (message.status, message.locked_by, message.attempts) == ("pending", "w1", 2)

    monkeypatch.undo()
    assert outbox.deliver_due(uow, "w2").outcomes == []  # w1's lease is still live: nobody else takes it
    assert outbox.deliver_due(uow, "w1").outcomes == [outbox.Outcome.DELIVERED]  # w1 restarted takes it back
    assert len(fake.requests) == 1  # the clinical system answered the same key with the same request
    assert session.scalar(select(PrescriptionOrder.external_id)) == "FR1"


# Real workers: `flask outbox run` as separate processes on a database of their own -----------------------
SEED = """
import patient_online.adapters.demo.models
from patient_online import create_app
from patient_online.adapters.demo.seed import seed
from patient_online.extensions import db
from patient_online.models import Base

app = create_app()
with app.app_context():
    Base.metadata.create_all(db.engine)
    seed(db.session)
"""


def _env(url: str, pause: float = 0.0) -> dict[str, str]:
    return {
        **os.environ,
        "PATIENT_ONLINE_DATABASE_URL": url,
        "PATIENT_ONLINE_SECRET_KEY": "outbox-test-only",
        "PATIENT_ONLINE_ENV": "development",
        "PATIENT_ONLINE_OUTBOX_PAUSE_AFTER_CALL": str(pause),
    }


@pytest.fixture(scope="module")
def worker_db(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Engine]]:
    """A seeded database of its own (not the rolled-back test connection), shared by this module's workers."""
    url = new_database_url(backend, tmp_path_factory.mktemp("outbox"))
    subprocess.run([sys.executable, "-c", SEED], cwd=PROJECT_ROOT, env=_env(url), check=True, timeout=120)
    engine = make_engine(url, PROJECT_ROOT)
    yield url, engine
    engine.dispose()
    drop_database(url)


class Worker:
    """A `flask --app app outbox run` process, its output collected as it comes."""

    def __init__(self, url: str, log: Path, *args: str, pause: float = 0.0) -> None:
        self.lines: list[str] = []
        self.log_path = log
        self._log = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "app", "outbox", "run", *args],
            cwd=PROJECT_ROOT,
            env=_env(url, pause),
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.strip())

    def wait_for(self, words: str, timeout: float = 20) -> None:
        wait_until(lambda: any(words in line for line in self.lines), timeout, f"worker never said {words!r}")

    def delivered(self) -> int:
        return sum(int(m.group(1)) for line in self.lines if (m := re.search(r"delivered (\d+)", line)))

    def finish(self, timeout: float = 20) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log.close()
        return code


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Any]:
    """``spawn(url, name, *args, pause=...)`` starts a worker; any still running at the end are killed."""
    started: list[Worker] = []

    def _spawn(url: str, name: str, *args: str, pause: float = 0.0) -> Worker:
        worker = Worker(url, tmp_path / f"{name}.log", "--worker-id", name, *args, pause=pause)
        started.append(worker)
        return worker

    yield _spawn
    for worker in started:
        if worker.process.poll() is None:
            worker.process.kill()
            worker.finish()


def wait_until(condition: Any, timeout: float, failure: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(failure)


def enqueue_orders(engine: Engine, keys: list[str]) -> None:
    """Queued orders for the demo patient, exactly as order_repeats leaves them when the link is down."""
    with Session(engine) as s:
        s.connection(execution_options=WRITE_TRANSACTION)  # SQLite: take the write lock before reading
        patient = s.scalars(select(Patient).where(Patient.clinical_id == "Y02001-P001")).one()
        user = s.scalars(select(User).where(User.email == PATIENT)).one()
        for key in keys:
            order = PrescriptionOrder(
                patient_id=patient.id,
                ordered_by_id=user.id,
                idempotency_key=key,
                item_ids=["Y02001-P001-M01"],
                item_names=["Amlodipine 5mg tablets"],
                pharmacy_ods="FA101",
                status="queued",
                ready_by=dt.date.today(),
            )
            s.add(order)
            s.flush()
            payload = {"order_id": order.id, "patient_id": patient.id}
            s.add(outbox.new_message(patient.practice_id, rx.KIND, payload, key, dt.datetime.now(dt.UTC)))
        s.commit()


def held_by_clinical_system(engine: Engine, keys: list[str]) -> int:
    with Session(engine) as s:
        return int(s.scalar(select(func.count()).where(DemoRepeatRequest.idempotency_key.in_(keys))) or 0)


def messages(engine: Engine, keys: list[str]) -> list[OutboxMessage]:
    with Session(engine) as s:
        return list(s.scalars(select(OutboxMessage).where(OutboxMessage.idempotency_key.in_(keys))))


@pytest.mark.slow
def test_killing_the_worker_mid_delivery_and_restarting_it_delivers_exactly_once(
    worker_db: tuple[str, Engine], spawn: Any, tmp_path: Path
) -> None:
    url, engine = worker_db
    keys = [f"kill-{os.urandom(8).hex()}"]
    enqueue_orders(engine, keys)
    # The first worker gets the clinical system to take the request, then dawdles before marking it delivered.
    first = spawn(url, "w1", "--interval", "0.2", "--lease", "2", pause=60)
    wait_until(lambda: held_by_clinical_system(engine, keys) == 1, 20, "the first worker never called the system")
    first.process.send_signal(signal.SIGKILL)
    assert first.finish() == -signal.SIGKILL
    [message] = messages(engine, keys)
    assert (message.status, message.locked_by, message.attempts) == ("pending", "w1", 1)

    # A new worker takes the message once the dead worker's lease has run out, and sends it again.
    wait_until(lambda: message.locked_until is not None and dt.datetime.now(dt.UTC) > message.locked_until, 5, "lease")
    second = spawn(url, "w2", "--once")
    assert second.finish() == 0, (tmp_path / "w2.log").read_text()
    assert second.delivered() == 1
    assert held_by_clinical_system(engine, keys) == 1  # exactly one request in the clinical system
    [message] = messages(engine, keys)
    assert (message.status, message.attempts, message.locked_by) == ("delivered", 2, "")
    with Session(engine) as s:
        order = s.scalars(select(PrescriptionOrder).where(PrescriptionOrder.idempotency_key == keys[0])).one()
        held = s.scalars(select(DemoRepeatRequest).where(DemoRepeatRequest.idempotency_key == keys[0])).one()
        assert (order.status, order.external_id) == ("requested", held.id)


@pytest.mark.slow
def test_two_workers_side_by_side_deliver_every_message_once_and_stop_on_sigterm(
    worker_db: tuple[str, Engine], spawn: Any
) -> None:
    url, engine = worker_db
    workers = [spawn(url, name, "--interval", "0.1", pause=0.3) for name in ("a", "b")]
    for worker in workers:
        worker.wait_for("started")
    keys = [f"pair-{n}-{os.urandom(6).hex()}" for n in range(10)]
    enqueue_orders(engine, keys)
    wait_until(lambda: all(m.status == "delivered" for m in messages(engine, keys)), 30, "not all delivered")
    for worker in workers:
        worker.process.send_signal(signal.SIGTERM)
    for worker in workers:
        assert worker.finish() == 0, (worker.lines, worker.log_path.read_text()[-3000:])
        assert "stopped" in worker.lines[-1], worker.lines
    assert held_by_clinical_system(engine, keys) == len(keys)
    assert all(m.attempts == 1 for m in messages(engine, keys)), "a message was claimed twice"
    assert sum(w.delivered() for w in workers) == len(keys)
    assert all(w.delivered() > 0 for w in workers), [w.lines for w in workers]


# Cancelling a queued order races the worker that would send it (issue 21) ----------------------------------
class Race:
    """An app on the module's own database (real connections, not the rolled-back one), a fake clinical
    system for Riverside, and a unit of work per thread, as the web request and the worker each have."""

    def __init__(self, engine: Engine, fake: FakeClinicalSystem) -> None:
        from patient_online import create_app
        from tests.conftest import TEST_SETTINGS

        self.engine, self.fake = engine, fake
        self.app = create_app({**TEST_SETTINGS, "DATABASE_ENGINE": engine, "OUTBOX_BACKOFF_BASE": 0.0})
        wiring.override_clinical(self.app, "Y02001", fake)
        with Session(engine) as s:
            nhs = s.scalars(select(Patient.nhs_number).where(Patient.clinical_id == "Y02001-P001")).one()
        fake.templates[nhs] = [
            RepeatItem("Y02001-P001-M01", "Amlodipine 5mg tablets", "One a day", "28", PrescriptionType.REPEAT)
        ]

    def uow(self, session: Session) -> Any:
        return wiring.uow_factory(self.app)(session)

    def cancel(self, order_id: int) -> str:
        """Cancel as the patient, on a connection of its own: "cancelled", or the refusal's words."""
        from patient_online.domain.errors import DomainError
        from patient_online.services.access import acting_for

        with self.app.app_context(), Session(self.engine) as s:
            user = s.scalars(select(User).where(User.email == PATIENT)).one()
            acting = acting_for(s, user, None)
            assert acting is not None
            s.rollback()
            try:
                rx.cancel_request(self.uow(s), acting, f"order-{order_id}")
            except DomainError as exc:
                return exc.message
            return "cancelled"

    def deliver(self, worker: str) -> list[outbox.Outcome]:
        with self.app.app_context(), Session(self.engine) as s:
            return self.deliver_in(s, worker)

    def deliver_in(self, s: Session, worker: str) -> list[outbox.Outcome]:
        return outbox.deliver_due(self.uow(s), worker).outcomes

    def state(self, key: str) -> tuple[str, str, int]:
        """The order's status, its message's status, and how many requests the clinical system holds for it."""
        with Session(self.engine) as s:
            order = s.scalars(select(PrescriptionOrder).where(PrescriptionOrder.idempotency_key == key)).one()
            message = s.scalars(select(OutboxMessage).where(OutboxMessage.idempotency_key == key)).one()
            held = [r for _, r, k in self.fake.requests.values() if k == key]
            return order.status, message.status, len(held)


def queued_order_id(engine: Engine, key: str) -> int:
    enqueue_orders(engine, [key])
    with Session(engine) as s:
        return int(s.scalars(select(PrescriptionOrder.id).where(PrescriptionOrder.idempotency_key == key)).one())


@pytest.fixture
def race(worker_db: tuple[str, Engine]) -> Race:
    return Race(worker_db[1], FakeClinicalSystem())


def test_a_queued_order_cancelled_while_a_worker_is_sending_it_is_sent_and_the_cancel_refused(race: Race) -> None:
    """The worker holds the message and is inside the clinical call: the cancel must not pretend to win."""
    key = f"race-send-{os.urandom(6).hex()}"
    order_id = queued_order_id(race.engine, key)
    inside, release = threading.Event(), threading.Event()
    real = race.fake.request_repeats

    def slow_request(*args: Any, **kwargs: Any) -> Any:
        inside.set()
        assert release.wait(10)
        return real(*args, **kwargs)

    race.fake.request_repeats = slow_request  # type: ignore[method-assign]
    outcomes: list[list[outbox.Outcome]] = []
    worker = threading.Thread(target=lambda: outcomes.append(race.deliver("w-race")))
    worker.start()
    assert inside.wait(10)
    assert race.cancel(order_id) == rx.BEING_SENT
    release.set()
    worker.join(10)
    assert outcomes == [[outbox.Outcome.DELIVERED]]
    assert race.state(key) == ("requested", "delivered", 1)
    assert race.cancel(order_id) == "cancelled"  # now the practice holds it: cancelled there
    assert race.state(key)[0] == "cancelled"
    assert next(r for _, r, k in race.fake.requests.values() if k == key).status is RequestStatus.CANCELLED


def test_a_worker_that_comes_while_the_cancel_commits_never_sends_the_order(
    race: Race, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cancel has withdrawn the message but not yet committed when a worker looks for work: the worker
    waits for it (SQLite's write lock) or skips the locked row (PostgreSQL), and never sends it."""
    key = f"race-cancel-{os.urandom(6).hex()}"
    order_id = queued_order_id(race.engine, key)
    withdrawn, go = threading.Event(), threading.Event()
    real = outbox.withdraw

    def withdraw_then_wait(uow: Any, message_id: int) -> bool:
        done = real(uow, message_id)
        withdrawn.set()
        go.wait(1.0)  # the worker runs meanwhile; on SQLite it waits for this transaction
        return done

    monkeypatch.setattr(outbox, "withdraw", withdraw_then_wait)
    answers: list[str] = []
    canceller = threading.Thread(target=lambda: answers.append(race.cancel(order_id)))
    canceller.start()
    assert withdrawn.wait(10)
    outcomes: list[list[outbox.Outcome]] = []
    worker = threading.Thread(target=lambda: outcomes.append(race.deliver("w-race")))
    worker.start()
    time.sleep(0.3)
    go.set()
    canceller.join(15)
    worker.join(15)
    assert answers == ["cancelled"]
    assert outcomes == [[]]
    assert race.deliver("w-later") == []
    assert race.state(key) == ("cancelled", "withdrawn", 0)
    assert "request_repeats" not in race.fake.calls


@pytest.mark.slow
def test_cancel_and_worker_started_together_never_both_win(race: Race) -> None:
    """Many rounds of a cancel and a worker released at the same moment: either the order is withdrawn and the
    clinical system never hears of it, or it is sent and the cancel says so or cancels it there; never a
    cancelled order the practice still holds as requested, never a message both withdrawn and sent."""
    results: set[tuple[str, str, int]] = set()
    for n in range(12):
        key = f"race-{n}-{os.urandom(6).hex()}"
        order_id = queued_order_id(race.engine, key)
        start = threading.Barrier(2)
        answers: list[str] = []

        def cancel(start: threading.Barrier = start, answers: list[str] = answers, order_id: int = order_id) -> None:
            start.wait(5)
            answers.append(race.cancel(order_id))

        def work(start: threading.Barrier = start, worker: str = f"w-{n}") -> None:
            start.wait(5)
            race.deliver(worker)

        threads = [threading.Thread(target=cancel), threading.Thread(target=work)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        order_status, message_status, held = race.state(key)
        held_requests = [r for _, r, k in race.fake.requests.values() if k == key]
        seen = (n, answers, order_status, message_status, [r.status for r in held_requests], race.fake.calls[-4:])
        if message_status == "withdrawn":
            assert (answers, order_status, held) == (["cancelled"], "cancelled", 0), seen
        else:
            assert message_status == "delivered" and held == 1, seen
            if answers == ["cancelled"]:
                assert order_status == "cancelled" and held_requests[0].status is RequestStatus.CANCELLED, seen
            else:
                assert answers == [rx.BEING_SENT] and order_status == "requested", seen
        results.add((order_status, message_status, held))
    assert results  # every round ended in one of the allowed states
