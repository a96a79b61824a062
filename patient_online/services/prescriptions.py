"""Repeat prescriptions: the template, ordering, following requests, and the nominated pharmacy (rules 7, 12-15).

Everything clinical goes through the practice's RepeatMedication port. An order is recorded with its
idempotency key and put in the durable outbox in one transaction, then sent at once if the link works;
when it does not, the outbox worker sends it later, exactly once, unless the patient cancels it first (the
outbox message is withdrawn, so it is never sent). The patient chooses where to collect it: their nominated
pharmacy (sent electronically) or a paper prescription at the surgery. The time of an order is when the
patient asked, whenever it reaches the practice.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.exc import IntegrityError

from patient_online.domain.access import Service
from patient_online.domain.errors import ClinicalSystemUnavailable, DomainError, InputError, NotAllowed, NotFound
from patient_online.domain.geo import Point, miles_text, nearest_first
from patient_online.domain.patients import PatientRef
from patient_online.domain.prescriptions import (
    Collection,
    PrescriptionRules,
    RepeatItem,
    RepeatRequest,
    RequestStatus,
    TemplateLine,
    move,
    note_problem,
    outstanding_item_ids,
    ready_by,
    template_lines,
)
from patient_online.models import AuditEvent, OutboxMessage, Patient, Pharmacy, Practice, PrescriptionOrder, User
from patient_online.services import messages, outbox
from patient_online.services.access import Acting
from patient_online.services.unit_of_work import AbstractUnitOfWork

KIND = "prescription.request"
KEY_RE = re.compile(r"[A-Za-z0-9_-]{16,80}")
CANNOT_CANCEL = "This request cannot be cancelled now, because your GP practice has already dealt with it."
BEING_SENT = (
    "We are sending this request to your GP practice at the moment, so it cannot be cancelled yet. "
    "Try again in a few minutes."
)
CHOOSE_COLLECTION = "Select where you want to collect your prescription"


def rules_for(practice: Practice) -> PrescriptionRules:
    """The practice's prescription rules (design rule 7) as a domain object."""
    return PrescriptionRules(
        turnaround_working_days=practice.turnaround_working_days,
        max_note_length=practice.max_note_length,
        never_online=frozenset(str(entry).strip().lower() for entry in practice.never_online or [] if entry),
    )


def new_idempotency_key() -> str:
    """A fresh key for an order form: every submission of that form makes at most one request."""
    return uuid.uuid4().hex


# What the use cases return ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class PharmacyInfo:
    """A community pharmacy, as the pages show it."""

    ods_code: str
    name: str
    address: str
    postcode: str
    phone: str
    distance_miles: float | None = None  # from the patient's GP practice, when both places are known

    @classmethod
    def of(cls, row: Pharmacy, distance_miles: float | None = None) -> PharmacyInfo:
        return cls(row.ods_code, row.name, row.address, row.postcode, row.phone, distance_miles)

    @property
    def distance(self) -> str:
        """The distance from the practice as the page shows it ("0.4 miles"), or "" when unknown."""
        return miles_text(self.distance_miles) if self.distance_miles is not None else ""


@dataclass(frozen=True)
class OrderSummary:
    """The gateway's copy of one order, as its confirmation page shows it."""

    id: int
    status: RequestStatus
    item_ids: tuple[str, ...]
    item_names: tuple[str, ...]
    note: str
    pharmacy_ods: str
    ready_by: dt.date | None
    external_id: str
    collection: Collection = Collection.PHARMACY
    requested_at: dt.datetime | None = None  # when the patient asked
    sent_at: dt.datetime | None = None  # when the practice's system took it (later, if it was queued)

    @classmethod
    def of(cls, row: PrescriptionOrder) -> OrderSummary:
        return cls(
            id=row.id,
            status=RequestStatus(row.status),
            item_ids=tuple(row.item_ids),
            item_names=tuple(row.item_names),
            note=row.note,
            pharmacy_ods=row.pharmacy_ods,
            ready_by=row.ready_by,
            external_id=row.external_id,
            collection=Collection(row.collection),
            requested_at=row.created_at,
            sent_at=row.sent_at,
        )

    @property
    def request_id(self) -> str:
        """The id the requests pages use for this order (the clinical system's, once it holds it)."""
        return self.external_id or f"order-{self.id}"


