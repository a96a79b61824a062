"""The database restarts under load: two gunicorn nodes on a PostgreSQL server of the test's own, patients
booking appointments and ordering repeat prescriptions from several threads across both nodes, and the
server stopped and started again in the middle.

What must hold: every request that fails gets the service's own styled page (never gunicorn's bare one);
patients who try again get what they asked for; every booking the clinical system took and every order is
recorded exactly once, with one audit event and one confirmation email each (after the look at the
appointments list that records a booking the gateway could not, and one run of the outbox worker); and the
nodes serve normally afterwards with the same worker processes.

Needs PostgreSQL's server programs (initdb, pg_ctl); fails, never skips, when they are missing.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy import Engine, create_engine, select, update
from sqlalchemy.orm import Session

from patient_online.adapters.demo.models import DemoAppointment, DemoRepeatRequest
from patient_online.models import AuditEvent, Notification, OutboxMessage, PrescriptionOrder

from .servers import (
    CSRF_RE,
    PrivatePostgres,
    add_linked_patients,
    flask,
    free_slots,
    gateway_env,
    gunicorn_nodes,
    prepare_database,
    private_postgres,
    serving_pids,
    signed_in_client,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

PATIENTS = 12
BOOKINGS_EACH = 6
ORDERS_EACH = 2  # at most: a patient can order only the repeat items they have
TRIES = 40  # a patient who sees the problem page tries again, this many times at most
PAUSE = 0.25  # seconds between tries
ITEM_RE = re.compile(r'name="items" type="checkbox" value="([^"]+)"')
# A connection idle for a second is not used again: gunicorn closes one idle for two, and a request sent on it
# as it closes gets no answer (a browser sends it again; these clients would count it as a failure).
LIMITS = httpx.Limits(keepalive_expiry=1.0)
KEY_RE = re.compile(r'name="idempotency_key"[^>]*value="([^"]+)"')


@dataclass
class Cluster:
    database: PrivatePostgres
    env: dict[str, str]
    engine: Engine
    nodes: list[str]
    patients: dict[str, str]  # email -> clinical id


@dataclass
class Seen:
    """Every answer the nodes gave during the load, and what each patient finally got."""

    statuses: Counter[int] = field(default_factory=Counter)
    bare: list[str] = field(default_factory=list)  # error answers that were not the service's own page
    transport: list[str] = field(default_factory=list)  # no answer at all (a worker died, a reset)
    problems: int = 0  # styled "problem with the service" pages (500/503 with a reference)
    booked: dict[str, str] = field(default_factory=dict)  # idempotency key -> email, for every booking sent
    booking_results: dict[str, int] = field(default_factory=dict)
    ordered: dict[str, str] = field(default_factory=dict)  # idempotency key -> email
    order_results: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, response: httpx.Response) -> None:
        with self.lock:
            self.statuses[response.status_code] += 1
            if response.status_code < 500:
                return
            body = response.text
            if 'class="nhsuk-header' not in body:
                self.bare.append(f"{response.status_code} {response.request.url.path}: {body[:200]!r}")
            elif "Reference: " in body:
                self.problems += 1


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with private_postgres() as database:
        env = gateway_env(database.url)
        prepare_database(env)
        patients = add_linked_patients(database.url, PATIENTS, "restart")
        engine = create_engine(database.url, pool_pre_ping=True)  # its connections outlive the restart
        try:
            with gunicorn_nodes(env, 2, workers=2, threads=4) as nodes:
                yield Cluster(database, env, engine, nodes, patients)
        finally:
            engine.dispose()


def _send(client: httpx.Client, url: str, data: dict[str, str], seen: Seen) -> int:
    """POST the same form until it is not a server error, as a patient told to try again would."""
    status = 0
    for _ in range(TRIES):
        try:
            response = client.post(url, data=data)
        except httpx.TransportError as exc:
            with seen.lock:
                seen.transport.append(f"POST {url}: {type(exc).__name__}")
            time.sleep(PAUSE)
            continue
        seen.note(response)
        status = response.status_code
        if status < 500:
            return status
        time.sleep(PAUSE)
    return status


def _order_form(client: httpx.Client, node: str, seen: Seen) -> tuple[list[str], str, str] | None:
    """The repeat order form's items, its idempotency key and CSRF token (None: nothing left to order)."""
    for _ in range(TRIES):
        try:
            page = client.get(f"{node}/prescriptions/order")
        except httpx.TransportError as exc:
            with seen.lock:
                seen.transport.append(f"GET order form: {type(exc).__name__}")
            time.sleep(PAUSE)
            continue
        seen.note(page)
        if page.status_code < 500:
            items, key, token = ITEM_RE.findall(page.text), KEY_RE.search(page.text), CSRF_RE.search(page.text)
            if not items or key is None or token is None:
                return None
            return items, key.group(1), token.group(1)
        time.sleep(PAUSE)
    return None


