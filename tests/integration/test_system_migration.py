"""A practice changes clinical system and its patients keep their online services (on SQLite and PostgreSQL).

64 linked patients at Hillview Surgery; the new system (the demo's second copy) holds three of them
differently. After the cut-over 61 keep every service with their account, checks and settings and no new
letter, 3 wait on reception's list, requests queued before the freeze reach the new system once, and every
step is audited. A rollback within the window brings the old system, ids and queued requests back.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from patient_online.adapters.demo.models import DemoMedication, DemoPatient, DemoRepeatRequest
from patient_online.adapters.demo.seed import _gateway_patient, copy_practice
from patient_online.domain.access import Service
from patient_online.domain.errors import ServiceOff
from patient_online.domain.system_migration import MatchOutcome, MigrationRefused, MigrationState
from patient_online.models import (
    AccountLink,
    AuditEvent,
    LinkageLetter,
    OutboxMessage,
    Patient,
    PatientSystemId,
    Practice,
    PrescriptionOrder,
    ProxyLink,
    User,
    Verification,
)
from patient_online.services import outbox
from patient_online.services import prescriptions as rx
from patient_online.services import system_migration as migration
from patient_online.services.access import Acting, acting_for, patient_access
from tests.helpers import FormClient
from tests.helpers import sign_in as do_sign_in

ODS = "Y02002"
QUEUED_FOR = (20, 21, 22, 2)  # demo patients (by index) with a repeat request queued before the freeze; 2 is missing


def practice_of(session: Any) -> Practice:
    return session.scalar(select(Practice).where(Practice.ods_code == ODS))


def link_everyone(session: Any) -> list[Patient]:
    """Every one of the practice's 64 demo patients linked to an online account (some are already)."""
    practice = practice_of(session)
    rows = session.scalars(select(DemoPatient).where(DemoPatient.practice_ods == ODS).order_by(DemoPatient.id)).all()
    patients = []
    for index, row in enumerate(rows):
        patient = _gateway_patient(session, practice, row)
        if session.scalar(select(AccountLink.id).where(AccountLink.patient_id == patient.id)) is None:
            user = User(email=f"moving{index}@example.com", kind="patient")
            session.add(user)
            session.flush()
            session.add(AccountLink(user_id=user.id, patient_id=patient.id, method="documents"))
            session.add(Verification(patient_id=patient.id, user_id=user.id, method="documents"))
        patients.append(patient)
    session.flush()
    return patients


def queue_request(session: Any, patient: Patient, index: int) -> OutboxMessage:
    """A repeat request the old system could not take at once: an order with its outbox message pending."""
    user = session.scalar(
        select(User).join(AccountLink, AccountLink.user_id == User.id).where(AccountLink.patient_id == patient.id)
    )
    medicine = session.scalar(
        select(DemoMedication)
        .where(DemoMedication.patient_id == patient.clinical_id, DemoMedication.prescription_type == "repeat")
        .order_by(DemoMedication.id)
    )
    assert medicine is not None
    key = f"queued-before-freeze-{index:04d}"
    order = PrescriptionOrder(
        patient_id=patient.id,
        ordered_by_id=user.id,
        idempotency_key=key,
        item_ids=[medicine.id],
        item_names=[medicine.name],
        status="queued",
    )
    session.add(order)
    session.flush()
    message = outbox.new_message(
        patient.practice_id, rx.KIND, {"order_id": order.id, "patient_id": patient.id}, key, dt.datetime.now(dt.UTC)
    )
    session.add(message)
    session.flush()
    return message


def acting(session: Any, patient: Patient) -> Acting:
    user = session.scalar(
        select(User).join(AccountLink, AccountLink.user_id == User.id).where(AccountLink.patient_id == patient.id)
    )
    found = acting_for(session, user, None)
    assert found is not None
    return found


@pytest.fixture
def moving(app_ctx: Any, session: Any, uow: Any) -> dict[str, Any]:
    patients = link_everyone(session)
    copy_practice(session, ODS)
    queued = [queue_request(session, patients[i], i) for i in QUEUED_FOR]
    session.commit()
    now = dt.datetime.now(dt.UTC)
    migration.plan_migration(
        uow, None, ODS, "demo", {"copy": "2"}, now - dt.timedelta(minutes=1), now + dt.timedelta(days=2)
    )
    return {"patients": patients, "queued": queued}


def counts(session: Any, model: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model)))