# The template ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TemplateView:
    lines: list[TemplateLine]
    pharmacy: PharmacyInfo | None
    rules: PrescriptionRules

    @property
    def orderable(self) -> list[TemplateLine]:
        return [line for line in self.lines if line.orderable]

    @property
    def not_orderable(self) -> list[TemplateLine]:
        return [line for line in self.lines if not line.orderable]


def repeat_template(uow: AbstractUnitOfWork, acting: Acting) -> TemplateView:
    """The patient's medication with what can be ordered online and, for the rest, why not (rule 12)."""
    acting.require(Service.PRESCRIPTIONS)
    orders = _orders(uow, acting.patient.id, outstanding_only=True)
    system, ref = uow.clinical(acting.practice), acting.ref
    uow.release()
    items = system.list_repeat_template(ref)
    requests = _merge(orders, system.list_requests(ref))
    rules = rules_for(acting.practice)
    uow.writing()
    view = TemplateView(
        lines=template_lines(items, rules, requests, uow.today()),
        pharmacy=_pharmacy(uow, acting.patient.nominated_pharmacy_ods),
        rules=rules,
    )
    _audit(uow, acting, "prescription.template_viewed", items=len(items))
    uow.commit()
    return view


# Ordering -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OrderResult:
    order: OrderSummary
    pharmacy: PharmacyInfo | None
    replayed: bool  # the same form was submitted before: this is that order

    @property
    def status(self) -> RequestStatus:
        return self.order.status


def order_repeats(
    uow: AbstractUnitOfWork,
    acting: Acting,
    item_ids: Sequence[str],
    note: str,
    idempotency_key: str,
    offered: Mapping[str, str] | None = None,
    collection: Collection | None = None,
) -> OrderResult:
    """Ask the practice for repeat items once, whatever happens to the link (rules 12, 13, 15).

    ``offered`` holds the items (id -> name) the order form showed; they are trusted only when the clinical
    system cannot be reached to check the order again, so the request can still be queued. ``collection`` is
    where the patient will collect it; None (a form that did not ask) means their nominated pharmacy.
    """
    acting.require(Service.PRESCRIPTIONS)
    key = idempotency_key.strip()
    if not KEY_RE.fullmatch(key):
        raise InputError("Something went wrong with this form. Go back to your medicines and start again.", "items")
    existing = _replay(uow, acting, key)
    if existing is not None:
        return existing
    rules = rules_for(acting.practice)
    note = note.strip()
    problem = note_problem(note, rules)
    if problem:
        raise InputError(problem, "note")
    wanted = list(dict.fromkeys(i for i in item_ids if i))
    if not wanted:
        raise InputError("Select at least one medicine to order", "items")
    collection = collection or Collection.PHARMACY
    pharmacy = None
    if collection is Collection.PHARMACY:
        pharmacy = _pharmacy(uow, acting.patient.nominated_pharmacy_ods)
        if pharmacy is None:
            raise InputError("Choose a pharmacy for your prescriptions before you order", "pharmacy")
    try:
        names = _check_orderable(uow, acting, rules, wanted, offered or {})
    except InputError:
        # The twin of a double click may have ordered these items a moment ago: its order, not a refusal,
        # is the answer to this form.
        twin = _replay(uow, acting, key)
        if twin is None:
            raise
        return twin

    uow.writing()
    order = PrescriptionOrder(
        patient_id=acting.patient.id,
        ordered_by_id=acting.user.id,
        idempotency_key=key,
        item_ids=wanted,
        item_names=[names[i] for i in wanted],
        note=note,
        pharmacy_ods=pharmacy.ods_code if pharmacy else "",
        collection=collection.value,
        status=RequestStatus.QUEUED.value,
        ready_by=ready_by(uow.today(), rules),
        created_at=uow.now(),
    )
    uow.session.add(order)
    try:
        uow.flush()
        message = outbox.enqueue(
            uow, acting.practice.id, KIND, {"order_id": order.id, "patient_id": acting.patient.id}, key
        )
        _audit(
            uow,
            acting,
            "prescription.ordered",
            order_id=order.id,
            items=len(wanted),
            collection=collection.value,
            pharmacy=pharmacy.ods_code if pharmacy else "",
        )
        uow.commit()
    except IntegrityError:
        uow.rollback()  # a twin submission with the same key won the race: that one is the order
        replayed = _replay(uow, acting, key)
        if replayed is None:
            raise
        return replayed

    outbox.deliver_message(uow, message.id, worker_id=f"web-{uuid.uuid4().hex[:12]}")
    uow.writing()
    uow.session.refresh(order)
    _confirm(uow, acting.user, order, pharmacy, acting.practice)
    uow.commit()
    return OrderResult(OrderSummary.of(order), pharmacy, replayed=False)


