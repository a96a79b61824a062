"""Several nodes for a whole area: two gunicorn nodes on different ports share one PostgreSQL database and one
Redis. A session started on one node is valid on the other, sign-in rate limits are counted across both,
simultaneous bookings over both nodes book each slot exactly once, and two outbox workers deliver every
queued message exactly once.

Needs PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379, database 14, flushed here); fails, never
skips, when either is missing.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass

import httpx
import pytest
import redis
from flask import Flask
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.orm import Session

from patient_online.adapters.demo.models import DemoAppointment, DemoPatient, DemoRepeatRequest, DemoSlot
from patient_online.adapters.demo.seed import _gateway_patient, _link, _user
from patient_online.domain.prescriptions import RequestStatus
from patient_online.models import AuditEvent, OutboxMessage, Patient, Practice, PrescriptionOrder, User
from patient_online.services import outbox
from patient_online.services.prescriptions import KIND
from tests.conftest import PROJECT_ROOT, create_postgres_database, drop_postgres_database

from .servers import CSRF_RE, free_port, free_slots, gateway_env, gunicorn, prepare_database, signed_in_client

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

REDIS_URL = "redis://127.0.0.1:6379/14"
SECRET_KEY = "system-test-only-not-secret"  # the key servers.gateway_env gives every node
BOOKERS = 20
SLOTS = 20
POSTS_PER_SLOT = 10
ORDERS = 120


@dataclass
class Area:
    env: dict[str, str]
    engine: Engine
    node_a: str
    node_b: str
    bookers: list[str]


def _redis() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(
            f"Redis is needed for the scale-out tests and could not be reached at {REDIS_URL} "
            f"({type(exc).__name__}). Start it (redis-server --daemonize yes).",
            pytrace=False,
        )
    return client


def _add_bookers(engine: Engine) -> list[str]:
    """Linked patient accounts at Y02001 beyond the demo's, made directly in the database, as reception would."""
    crypto_app = Flask(__name__)  # encrypt() reads the key from the app's settings, as the nodes do
    crypto_app.config.update(SECRET_KEY=SECRET_KEY, ADAPTER_SECRET_KEY="")
    emails = []
    with crypto_app.app_context(), Session(engine) as session:
        practice = session.scalars(select(Practice).where(Practice.ods_code == "Y02001")).one()
        # The demo data gives these patients appointments already; the limit per patient is not under test here.
        practice.max_future_appointments = 1000
        reception = session.scalars(select(User).where(User.email == "reception.y02001@example.com")).one()
        rows = session.scalars(
            select(DemoPatient).where(DemoPatient.practice_ods == "Y02001").order_by(DemoPatient.id).offset(20)
        ).all()
        adults = [p for p in rows if p.date_of_birth.year <= 2000][:BOOKERS]
        assert len(adults) == BOOKERS, "the demo seed has fewer adult patients than this test needs"
        for n, row in enumerate(adults):
            email = f"booker{n:02d}.y02001@example.com"
            user = _user(session, email, "patient", row.given_name, row.family_name)
            _link(session, user, _gateway_patient(session, practice, row), reception)
            emails.append(email)
        session.commit()
    return emails


@pytest.fixture(scope="module")
def area() -> Iterator[Area]:
    store = _redis()
    store.flushdb()
    url = create_postgres_database()
    engine = create_engine(url)
    env = gateway_env(url, PATIENT_ONLINE_REDIS_URL=REDIS_URL, PATIENT_ONLINE_OUTBOX_PAUSE_AFTER_CALL="0.01")
    try:
        prepare_database(env)
        bookers = _add_bookers(engine)
        with ExitStack() as nodes:
            node_a = nodes.enter_context(gunicorn(env, workers=2, threads=4, port=free_port()))
            node_b = nodes.enter_context(gunicorn(env, workers=2, threads=4, port=free_port()))
            assert node_a != node_b
            yield Area(env, engine, node_a, node_b, bookers)
    finally:
        engine.dispose()
        drop_postgres_database(url)
        store.flushdb()