def test_a_practice_changes_system_and_61_of_64_patients_keep_every_service(
    session: Any, uow: Any, moving: dict[str, Any]
) -> None:
    patients: list[Patient] = moving["patients"]
    assert len(patients) == 64
    old_ids = {p.id: p.clinical_id for p in patients}
    before = {p.id: patient_access(session, p).services for p in patients}
    held_back = (counts(session, AccountLink), counts(session, Verification), counts(session, ProxyLink))
    letters = counts(session, LinkageLetter)

    settled = outbox.new_message(
        patients[30].practice_id,
        "appointment.booking_check",
        {"patient_id": patients[30].id, "intent": "recorded-at-once"},
        "booking-check-recorded-at-once",
        dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10),
    )
    session.add(settled)
    session.commit()

    # Freeze: writes pause with the plan's words, reads still work, queued requests are held.
    migration.freeze(uow, None, ODS)
    frozen = acting(session, patients[20])
    assert not frozen.access.allows(Service.APPOINTMENTS)
    assert "changing its clinical system" in frozen.access.messages[Service.APPOINTMENTS]
    assert frozen.access.allows(Service.RECORD)
    with pytest.raises(ServiceOff, match="changing its clinical system"):
        frozen.require(Service.PRESCRIPTIONS)
    statuses = {session.get(OutboxMessage, m.id).status for m in moving["queued"]}
    assert statuses == {migration.HELD}
    assert outbox.deliver_due(uow, "worker-during-freeze").count(outbox.Outcome.DELIVERED) == 0

    # Cut over and match.
    report = migration.cut_over(uow, None, ODS, batch_size=16)
    assert (report.linked, report.matched) == (64, 61)
    assert {w.outcome for w in report.waiting} == {
        MatchOutcome.NOT_FOUND,
        MatchOutcome.BIRTH_DATE_DIFFERS,
        MatchOutcome.FOUND_TWICE,
    }
    assert (report.requests_resent, report.requests_waiting) == (3, 1)
    practice = practice_of(session)
    assert (practice.adapter_name, practice.adapter_options) == ("demo", {"copy": "2"})
    plan = migration.view_plan(uow, ODS)
    assert plan is not None and plan.state is MigrationState.MATCHING

    waiting = {w.patient_id for w in report.waiting}
    assert waiting == {patients[i].id for i in (1, 2, 5)}
    for p in patients:
        session.refresh(p)
        ids = dict(
            session.execute(
                select(PatientSystemId.system_key, PatientSystemId.logical_id).where(PatientSystemId.patient_id == p.id)
            )
            .tuples()
            .all()
        )
        assert ids[f"demo:{ODS}"] == old_ids[p.id]
        if p.id in waiting:
            assert p.clinical_id == ""
            continue
        assert p.clinical_id == f"2~{old_ids[p.id]}" == ids[f"demo:{ODS}~2"]
        assert patient_access(session, p).services == before[p.id]  # every service as before the change
    assert (counts(session, AccountLink), counts(session, Verification), counts(session, ProxyLink)) == held_back
    assert counts(session, LinkageLetter) == letters  # nobody needs a new letter

    # The three waiting see words, not an error; reception sees them with the reason.
    held = acting(session, patients[2])
    assert not any(held.access.allows(s) for s in Service)
    assert "checking your details" in held.access.messages[Service.RECORD]
    listed = migration.checking_list(uow, None, practice)
    assert {(w.patient_id, w.reason) for w in listed.patients} == {
        (patients[2].id, MatchOutcome.NOT_FOUND.reason),
        (patients[5].id, MatchOutcome.BIRTH_DATE_DIFFERS.reason),
        (patients[1].id, MatchOutcome.FOUND_TWICE.reason),
    }
    assert {w.patient_id: w.queued_requests for w in listed.patients}[patients[2].id] == 1
    assert listed.other_changes == ()  # the booking was recorded at once: nothing for reception to check
    assert session.get(OutboxMessage, settled.id).status == "delivered"

    # A matched patient books and orders at the new system without linking again.
    matched = acting(session, patients[20])
    assert matched.access.allows(Service.APPOINTMENTS) and matched.access.allows(Service.PRESCRIPTIONS)
    assert matched.ref.clinical_id == f"2~{old_ids[patients[20].id]}"

    # Queued requests reach the new system exactly once, and never the old one.
    outbox.deliver_due(uow, "worker-1")
    outbox.deliver_due(uow, "worker-2")
    migration.match_patients(uow, None, ODS)  # a second run sends nothing again
    outbox.deliver_due(uow, "worker-3")
    new_requests = session.scalars(
        select(DemoRepeatRequest).where(DemoRepeatRequest.idempotency_key.like("mig-%"))
    ).all()
    assert sorted(r.patient_id for r in new_requests) == sorted(f"2~{old_ids[patients[i].id]}" for i in (20, 21, 22))
    old_keys = [m.idempotency_key for m in moving["queued"]]
    assert session.scalar(select(func.count()).where(DemoRepeatRequest.idempotency_key.in_(old_keys))) == 0
    for i in (20, 21, 22):
        order = session.scalar(select(PrescriptionOrder).where(PrescriptionOrder.patient_id == patients[i].id))
        assert order.external_id and order.item_ids[0].startswith("2~")

    # Audit: every step and every patient.
    actions = list(session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("migration.%"))))
    for step in ("planned", "freezing", "cut_over", "matching"):
        assert f"migration.{step}" in actions
    assert actions.count("migration.patient_matched") == 61
    assert actions.count("migration.request_resent") == 3
    assert actions.count("migration.patient_unmatched") == 3 * 2  # asked again by the second run

    migration.finish(uow, None, ODS)
    with pytest.raises(MigrationRefused):
        migration.roll_back(uow, None, ODS)