def _replay(uow: AbstractUnitOfWork, acting: Acting, key: str) -> OrderResult | None:
    order = uow.session.scalar(select(PrescriptionOrder).where(PrescriptionOrder.idempotency_key == key))
    if order is None:
        return None
    if order.patient_id != acting.patient.id:
        raise NotAllowed()
    return OrderResult(OrderSummary.of(order), _pharmacy(uow, order.pharmacy_ods), replayed=True)


def _check_orderable(
    uow: AbstractUnitOfWork, acting: Acting, rules: PrescriptionRules, wanted: list[str], offered: Mapping[str, str]
) -> dict[str, str]:
    """Names of the wanted items after checking rule 12 again; falls back on ``offered`` when the link is down."""
    orders = _orders(uow, acting.patient.id, outstanding_only=True)
    system, ref = uow.clinical(acting.practice), acting.ref
    uow.release()
    try:
        items = system.list_repeat_template(ref)
        requests = _merge(orders, system.list_requests(ref))
    except ClinicalSystemUnavailable:
        outstanding = outstanding_item_ids(_merge(orders, []))
        for item_id in wanted:
            if item_id not in offered:
                raise InputError("Select medicines from the list", "items") from None
            if item_id in outstanding:
                raise InputError(f"{offered[item_id]}: you have already requested this", "items") from None
        return {i: offered[i] for i in wanted}
    lines = {line.item.id: line for line in template_lines(items, rules, requests, uow.today())}
    for item_id in wanted:
        line = lines.get(item_id)
        if line is None:
            raise InputError("Select medicines from the list", "items")
        if line.reason is not None:
            raise InputError(f"{line.item.name} cannot be ordered online. {line.reason.value}", "items")
    return {i: lines[i].item.name for i in wanted}


def order_for(uow: AbstractUnitOfWork, acting: Acting, order_id: int) -> OrderResult:
    """One of the patient's own orders, for its confirmation page."""
    acting.require(Service.PRESCRIPTIONS)
    order = uow.session.get(PrescriptionOrder, order_id)
    if order is None or order.patient_id != acting.patient.id:
        raise NotFound("We could not find that request.")
    return OrderResult(OrderSummary.of(order), _pharmacy(uow, order.pharmacy_ods), replayed=True)