def _patient_load(
    email: str, client: httpx.Client, nodes: list[str], slots: list[tuple[str, str]], token: str, seen: Seen
) -> None:
    """Book each of the patient's slots, and order repeats now and then, alternating between the nodes."""
    orders = 0
    for step, (slot_id, at) in enumerate(slots):
        node = nodes[step % 2]
        key = uuid.uuid4().hex
        with seen.lock:
            seen.booked[key] = email
        data = {"csrf_token": token, "reason": "Review of my blood pressure", "idempotency_key": key, "at": at}
        result = _send(client, f"{node}/appointments/slots/{slot_id}", data, seen)
        with seen.lock:
            seen.booking_results[key] = result
        if step % 3 == 1 and orders < ORDERS_EACH:
            form = _order_form(client, nodes[(step + 1) % 2], seen)
            if form is not None:
                items, order_key, order_token = form
                orders += 1
                with seen.lock:
                    seen.ordered[order_key] = email
                order = {"csrf_token": order_token, "items": items[0], "note": "", "idempotency_key": order_key}
                result = _send(client, f"{nodes[step % 2]}/prescriptions/order", order, seen)
                with seen.lock:
                    seen.order_results[order_key] = result


def test_a_database_restart_under_load_loses_nothing_and_shows_no_bare_error_page(cluster: Cluster) -> None:
    started = time.monotonic()
    emails = list(cluster.patients)
    nodes = cluster.nodes
    slots = free_slots(cluster.engine, PATIENTS * BOOKINGS_EACH, days=30)
    ports = [int(node.rsplit(":", 1)[1]) for node in nodes]
    workers_before = [serving_pids(port) for port in ports]
    assert all(len(pids) == 3 for pids in workers_before), workers_before  # a master and two workers each

    with ThreadPoolExecutor(max_workers=PATIENTS) as pool:
        clients = list(pool.map(lambda n: signed_in_client(nodes[n % 2], emails[n], limits=LIMITS), range(PATIENTS)))
    tokens = []
    for n, client in enumerate(clients):
        first = slots[n * BOOKINGS_EACH]
        page = client.get(f"/appointments/slots/{first[0]}", params={"at": first[1]})
        found = CSRF_RE.search(page.text)
        assert found, f"no booking form for {emails[n]} ({page.status_code})"
        tokens.append(found.group(1))

    seen = Seen()
    try:
        with ThreadPoolExecutor(max_workers=PATIENTS) as pool:
            running = [
                pool.submit(
                    _patient_load,
                    emails[n],
                    clients[n],
                    nodes,
                    slots[n * BOOKINGS_EACH : (n + 1) * BOOKINGS_EACH],
                    tokens[n],
                    seen,
                )
                for n in range(PATIENTS)
            ]
            # Restart in the middle of the load: stop (every session ended, as a restart or fail-over does),
            # a second without a database, start again.
            while sum(seen.statuses.values()) < PATIENTS * BOOKINGS_EACH // 3:
                time.sleep(0.05)
            cluster.database.stop("fast")
            time.sleep(1.0)
            cluster.database.start()
            for done in running:
                done.result(timeout=90)

        # A booking the clinical system took but the gateway could not record is recorded on the next look at
        # the appointments list; an order the clinical system could not take is delivered by the outbox worker.
        for n, client in enumerate(clients):
            for node in nodes:
                page = client.get(f"{node}/appointments")
                seen.note(page)
                assert page.status_code == 200, f"{emails[n]} on {node} after the restart: {page.status_code}"
                home = client.get(f"{node}/home")
                assert home.status_code == 200, f"{emails[n]} on {node} after the restart: {home.status_code}"
        _let_time_pass_for_the_outbox(cluster.engine)
        flask(cluster.env, "outbox", "run", "--once", "--worker-id", "after-restart")
    finally:
        for client in clients:
            client.close()

    # The same workers serve after the restart: the broken connections were dropped, not the processes.
    assert [serving_pids(port) for port in ports] == workers_before, "a worker died or was restarted"
    # No bare error page, no dropped connection; the restart was felt (or this test tested nothing).
    assert seen.bare == [], f"gunicorn's bare error page was served: {seen.bare[:5]}"
    assert seen.transport == [], f"requests got no answer at all: {seen.transport[:5]}"
    assert seen.problems > 0, f"no request saw the database gone: {dict(seen.statuses)}"
    # The patients who tried again got what they asked for.
    assert Counter(seen.booking_results.values()) == {302: len(seen.booked)}, dict(seen.statuses)
    assert seen.ordered, "no patient had anything to order"
    assert Counter(seen.order_results.values()) == {302: len(seen.ordered)}, dict(seen.statuses)
    _assert_bookings_recorded_once(cluster, seen)
    _assert_orders_recorded_once(cluster, seen)
    assert time.monotonic() - started < 100


