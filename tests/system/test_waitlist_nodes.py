"""Earlier appointments across nodes: two gunicorn nodes on one PostgreSQL database and two workers running at
the same time offer one freed time to a queue of 20 patients. One offer at a time, each in queue order as the
holds run out, nobody offered it twice, and one booking in the clinical system when the holder accepts.

Needs PostgreSQL (127.0.0.1:5432); fails, never skips, when it is missing.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from itertools import pairwise

import httpx
import pytest
from sqlalchemy import Engine, create_engine, func, select, update
from sqlalchemy.orm import Session

from patient_online.adapters.demo.models import DemoAppointment, DemoSlot
from patient_online.models import AuditEvent, Notification, Patient, Practice, SlotOffer, User, WaitlistEntry
from tests.conftest import PROJECT_ROOT, create_postgres_database, drop_postgres_database

from .servers import (
    CSRF_RE,
    add_linked_patients,
    free_slots,
    gateway_env,
    gunicorn_nodes,
    prepare_database,
    signed_in_client,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

QUEUE = 20
EXPIRIES = 3  # holds left to run out before the patient holding the time accepts it
CANCELLER = "patient2.y02001@example.com"
SERVICE_URL = "https://patient-online.example.nhs.uk"


@dataclass
class Area:
    env: dict[str, str]
    engine: Engine
    node_a: str
    node_b: str
    practice_id: int
    queue: list[tuple[str, int]] = field(default_factory=list)  # (email, patient id), the first to ask first


@pytest.fixture(scope="module")
def area() -> Iterator[Area]:
    url = create_postgres_database()
    engine = create_engine(url)
    env = gateway_env(url, PATIENT_ONLINE_SERVICE_URL=SERVICE_URL, PATIENT_ONLINE_OUTBOX_PAUSE_AFTER_CALL="0.01")
    try:
        prepare_database(env)
        waiting = add_linked_patients(url, QUEUE, "waiting")  # email -> the patient's id in the clinical system
        with Session(engine) as session:
            practice = session.scalars(select(Practice).where(Practice.ods_code == "Y02001")).one()
            practice.waitlist_enabled, practice.waitlist_hold_minutes = True, 15
            by_clinical_id = dict(
                session.execute(
                    select(Patient.clinical_id, Patient.id).where(
                        Patient.practice_id == practice.id, Patient.clinical_id.in_(list(waiting.values()))
                    )
                )
                .tuples()
                .all()
            )
            practice_id = practice.id
            session.commit()
        queue = [(email, by_clinical_id[clinical_id]) for email, clinical_id in waiting.items()]
        with gunicorn_nodes(env, 2, workers=2, threads=4) as (node_a, node_b):
            yield Area(env, engine, node_a, node_b, practice_id, queue)
    finally:
        engine.dispose()
        drop_postgres_database(url)


# Helpers ---------------------------------------------------------------------------------------------------
def post_form(client: httpx.Client, page: str, url: str, data: dict[str, str]) -> httpx.Response:
    shown = client.get(page)
    assert shown.status_code == 200, f"{page}: {shown.status_code}"
    token = CSRF_RE.search(shown.text)
    assert token, f"no form on {page}"
    return client.post(url, data={**data, "csrf_token": token.group(1)})


def book_and_fill_the_book(area: Area) -> tuple[str, str]:
    """The canceller books a time through node A; then the practice's book fills up, so that the time they
    will free is the only free one. Returns (slot id, appointment id)."""
    [(slot_id, at)] = free_slots(area.engine, 1, days=10)
    with closing(signed_in_client(area.node_a, CANCELLER)) as client:
        booked = post_form(
            client,
            f"/appointments/slots/{slot_id}?at={at}",
            f"/appointments/slots/{slot_id}",
            {"reason": "Review of my blood pressure", "idempotency_key": uuid.uuid4().hex, "at": at},
        )
        assert booked.status_code == 302, f"booking through node A failed ({booked.status_code})"
    with Session(area.engine) as session:
        appointment_id = session.scalars(
            select(DemoAppointment.id).where(DemoAppointment.slot_id == slot_id, DemoAppointment.status == "booked")
        ).one()
        session.execute(
            update(DemoSlot).where(DemoSlot.practice_ods == "Y02001", DemoSlot.status == "free").values(status="booked")
        )
        session.commit()
    return slot_id, appointment_id


def join_the_queue(area: Area) -> None:
    """Twenty patients ask for an earlier appointment, any type, day or time, a minute apart (made directly in
    the database: the pages that do it are tested elsewhere)."""
    now = dt.datetime.now(dt.UTC)
    with Session(area.engine) as session:
        users = dict(
            session.execute(select(User.email, User.id).where(User.email.in_([e for e, _ in area.queue])))
            .tuples()
            .all()
        )
        for n, (email, patient_id) in enumerate(area.queue):
            session.add(
                WaitlistEntry(
                    practice_id=area.practice_id,
                    patient_id=patient_id,
                    user_id=users[email],
                    actor_role="patient",
                    slot_type="",
                    weekdays=list(range(7)),
                    parts=["morning", "afternoon", "evening"],
                    until=(now + dt.timedelta(days=27)).date(),
                    status="waiting",
                    active_key=f"{area.practice_id}:{patient_id}",
                    created_at=now - dt.timedelta(minutes=QUEUE - n),
                )
            )
        session.commit()


class LiveOfferWatch:
    """Counts, over and over while the workers run, the offers of the slot that are live (held, or being
    accepted): the most ever seen at once must be one."""

    def __init__(self, engine: Engine, slot_id: str) -> None:
        self.engine, self.slot_id = engine, slot_id
        self.most = 0
        self.looks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        with self.engine.connect() as conn:
            while not self._stop.is_set():
                live = conn.scalar(
                    select(func.count())
                    .select_from(SlotOffer)
                    .where(SlotOffer.slot_id == self.slot_id, SlotOffer.status.in_(("held", "accepting")))
                )
                conn.rollback()
                self.most = max(self.most, int(live or 0))
                self.looks += 1
                self._stop.wait(0.02)

    def __enter__(self) -> LiveOfferWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def both_workers(area: Area, round_no: int) -> list[str]:
    """Two workers at once, as on two nodes: `flask outbox run --once` (which also makes a round of offers)
    on even rounds, `flask waitlist run` on odd ones."""
    if round_no % 2 == 0:
        commands = [["outbox", "run", "--once", "--worker-id", f"worker-{name}-{round_no}"] for name in "ab"]
    else:
        commands = [["waitlist", "run"], ["waitlist", "run"]]
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "app", *command],
            cwd=PROJECT_ROOT,
            env=area.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in commands
    ]
    outputs = [w.communicate(timeout=120) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    return [out for out, _err in outputs]


def offers_of(area: Area, slot_id: str) -> list[SlotOffer]:
    with Session(area.engine) as session:
        return list(session.scalars(select(SlotOffer).where(SlotOffer.slot_id == slot_id).order_by(SlotOffer.id)))


def patient_of(area: Area, offer: SlotOffer) -> int:
    with Session(area.engine) as session:
        return int(session.get_one(WaitlistEntry, offer.entry_id).patient_id)


def rounds(area: Area, slot_id: str, count: int, start: int) -> None:
    """Several rounds of both workers; after each, at most one live offer of the slot."""
    with LiveOfferWatch(area.engine, slot_id) as watch:
        for n in range(count):
            both_workers(area, start + n)
    assert watch.looks > 0
    assert watch.most <= 1, f"{watch.most} offers of one time were live at once"
    assert sum(o.status in ("held", "accepting") for o in offers_of(area, slot_id)) <= 1


# The journey -----------------------------------------------------------------------------------------------
def test_one_freed_time_goes_to_the_queue_one_patient_at_a_time_and_is_booked_once(area: Area) -> None:
    slot_id, appointment_id = book_and_fill_the_book(area)
    join_the_queue(area)
    queue_order = [patient_id for _, patient_id in area.queue]

    rounds(area, slot_id, 2, 0)
    assert offers_of(area, slot_id) == [], "the time is booked: nothing to offer yet"

    with closing(signed_in_client(area.node_a, CANCELLER)) as client:  # another patient cancels through node A
        cancelled = post_form(
            client, f"/appointments/{appointment_id}/cancel", f"/appointments/{appointment_id}/cancel", {"reason": ""}
        )
        assert cancelled.status_code == 302, f"cancelling through node A failed ({cancelled.status_code})"

    rounds(area, slot_id, 2, 2)
    [first] = offers_of(area, slot_id)
    assert first.status == "held" and patient_of(area, first) == queue_order[0]

    for expiry in range(EXPIRIES):
        # Moving the hold into the past stands for the 15 minutes passing without an answer.
        with Session(area.engine) as session:
            session.execute(
                update(SlotOffer)
                .where(SlotOffer.slot_id == slot_id, SlotOffer.status == "held")
                .values(hold_until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
            )
            session.commit()
        rounds(area, slot_id, 2, 4 + 2 * expiry)
        made = offers_of(area, slot_id)
        assert [o.status for o in made] == ["expired"] * (expiry + 1) + ["held"]
        assert [patient_of(area, o) for o in made] == queue_order[: expiry + 2], "offered in queue order, once each"

    holder = offers_of(area, slot_id)[-1]
    email = next(e for e, p in area.queue if p == patient_of(area, holder))
    with closing(signed_in_client(area.node_b, email)) as client:  # the patient holding it accepts through node B
        page = client.get(f"/appointments/offers/{holder.id}")
        assert page.status_code == 200 and "An earlier appointment is free" in page.text
        accepted = post_form(
            client,
            f"/appointments/offers/{holder.id}",
            f"/appointments/offers/{holder.id}/accept",
            {"reason": "Review of my blood pressure"},
        )
        assert accepted.status_code == 302, f"accepting through node B failed ({accepted.status_code})"

    rounds(area, slot_id, 2, 20)
    made = offers_of(area, slot_id)
    assert [o.status for o in made] == ["expired"] * EXPIRIES + ["accepted"], "offered to nobody after the booking"
    assert len({o.entry_id for o in made}) == len(made), "nobody was offered the time twice"

    # One offer at a time: each offer's time, from being made to being decided, overlaps no other's.
    spans = sorted((o.offered_at, o.decided_at) for o in made)
    assert all(end is not None for _, end in spans)
    for (_, ended), (began, _) in pairwise(spans):
        assert ended is not None and ended <= began, "two offers of one time were live at once"

    with Session(area.engine) as session:
        bookings = session.scalars(
            select(DemoAppointment).where(DemoAppointment.slot_id == slot_id, DemoAppointment.status == "booked")
        ).all()
        assert len(bookings) == 1, "booked exactly once in the clinical system"
        holder_patient = session.get_one(Patient, patient_of(area, holder))
        assert bookings[0].patient_id == holder_patient.clinical_id and bookings[0].id == made[-1].appointment_ref
        entries = dict(
            session.execute(
                select(WaitlistEntry.patient_id, WaitlistEntry.status).where(
                    WaitlistEntry.practice_id == area.practice_id
                )
            )
            .tuples()
            .all()
        )
        assert entries[holder_patient.id] == "booked"
        assert sorted(s for p, s in entries.items() if p != holder_patient.id) == ["waiting"] * (QUEUE - 1)
        mails = session.scalars(select(Notification).where(Notification.template == "waitlist_offer")).all()
        assert sorted(m.reference or "" for m in mails) == sorted(f"waitlist-offer:{o.id}" for o in made)
        assert all(f"{SERVICE_URL}/appointments/offers/" in m.body for m in mails)
        audited = dict(
            session.execute(
                select(AuditEvent.action, func.count())
                .where(AuditEvent.action.like("waitlist.%"))
                .group_by(AuditEvent.action)
            )
            .tuples()
            .all()
        )
        assert audited == {
            "waitlist.offered": EXPIRIES + 1,
            "waitlist.offer_expired": EXPIRIES,
            "waitlist.offer_accepted": 1,
        }