def _confirm(
    uow: AbstractUnitOfWork, user: User, order: PrescriptionOrder, pharmacy: PharmacyInfo | None, practice: Practice
) -> None:
    ready = f"{order.ready_by.day} {order.ready_by:%B %Y}" if order.ready_by else ""
    status = RequestStatus(order.status)
    if status is RequestStatus.QUEUED:
        body = (
            f"We have your repeat prescription request for {practice.name}. Their system is not available at the "
            "moment, so we will send your request as soon as it is, and email you when we have."
        )
    elif status is RequestStatus.FAILED:
        body = (
            f"We could not send your repeat prescription request to {practice.name}. Contact them on {practice.phone}."
        )
    else:
        body = f"Your repeat prescription request has been sent to {practice.name}."
    if status is not RequestStatus.FAILED:
        where = f"for you to collect from {practice.name}" if pharmacy is None else f"at {pharmacy.name}"
        body += f" It should be ready {where} by {ready}. Sign in to see its progress."
    uow.send_email(user.email, "prescription_ordered", "Your repeat prescription request", body)


# The outbox handler: deliver a queued order to the clinical system ------------------------------------------
def _prepare_delivery(uow: AbstractUnitOfWork, message: OutboxMessage) -> Callable[[], dict[str, Any]]:
    order = uow.session.get(PrescriptionOrder, message.payload["order_id"])
    if order is None:
        raise NotFound("The order has gone.")
    patient = uow.session.get_one(Patient, order.patient_id)
    system = uow.clinical_systems.system_for(patient.practice)  # the outbox calls it with no transaction open
    ref = PatientRef(patient.practice.ods_code, patient.nhs_number, patient.clinical_id)
    item_ids, note, pharmacy, key = list(order.item_ids), order.note, order.pharmacy_ods, message.idempotency_key
    collection, asked_at = Collection(order.collection), order.created_at

    def call() -> dict[str, Any]:
        request = system.request_repeats(
            ref, item_ids, note, pharmacy, key, collection=collection, requested_at=asked_at
        )
        return {"request_id": request.id, "status": request.status.value}

    return call


def _delivered(uow: AbstractUnitOfWork, message: OutboxMessage) -> None:
    order = uow.session.get(PrescriptionOrder, message.payload["order_id"])
    if order is None:
        return
    was_queued_for_patient = message.attempts > 1  # the patient was told it is queued
    order.external_id = str(message.result.get("request_id", ""))
    order.sent_at = uow.now()  # created_at stays: it is when the patient asked
    if RequestStatus(order.status) in (RequestStatus.QUEUED, RequestStatus.FAILED):
        order.status = RequestStatus(message.result.get("status") or RequestStatus.REQUESTED).value
    patient = uow.session.get_one(Patient, order.patient_id)
    uow.audit(
        "prescription.sent",
        actor_role="system",
        patient_id=patient.id,
        practice_id=patient.practice_id,
        order_id=order.id,
        attempts=message.attempts,
    )
    if was_queued_for_patient:
        _tell(
            uow,
            order,
            "Your repeat prescription request has been sent",
            f"Your repeat prescription request has now been sent to {patient.practice.name}. "
            "Sign in to see its progress.",
        )


def _failed(uow: AbstractUnitOfWork, message: OutboxMessage) -> None:
    order = uow.session.get(PrescriptionOrder, message.payload.get("order_id"))
    if order is None:
        return
    order.status = RequestStatus.FAILED.value
    patient = uow.session.get_one(Patient, order.patient_id)
    uow.audit(
        "prescription.failed",
        actor_role="system",
        patient_id=patient.id,
        practice_id=patient.practice_id,
        order_id=order.id,
    )
    _tell(
        uow,
        order,
        "We could not send your repeat prescription request",
        f"We could not send your repeat prescription request to {patient.practice.name}. "
        f"Order again online, or contact the practice on {patient.practice.phone}.",
    )


outbox.register(KIND, outbox.Handler(prepare=_prepare_delivery, delivered=_delivered, failed=_failed))