def test_a_session_started_on_one_node_is_valid_on_the_other(area: Area) -> None:
    on_a = signed_in_client(area.node_a, "patient.y02001@example.com")
    try:
        home_a = on_a.get("/home")
        with httpx.Client(base_url=area.node_b, cookies=on_a.cookies, follow_redirects=False, timeout=30) as on_b:
            home_b = on_b.get("/home")
            record_b = on_b.get("/appointments")
    finally:
        on_a.close()
    assert home_a.status_code == 200
    assert home_b.status_code == 200, f"node B did not accept node A's session ({home_b.status_code})"
    assert record_b.status_code == 200
    name = home_a.text.split("<h1", 1)[1].split("</h1>", 1)[0]
    assert name in home_b.text


def test_simultaneous_bookings_over_both_nodes_book_each_slot_exactly_once(area: Area) -> None:
    slots = free_slots(area.engine, SLOTS, days=20)
    nodes = [area.node_a, area.node_b]

    def sign_in(n: int) -> httpx.Client:
        return signed_in_client(nodes[n % 2], area.bookers[n])

    with ThreadPoolExecutor(max_workers=8) as pool:
        clients = list(pool.map(sign_in, range(BOOKERS)))
    # One POST per (patient, slot): patient n asks for slots n .. n+9, so every slot gets 10 patients' requests,
    # and each patient's requests go half to each node.
    posts: list[tuple[httpx.Client, str, dict[str, str]]] = []
    for n, client in enumerate(clients):
        token_page = client.get(f"/appointments/slots/{slots[n][0]}", params={"at": slots[n][1]})
        found = CSRF_RE.search(token_page.text)
        assert found, f"no booking form for {area.bookers[n]} ({token_page.status_code})"
        for k in range(POSTS_PER_SLOT):
            slot_id, at = slots[(n + k) % SLOTS]
            node = nodes[(n + k) % 2]
            data = {
                "csrf_token": found.group(1),
                "reason": "Review of my blood pressure",
                "idempotency_key": uuid.uuid4().hex,
                "at": at,
            }
            posts.append((client, f"{node}/appointments/slots/{slot_id}", data))
    assert len(posts) == SLOTS * POSTS_PER_SLOT == 200

    start = threading.Barrier(len(posts))

    def book(post: tuple[httpx.Client, str, dict[str, str]]) -> int:
        client, url, data = post
        with httpx.Client(cookies=client.cookies, timeout=60, follow_redirects=False) as own:
            start.wait()
            return own.post(url, data=data).status_code

    with ThreadPoolExecutor(max_workers=len(posts)) as pool:
        statuses = Counter(pool.map(book, posts))
    for client in clients:
        client.close()

    assert statuses[302] == SLOTS, f"expected one booking per slot, got {dict(statuses)}"
    assert statuses[409] == len(posts) - SLOTS, f"the others must be told the time has gone: {dict(statuses)}"
    ids = [slot_id for slot_id, _ in slots]
    with area.engine.connect() as conn:
        booked = Counter(
            conn.execute(
                select(DemoAppointment.slot_id).where(
                    DemoAppointment.slot_id.in_(ids), DemoAppointment.status == "booked"
                )
            ).scalars()
        )
        status = dict(conn.execute(select(DemoSlot.id, DemoSlot.status).where(DemoSlot.id.in_(ids))).tuples().all())
        audited = conn.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "appointment.booked")
        )
    assert booked == Counter(dict.fromkeys(ids, 1)), f"each slot must hold exactly one appointment: {booked}"
    assert set(status.values()) == {"booked"}
    assert audited == SLOTS