def _let_time_pass_for_the_outbox(engine: Engine) -> None:
    """Make every pending message due, and every lease lapsed, as they will be once the backoff and the lease
    (a minute) have passed: what the worker then does is under test, not how long it waits."""
    with Session(engine) as session, session.begin():
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status == "pending")
            .values(next_attempt_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1), locked_until=None)
        )


def _assert_bookings_recorded_once(cluster: Cluster, seen: Seen) -> None:
    keys = list(seen.booked)
    with Session(cluster.engine) as session:
        made = session.execute(
            select(DemoAppointment.id, DemoAppointment.idempotency_key, DemoAppointment.patient_id).where(
                DemoAppointment.idempotency_key.in_(keys), DemoAppointment.status == "booked"
            )
        ).all()
        audited = Counter(
            str(detail.get("appointment_id"))
            for detail in session.scalars(select(AuditEvent.detail).where(AuditEvent.action == "appointment.booked"))
        )
        emails = Counter(
            session.scalars(
                select(Notification.to).where(
                    Notification.template == "appointment_booked", Notification.to.in_(list(cluster.patients))
                )
            )
        )
    assert len(made) == len(keys), f"{len(keys)} bookings asked for, {len(made)} made in the clinical system"
    per_patient = Counter(seen.booked[key] for _, key, _ in made)
    not_once = {appointment: audited[appointment] for appointment, _, _ in made if audited[appointment] != 1}
    assert not_once == {}, f"appointments without exactly one appointment.booked audit event: {not_once}"
    assert emails == per_patient, f"confirmation emails {dict(emails)} for bookings {dict(per_patient)}"


def _assert_orders_recorded_once(cluster: Cluster, seen: Seen) -> None:
    keys = list(seen.ordered)
    with Session(cluster.engine) as session:
        orders = session.execute(
            select(PrescriptionOrder.id, PrescriptionOrder.idempotency_key).where(
                PrescriptionOrder.idempotency_key.in_(keys)
            )
        ).all()
        taken = Counter(
            session.scalars(
                select(DemoRepeatRequest.idempotency_key).where(DemoRepeatRequest.idempotency_key.in_(keys))
            )
        )
        messages = session.execute(
            select(OutboxMessage.idempotency_key, OutboxMessage.status).where(OutboxMessage.idempotency_key.in_(keys))
        ).all()
        audited = Counter(
            (action, detail.get("order_id"))
            for action, detail in session.execute(
                select(AuditEvent.action, AuditEvent.detail).where(
                    AuditEvent.action.in_(["prescription.ordered", "prescription.sent"])
                )
            )
        )
        emails = Counter(
            session.scalars(
                select(Notification.to).where(
                    Notification.template == "prescription_ordered", Notification.to.in_(list(cluster.patients))
                )
            )
        )
    assert sorted(key for _, key in orders) == sorted(keys), "every order asked for is recorded, once"
    assert taken == Counter(keys), f"the clinical system must hold each order exactly once: {taken}"
    assert sorted(messages) == sorted((key, "delivered") for key in keys), messages
    for order_id, _ in orders:
        assert audited[("prescription.ordered", order_id)] == 1, f"order {order_id}: prescription.ordered"
        assert audited[("prescription.sent", order_id)] == 1, f"order {order_id}: prescription.sent"
    per_patient = Counter(seen.ordered.values())
    assert emails == per_patient, f"confirmation emails {dict(emails)} for orders {dict(per_patient)}"