# Requests and their history -------------------------------------------------------------------------------
@dataclass(frozen=True)
class RequestLine:
    request: RepeatRequest
    ready_by: dt.date | None  # the gateway's estimate, for the requests it sent
    pharmacy: PharmacyInfo | None
    sent_at: dt.datetime | None = None  # when a request the gateway kept was sent on (None: at once, or unknown)

    @property
    def cancellable(self) -> bool:
        return self.request.status.cancellable

    @property
    def collection(self) -> Collection:
        return self.request.collection

    @property
    def status_label(self) -> str:
        """The status in words; an issued paper prescription is at the surgery, not sent to a pharmacy."""
        if self.request.status is RequestStatus.ISSUED and self.collection is Collection.SURGERY:
            return "Ready to collect"
        return self.request.status.label

    @property
    def collect_from(self) -> str:
        """Where the patient collects it, in the words the requests page shows."""
        if self.collection is Collection.SURGERY:
            return "Paper prescription to collect from your GP practice"
        return self.pharmacy.name if self.pharmacy else "Your nominated pharmacy"


@dataclass(frozen=True)
class RequestHistory:
    lines: list[RequestLine]
    up_to_date: bool  # False when the clinical system could not be asked: statuses may be old


def list_requests(uow: AbstractUnitOfWork, acting: Acting) -> RequestHistory:
    """The patient's requests, newest first: the clinical system's, with the orders still queued here (rule 13).

    A status the clinical system reports that differs from the gateway's copy is taken, and the patient told.
    """
    acting.require(Service.PRESCRIPTIONS)
    orders = _orders(uow, acting.patient.id)
    system, ref = uow.clinical(acting.practice), acting.ref
    uow.release()
    up_to_date = True
    try:
        clinical_requests = system.list_requests(ref)
    except ClinicalSystemUnavailable:
        clinical_requests, up_to_date = [], False
    uow.writing()
    _apply_statuses(uow, orders, clinical_requests)
    by_external = {o.external_id: o for o in orders if o.external_id}
    by_local = {f"order-{o.id}": o for o in orders}
    pharmacies = {p.ods_code: PharmacyInfo.of(p) for p in uow.session.scalars(select(Pharmacy))}
    lines = []
    for r in _merge(orders, clinical_requests):
        order = by_external.get(r.id) or by_local.get(r.id)
        sent_late = order.sent_at if order and order.sent_at and order.sent_at - order.created_at > LATE else None
        lines.append(RequestLine(r, order.ready_by if order else None, pharmacies.get(r.pharmacy_ods), sent_late))
    _audit(uow, acting, "prescription.requests_viewed", requests=len(lines))
    uow.commit()
    return RequestHistory(lines, up_to_date)


def cancel_request(uow: AbstractUnitOfWork, acting: Acting, request_id: str) -> RepeatRequest:
    """Withdraw a request the practice has not acted on yet (rule 13): one still queued here is taken out of
    the outbox before it is sent; one the practice holds is cancelled in its clinical system."""
    acting.require(Service.PRESCRIPTIONS)
    order_id: int | None = None
    if request_id.startswith("order-"):
        queued = _cancel_queued(uow, acting, request_id)
        if isinstance(queued, RepeatRequest):
            return queued
        order_id, request_id = queued  # sent meanwhile: the practice holds it now, under this id
    system, ref = uow.clinical(acting.practice), acting.ref
    uow.release()
    current = next((r for r in system.list_requests(ref) if r.id == request_id), None)
    if current is None:
        raise NotFound("We could not find that request.")
    if not current.status.cancellable:
        raise DomainError(CANNOT_CANCEL)
    cancelled = system.cancel_request(ref, request_id)
    if cancelled.status is not RequestStatus.CANCELLED:
        raise DomainError(CANNOT_CANCEL)
    uow.writing()
    mine = PrescriptionOrder.id == order_id if order_id is not None else PrescriptionOrder.external_id == request_id
    order = uow.session.scalar(select(PrescriptionOrder).where(PrescriptionOrder.patient_id == acting.patient.id, mine))
    if order is not None:
        order.status = RequestStatus.CANCELLED.value
    _audit(uow, acting, "prescription.cancelled", request_id=request_id, order_id=order.id if order else None)
    uow.commit()
    return cancelled


