"""The seeded demo tells the truth: appointments within the practice's maximum, bookings never dated after the
day of seeding, results flagged from their own range, stopped medicines and a used-up repeat-dispensing batch."""

from __future__ import annotations

import datetime as dt
import html
from collections import Counter
from typing import Any

from sqlalchemy import select

from patient_online.adapters.demo.models import DemoAppointment, DemoMedication, DemoRecordEntry, DemoSlot
from patient_online.adapters.demo.seed import LONDON
from patient_online.domain.prescriptions import NotOrderable
from patient_online.domain.record import RangeFlag, range_flag
from patient_online.models import Practice, User
from patient_online.services import prescriptions as rx
from patient_online.services.access import acting_for

PATIENT2 = "patient2.y02001@example.com"


def _start_of_today() -> dt.datetime:
    today = dt.datetime.now(LONDON).date()
    return dt.datetime(today.year, today.month, today.day, tzinfo=LONDON).astimezone(dt.UTC)


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def test_no_demo_patient_holds_more_future_appointments_than_the_practice_allows(session: Any) -> None:
    for practice in session.scalars(select(Practice)):
        rows = session.execute(
            select(DemoAppointment.patient_id, DemoSlot.start)
            .join(DemoSlot, DemoSlot.id == DemoAppointment.slot_id)
            .where(DemoSlot.practice_ods == practice.ods_code, DemoAppointment.status == "booked")
        ).all()
        future = Counter(pid for pid, start in rows if _aware(start) >= _start_of_today())
        assert future, "some demo patients hold future appointments, so the appointments pages show them"
        assert max(future.values()) <= practice.max_future_appointments == 2, future.most_common(3)


def test_no_seeded_booking_is_dated_after_the_day_it_was_seeded(session: Any) -> None:
    latest = max(_aware(a.booked_at) for a in session.scalars(select(DemoAppointment)))
    assert latest < _start_of_today()
    for appointment, slot in session.execute(select(DemoAppointment, DemoSlot).join(DemoSlot)).all():
        assert _aware(appointment.booked_at) < _aware(slot.start)


def test_results_are_flagged_from_their_reference_range(session: Any) -> None:
    results = list(session.scalars(select(DemoRecordEntry).where(DemoRecordEntry.section == "test-results")))
    filed = [r for r in results if r.filed]
    for r in filed:
        assert r.outside_range == (range_flag(r.value, r.reference_range) is not None), (r.value, r.reference_range)
    sides = Counter(range_flag(r.value, r.reference_range) for r in filed)
    assert sides[RangeFlag.LOW] and sides[RangeFlag.HIGH] and sides[None]
    egfr_low = [r for r in filed if r.term == "eGFR" and float(r.value) <= 60]
    assert egfr_low and all(r.outside_range for r in egfr_low)


def test_stopped_medicines_are_on_the_record_and_never_offered_to_order(app_ctx: Any, session: Any, uow: Any) -> None:
    stopped = list(session.scalars(select(DemoMedication).where(DemoMedication.stopped_on.is_not(None))))
    assert stopped and all(m.stopped_on < dt.date.today() for m in stopped)
    assert session.scalar(
        select(DemoRecordEntry.id).where(DemoRecordEntry.section == "medications", DemoRecordEntry.status == "stopped")
    )
    user = session.scalar(select(User).where(User.email == PATIENT2))
    acting = acting_for(session, user, None)
    assert acting is not None
    lines = rx.repeat_template(uow, acting).lines
    names = {line.item.name for line in lines}
    assert not names & {m.name for m in stopped if m.patient_id == acting.patient.clinical_id}
    used_up = [line for line in lines if line.reason is NotOrderable.ISSUES_USED]
    assert used_up and used_up[0].item.issues_used == used_up[0].item.issues_allowed == 6


def test_the_record_lists_the_stopped_medicine_under_past_medicines(client: Any, sign_in: Any) -> None:
    sign_in(PATIENT2)
    page = html.unescape(client.get("/record/medications").get_data(as_text=True))
    assert page.index("Past medicines") < page.index("Naproxen 500mg tablets")