def _queue_orders(engine: Engine, count: int) -> list[str]:
    """Repeat orders the clinical system could not take when they were made: each waits in the outbox."""
    keys = []
    with Session(engine) as session:
        user = session.scalars(select(User).where(User.email == "patient.y02001@example.com")).one()
        patient = session.scalars(
            select(Patient).join(Practice).where(Practice.ods_code == "Y02001", Patient.clinical_id.like("%-P001"))
        ).one()
        item = f"{patient.clinical_id}-M01"
        for _ in range(count):
            key = uuid.uuid4().hex
            order = PrescriptionOrder(
                patient_id=patient.id,
                ordered_by_id=user.id,
                idempotency_key=key,
                item_ids=[item],
                item_names=["Amlodipine 5mg tablets"],
                note="",
                pharmacy_ods="FA101",
                status=RequestStatus.QUEUED.value,
            )
            session.add(order)
            session.flush()
            payload = {"order_id": order.id, "patient_id": patient.id}
            session.add(outbox.new_message(patient.practice_id, KIND, payload, key, dt.datetime.now(dt.UTC)))
            keys.append(key)
        session.commit()
    return keys


def test_two_outbox_workers_deliver_every_message_exactly_once(area: Area) -> None:
    keys = _queue_orders(area.engine, ORDERS)
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "app", "outbox", "run", "--once", "--worker-id", name],
            cwd=PROJECT_ROOT,
            env=area.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("worker-a", "worker-b")
    ]
    outputs = [w.communicate(timeout=90) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs

    with Session(area.engine) as session:
        messages = session.scalars(select(OutboxMessage).where(OutboxMessage.idempotency_key.in_(keys))).all()
        delivered_requests = session.scalar(
            select(func.count()).select_from(DemoRepeatRequest).where(DemoRepeatRequest.idempotency_key.in_(keys))
        )
        sent_events = session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "prescription.sent")
        )
        orders = session.scalars(select(PrescriptionOrder).where(PrescriptionOrder.idempotency_key.in_(keys))).all()
    assert len(messages) == ORDERS
    assert {m.status for m in messages} == {"delivered"}
    assert {m.attempts for m in messages} == {1}, "a message was claimed more than once"
    assert delivered_requests == ORDERS
    assert sent_events == ORDERS, "each message must be marked delivered exactly once"
    assert all(o.external_id for o in orders)
    took = [_delivered_count(out) for out, _err in outputs]
    assert sum(took) == ORDERS, outputs
    assert all(n > 0 for n in took), f"both workers should have shared the work: {took}"


def _delivered_count(output: str) -> int:
    total = 0
    for line in output.splitlines():
        if ": delivered " in line:
            total += int(line.split(": delivered ", 1)[1].split(",")[0])
    return total


def test_sign_in_rate_limit_is_counted_across_both_nodes(area: Area) -> None:
    """Failed sign-ins for one account from one address, alternating between the nodes, are counted together:
    the wait that grows per address and account ("3 per minute" first) starts on both nodes at once."""
    store = _redis()
    nodes = [area.node_a, area.node_b]
    email = "patient2.y02001@example.com"

    def attempt(node: str, password: str) -> int:
        with httpx.Client(base_url=node, follow_redirects=False, timeout=30) as client:
            token = CSRF_RE.search(client.get("/login").text)
            assert token
            response = client.post("/login", data={"email": email, "password": password, "csrf_token": token.group(1)})
            return response.status_code

    try:
        statuses = [attempt(nodes[n % 2], "not-the-password") for n in range(3)]
        assert statuses == [200] * 3, "each wrong password is refused with the form shown again"
        for node in nodes:
            assert attempt(node, "not-the-password") == 429, f"{node} did not count the other node's failed sign-ins"
        keys = list(store.scan_iter())
        assert any(b"account:" in key for key in keys), "the limits must be counted in Redis"
        assert not any(email.encode() in key for key in keys), "no email address in the limiter's keys"
    finally:
        store.flushdb()  # the limit also holds for this machine's address: free it for any later test