def _cancel_queued(uow: AbstractUnitOfWork, acting: Acting, request_id: str) -> RepeatRequest | tuple[int, str]:
    """Cancel an order still in the outbox; when it was sent before the patient asked, the order's id and its
    clinical id instead (to cancel it in the clinical system).

    The outbox message is withdrawn in the same transaction that marks the order cancelled, by a conditional
    update that a worker's claim cannot overtake (services.outbox.withdraw): either the worker has it, and it
    is sent, or it is withdrawn and never sent.
    """
    number = request_id.removeprefix("order-")
    uow.writing()
    valid = number.isdigit() and len(number) <= 10 and int(number) < 2**31
    order = uow.session.get(PrescriptionOrder, int(number), populate_existing=True) if valid else None
    if order is None or order.patient_id != acting.patient.id:
        uow.rollback()
        raise NotFound("We could not find that request.")
    if order.external_id:
        sent = (order.id, order.external_id)
        uow.rollback()
        return sent
    if RequestStatus(order.status) is not RequestStatus.QUEUED:
        uow.rollback()
        raise DomainError(CANNOT_CANCEL)
    message = uow.session.scalar(
        select(OutboxMessage).where(OutboxMessage.kind == KIND, OutboxMessage.idempotency_key == order.idempotency_key)
    )
    if message is None or not outbox.withdraw(uow, message.id):
        uow.rollback()
        raise DomainError(BEING_SENT)
    order.status = move(RequestStatus.QUEUED, RequestStatus.CANCELLED).value
    _audit(uow, acting, "prescription.cancelled", request_id=request_id, order_id=order.id, before_sending=True)
    uow.commit()
    return _as_request(order)


def request_for(uow: AbstractUnitOfWork, acting: Acting, request_id: str) -> RequestLine:
    """One request of the patient's (for the page that asks whether to cancel it)."""
    history = list_requests(uow, acting)
    line = next((x for x in history.lines if x.request.id == request_id), None)
    if line is None:
        raise NotFound("We could not find that request.")
    return line


def sync_patient_requests(uow: AbstractUnitOfWork, practice: Practice, clinical_id: str) -> int:
    """Take the clinical system's statuses for one patient's orders and tell the patient of changes.

    The demo clinical system calls this after its staff act on a request, standing in for the notification a
    real system would send; the patient's own pages do the same whenever they are looked at.
    """
    patient = uow.session.scalar(
        select(Patient).where(Patient.practice_id == practice.id, Patient.clinical_id == clinical_id)
    )
    if patient is None:
        return 0
    orders = _orders(uow, patient.id)
    system = uow.clinical(practice)
    ref = PatientRef(practice.ods_code, patient.nhs_number, patient.clinical_id)
    uow.release()
    requests = system.list_requests(ref)
    uow.writing()
    changed = _apply_statuses(uow, orders, requests)
    uow.commit()
    return changed


def _apply_statuses(
    uow: AbstractUnitOfWork, orders: Iterable[PrescriptionOrder], requests: Iterable[RepeatRequest]
) -> int:
    """Copy newer statuses onto the gateway's orders; each change is audited and told to the patient once."""
    by_external = {o.external_id: o for o in orders if o.external_id}
    changed = 0
    for request in requests:
        order = by_external.get(request.id)
        if order is None or order.status == request.status.value:
            continue
        order.status = request.status.value
        order.rejection_reason = request.rejection_reason
        changed += 1
        patient = uow.session.get_one(Patient, order.patient_id)
        uow.audit(
            f"prescription.{request.status.value}",
            actor_role="staff",
            patient_id=patient.id,
            practice_id=patient.practice_id,
            order_id=order.id,
        )
        message = _status_message(uow, request, patient.practice)
        if message is not None:
            _tell(uow, order, *message, key=f"prescription-{order.id}-{request.status.value}")
    return changed