def test_rollback_within_the_window_restores_the_old_system_ids_switches_and_queued_requests(
    session: Any, uow: Any, moving: dict[str, Any]
) -> None:
    patients: list[Patient] = moving["patients"]
    old_ids = {p.id: p.clinical_id for p in patients}
    switches_before = {s.service: (s.enabled, s.message) for s in practice_of(session).switches}
    migration.freeze(uow, None, ODS)
    migration.cut_over(uow, None, ODS)

    view = migration.roll_back(uow, None, ODS)

    assert view.state is MigrationState.ROLLED_BACK
    practice = practice_of(session)
    assert (practice.adapter_name, practice.adapter_options or {}) == ("demo", {})
    assert {s.service: (s.enabled, s.message) for s in practice.switches} == switches_before
    for p in patients:
        session.refresh(p)
        assert p.clinical_id == old_ids[p.id]
    statuses = [session.get(OutboxMessage, m.id).status for m in moving["queued"]]
    assert statuses == ["pending"] * 4
    copies = session.scalars(select(OutboxMessage).where(OutboxMessage.idempotency_key.like("mig-%"))).all()
    assert {c.status for c in copies} == {"withdrawn"}
    outbox.deliver_due(uow, "worker-after-rollback")
    old_keys = [m.idempotency_key for m in moving["queued"]]
    assert session.scalar(select(func.count()).where(DemoRepeatRequest.idempotency_key.in_(old_keys))) == 4
    assert session.scalar(select(func.count()).where(DemoRepeatRequest.idempotency_key.like("mig-%"))) == 0
    assert "migration.rolled_back" in session.scalars(select(AuditEvent.action)).all()


def test_rehearsal_prints_the_report_and_changes_nothing(session: Any, uow: Any, moving: dict[str, Any]) -> None:
    practice = practice_of(session)
    ids = {p.id: p.clinical_id for p in moving["patients"]}
    audit_before = counts(session, AuditEvent)

    report = migration.rehearse(uow, ODS)

    assert (report.linked, report.matched, len(report.waiting)) == (64, 61, 3)
    assert report.requests_waiting == 4
    session.refresh(practice)
    assert practice.adapter_options in ({}, None)
    assert {p.id: p.clinical_id for p in moving["patients"]} == ids
    assert counts(session, AuditEvent) == audit_before
    plan = migration.view_plan(uow, ODS)
    assert plan is not None and plan.state is MigrationState.PLANNED


def test_a_step_out_of_order_is_refused(uow: Any, moving: dict[str, Any]) -> None:
    with pytest.raises(MigrationRefused):
        migration.cut_over(uow, None, ODS)
    with pytest.raises(MigrationRefused):
        migration.finish(uow, None, ODS)


# The pages and the command ------------------------------------------------------------------------------------
@pytest.fixture
def linked(session: Any) -> list[Patient]:
    patients = link_everyone(session)
    copy_practice(session, ODS)
    session.commit()
    return patients


def local(at: dt.datetime) -> str:
    return at.astimezone(ZoneInfo("Europe/London")).strftime("%Y-%m-%dT%H:%M")