def _status_message(uow: AbstractUnitOfWork, request: RepeatRequest, practice: Practice) -> tuple[str, str] | None:
    if request.status is RequestStatus.APPROVED:
        return (
            "Your repeat prescription request has been approved",
            f"{practice.name} has approved your repeat prescription request. "
            "We will tell you when it is sent to your pharmacy.",
        )
    if request.status is RequestStatus.REJECTED:
        reason = request.rejection_reason or "No reason was given."
        return (
            "Your repeat prescription request was not approved",
            f"{practice.name} did not approve your repeat prescription request. Their reason: {reason} "
            f"Contact the practice on {practice.phone} if you need help.",
        )
    if request.status is RequestStatus.ISSUED:
        pharmacy = _pharmacy(uow, request.pharmacy_ods)
        where = pharmacy.name if pharmacy else "your pharmacy"
        return (
            "Your prescription has been sent to your pharmacy",
            f"Your prescription has been sent to {where}. Check with them when it is ready to collect.",
        )
    return None


def _tell(uow: AbstractUnitOfWork, order: PrescriptionOrder, subject: str, body: str, key: str | None = None) -> None:
    """Email whoever ordered; with ``key`` at most once (a status the practice reports twice is told once)."""
    user = uow.session.get(User, order.ordered_by_id)
    if user is None or not user.active or (key is not None and messages.already_queued(uow, key)):
        return
    uow.send_email(user.email, "prescription_status", subject, body, key=key)


OUTSTANDING = [status.value for status in RequestStatus if status.outstanding]
LATE = dt.timedelta(minutes=1)  # sent this long after the patient asked: the requests page says when


def _orders(uow: AbstractUnitOfWork, patient_id: int, outstanding_only: bool = False) -> list[PrescriptionOrder]:
    """The gateway's copies of the patient's orders, newest first; ``outstanding_only`` for the checks of rule
    12, which need only those (the whole history grows with every order a patient ever made)."""
    stmt = (
        select(PrescriptionOrder)
        .where(PrescriptionOrder.patient_id == patient_id)
        .order_by(PrescriptionOrder.created_at.desc(), PrescriptionOrder.id.desc())
    )
    if outstanding_only:
        stmt = stmt.where(PrescriptionOrder.status.in_(OUTSTANDING))
    return list(uow.session.scalars(stmt))


def _merge(orders: Iterable[PrescriptionOrder], clinical_requests: Iterable[RepeatRequest]) -> list[RepeatRequest]:
    """The clinical system's requests plus the gateway's orders it does not hold (yet), newest first."""
    ours = {o.external_id: o for o in orders if o.external_id}
    # The gateway's own copy says when the patient asked and where they collect it; a clinical system may know
    # only when the request reached it (a queued order is sent later).
    known = [
        replace(r, requested_at=ours[r.id].created_at, collection=Collection(ours[r.id].collection))
        if r.id in ours
        else r
        for r in clinical_requests
    ]
    ids = {r.id for r in known}
    for order in orders:
        if order.external_id and order.external_id in ids:
            continue
        known.append(_as_request(order))
    return sorted(known, key=lambda r: r.requested_at, reverse=True)


def _as_request(order: PrescriptionOrder) -> RepeatRequest:
    """The gateway's copy of an order as a request (for those the clinical system does not hold, or not yet)."""
    return RepeatRequest(
        id=order.external_id or f"order-{order.id}",
        item_ids=tuple(order.item_ids),
        item_names=tuple(order.item_names),
        status=RequestStatus(order.status),
        requested_at=order.created_at,
        note=order.note,
        rejection_reason=order.rejection_reason,
        pharmacy_ods=order.pharmacy_ods,
        collection=Collection(order.collection),
    )


def _audit(uow: AbstractUnitOfWork, acting: Acting, action: str, **detail: Any) -> AuditEvent:
    return uow.audit(
        action,
        actor_id=acting.user.id,
        actor_role=acting.actor_role,
        patient_id=acting.patient.id,
        practice_id=acting.practice.id,
        **detail,
    )