def test_the_administrator_plans_rehearses_and_runs_the_change_and_reception_sees_whom_to_check(
    app: Any, client: Any, sign_in: Any, linked: list[Patient]
) -> None:
    sign_in("admin@example.com")
    page = f"/admin/practices/{ODS}/migration"
    assert "Plan a change" in client.get(page).get_data(as_text=True)
    now = dt.datetime.now(dt.UTC)
    bad = client.submit(page, {"adapter": "demo", "option-copy": "2", "window_start": "soon", "window_end": ""})
    assert "Enter when changes pause as a date and time" in bad.get_data(as_text=True)
    planned = client.submit(
        page,
        {
            "adapter": "demo",
            "option-copy": "2",
            "window_start": local(now - dt.timedelta(minutes=5)),
            "window_end": local(now + dt.timedelta(days=2)),
        },
    )
    assert planned.status_code == 302
    rehearsal = client.submit(f"{page}/rehearse", page=page).get_data(as_text=True)
    assert "Rehearsal: nothing was changed" in rehearsal and "Matched in the new system: 61" in rehearsal
    assert client.submit(f"{page}/freeze", page=page).status_code == 302
    assert "Changes paused" in client.get(page).get_data(as_text=True)
    assert client.submit(f"{page}/explode", page=page).status_code == 404
    matched = client.submit(f"{page}/cut-over", page=page).get_data(as_text=True)
    assert "Matched in the new system: 61" in matched and "Patients reception will check" in matched
    refused = client.submit(f"{page}/freeze", page=page).get_data(as_text=True)
    assert "cannot move to" in refused

    desk = FormClient(app.test_client())
    do_sign_in(desk, f"reception.{ODS.lower()}@example.com")
    listed = html.unescape(desk.get("/reception/system-change").get_data(as_text=True))
    for patient in (linked[1], linked[2], linked[5]):
        assert patient.family_name in listed
    assert MatchOutcome.NOT_FOUND.reason in listed and MatchOutcome.FOUND_TWICE.reason in listed
    again = desk.submit("/reception/system-change/check-again", page="/reception/system-change")
    assert again.status_code == 302


def test_the_command_plans_rehearses_and_runs_each_step(app: Any, linked: list[Patient]) -> None:
    runner = app.test_cli_runner()
    now = dt.datetime.now(dt.UTC)
    window = ["--start", local(now - dt.timedelta(minutes=5)), "--end", local(now + dt.timedelta(days=1))]
    planned = runner.invoke(args=["practice", "migrate", ODS, "--plan", "demo", "--option", "copy=2", *window])
    assert planned.exit_code == 0, planned.output
    assert "is changing its clinical system" in planned.output
    dry = runner.invoke(args=["practice", "migrate", ODS, "--dry-run"])
    assert dry.exit_code == 0 and "nothing was changed" in dry.output and "Matched in the new system: 61" in dry.output
    early = runner.invoke(args=["practice", "migrate", ODS, "--cut-over"])
    assert early.exit_code != 0 and "cannot move to" in early.output
    assert runner.invoke(args=["practice", "migrate", ODS, "--freeze"]).exit_code == 0
    cut = runner.invoke(args=["practice", "migrate", ODS, "--cut-over"])
    assert cut.exit_code == 0 and "Matched in the new system: 61" in cut.output
    back = runner.invoke(args=["practice", "migrate", ODS, "--rollback"])
    assert back.exit_code == 0 and "back on demo" in back.output
    both = runner.invoke(args=["practice", "migrate", ODS, "--freeze", "--done"])
    assert both.exit_code != 0 and "Choose one step" in both.output


def test_a_patient_not_matched_yet_reads_that_their_details_are_being_checked_on_every_page(
    client: Any, sign_in: Any, uow: Any, linked: list[Patient]
) -> None:
    now = dt.datetime.now(dt.UTC)
    migration.plan_migration(
        uow, None, ODS, "demo", {"copy": "2"}, now - dt.timedelta(minutes=1), now + dt.timedelta(days=1)
    )
    migration.freeze(uow, None, ODS)
    migration.cut_over(uow, None, ODS)
    sign_in(f"patient2.{ODS.lower()}@example.com")  # the demo patient missing from the new system
    for url in ("/home", "/appointments", "/appointments/book", "/prescriptions", "/prescriptions/order", "/record"):
        response = client.get(url, follow_redirects=True)
        assert response.status_code < 500, url
        assert "checking your details" in html.unescape(response.get_data(as_text=True)), url