# The nominated pharmacy (rule 14) -------------------------------------------------------------------------
def _pharmacy(uow: AbstractUnitOfWork, ods_code: str) -> PharmacyInfo | None:
    row = uow.session.get(Pharmacy, ods_code) if ods_code else None
    return PharmacyInfo.of(row) if row is not None else None


def nominated_pharmacy(uow: AbstractUnitOfWork, acting: Acting) -> PharmacyInfo | None:
    """The pharmacy the patient's electronic prescriptions go to."""
    acting.require(Service.PRESCRIPTIONS)
    return _pharmacy(uow, acting.patient.nominated_pharmacy_ods)


def search_pharmacies(uow: AbstractUnitOfWork, acting: Acting, query: str = "") -> list[PharmacyInfo]:
    """Pharmacies whose name, town or postcode matches ``query`` (all of them when it is empty), nearest to the
    patient's GP practice first; those whose distance is unknown follow, in alphabetical order."""
    acting.require(Service.PRESCRIPTIONS)
    origin = Point.of(acting.practice.latitude, acting.practice.longitude)
    stmt = select(Pharmacy).order_by(*_nearest_order(origin), Pharmacy.name)
    words = query.strip()
    if words:
        squashed = re.sub(r"\s+", "", words).lower()
        like = f"%{words.lower()}%"
        stmt = stmt.where(
            or_(
                func.lower(Pharmacy.name).like(like),
                func.lower(Pharmacy.address).like(like),
                func.replace(func.lower(Pharmacy.postcode), " ", "").like(f"{squashed}%"),
                func.lower(Pharmacy.ods_code) == squashed,
            )
        )
    rows = uow.session.scalars(stmt.limit(50)).all()
    return [PharmacyInfo.of(row, miles) for row, miles in nearest_first(rows, origin, _point, lambda r: r.name)]


def _point(row: Pharmacy) -> Point | None:
    return Point.of(row.latitude, row.longitude)


def _nearest_order(origin: Point | None) -> list[Any]:
    """ORDER BY terms that put the pharmacies nearest ``origin`` first, so the 50 shown are the nearest ones:
    known places first, then a flat-Earth squared distance (plain arithmetic every database has; exact enough
    to choose the nearest 50, which are then put in order by their haversine distance)."""
    if origin is None:
        return []
    unknown = case((or_(Pharmacy.latitude.is_(None), Pharmacy.longitude.is_(None)), 1), else_=0)
    squash = math.cos(math.radians(origin.latitude))
    d_lat = Pharmacy.latitude - origin.latitude
    d_lon = (Pharmacy.longitude - origin.longitude) * squash
    return [unknown, d_lat * d_lat + d_lon * d_lon]


@dataclass(frozen=True)
class PharmacyChoice:
    current: PharmacyInfo | None
    results: list[PharmacyInfo]


def pharmacy_choice(uow: AbstractUnitOfWork, acting: Acting, query: str = "") -> PharmacyChoice:
    """The patient's nominated pharmacy and those matching ``query``, for the page that changes it."""
    return PharmacyChoice(nominated_pharmacy(uow, acting), search_pharmacies(uow, acting, query))


def nominate_pharmacy(uow: AbstractUnitOfWork, acting: Acting, ods_code: str) -> PharmacyInfo:
    """Send the patient's electronic prescriptions to another pharmacy (rule 14)."""
    acting.require(Service.PRESCRIPTIONS)
    uow.writing()
    pharmacy = _pharmacy(uow, ods_code.strip().upper())
    if pharmacy is None:
        raise InputError("Select a pharmacy from the list", "pharmacy")
    old = acting.patient.nominated_pharmacy_ods
    acting.patient.nominated_pharmacy_ods = pharmacy.ods_code
    _audit(uow, acting, "pharmacy.nominated", old=old, new=pharmacy.ods_code)
    uow.commit()
    return pharmacy


def template_item_names(items: Iterable[RepeatItem]) -> dict[str, str]:
    """Item id -> name, what the order form remembers it offered."""
    return {i.id: i.name for i in items}
