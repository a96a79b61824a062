"""The practice manager's uptake report: aggregates over a period, straight from the database (rule 5, 19)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import typing
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import String, case, cast, func, or_, select

from patient_online.domain.access import (
    FLAG_DECLINED,
    FLAG_ENHANCED_REVIEW,
    Service,
    VerificationMethod,
    codes_in_force,
)
from patient_online.domain.errors import ClinicalSystemError, InputError
from patient_online.domain.ports import ReportFigures
from patient_online.domain.reports import (
    BOOKABLE_BENCHMARK,
    REGISTERED_BENCHMARKS,
    ClinicalFigures,
    Period,
    concept,
    meets,
    percent,
)
from patient_online.domain.words import plural
from patient_online.models import (
    AccountLink,
    AuditEvent,
    LinkRequest,
    Patient,
    Practice,
    PrescriptionOrder,
    ProxyLink,
    User,
    Verification,
)

from . import waitlist
from .access import flags_from
from .controls import SwitchView, contract_shortfalls, require_manager
from .unit_of_work import AbstractUnitOfWork

LONDON = ZoneInfo("Europe/London")
MAX_PERIOD_DAYS = 366
DEFAULT_PERIOD_DAYS = 28
FLAG_CODES = (FLAG_DECLINED, FLAG_ENHANCED_REVIEW)
SERVICE_ACTIONS = {
    Service.APPOINTMENTS: ("appointment.booked", "appointment.cancelled", "appointment.rescheduled"),
    Service.PRESCRIPTIONS: ("prescription.ordered", "prescription.cancelled"),
    Service.RECORD: ("record.viewed", "record.downloaded"),
}
AGE_BANDS = ((0, 2, "Under 2 days"), (2, 7, "2 to 7 days"), (7, None, "Over 7 days"))


def default_period(today: dt.date) -> Period:
    """The last four weeks up to today, the period a report shows when none is asked for."""
    return Period(today - dt.timedelta(days=DEFAULT_PERIOD_DAYS - 1), today)


def check_period(start: dt.date, end: dt.date, today: dt.date) -> Period:
    """A period the report can cover: in order, not in the future, at most a year (else InputError)."""
    if end > today:
        raise InputError("End date must be today or in the past", "end")
    if start > end:
        raise InputError("Start date must be the same as or before the end date", "start")
    if (end - start).days + 1 > MAX_PERIOD_DAYS:
        raise InputError(f"Choose a period of {MAX_PERIOD_DAYS} days or fewer", "start")
    return Period(start, end)


def choose_period(uow: AbstractUnitOfWork, start: dt.date | None = None, end: dt.date | None = None) -> Period:
    """The period asked for, checked against today in England; the last four weeks for a date not given."""
    today = uow.today()
    fallback = default_period(today)
    if start is None and end is None:
        return fallback
    return check_period(start or fallback.start, end or fallback.end, today)


@dataclass(frozen=True)
class AgeBand:
    label: str
    count: int


@dataclass(frozen=True)
class UptakeReport:
    practice_name: str
    practice_ods: str
    period: Period
    generated_at: dt.datetime
    registered: int
    registered_in_period: int
    verified: int
    by_method: list[tuple[str, int]]
    using: dict[Service, int]
    repeat_orders: int
    repeat_patients: int
    proxies_active: int
    pending: int
    pending_oldest_days: int | None
    pending_bands: list[AgeBand]
    proxies_pending: int
    gateway_bookings: int
    clinical: ClinicalFigures | None
    gateway_flag_counts: dict[str, int]
    shortfalls: list[SwitchView]
    earlier_offered: int = 0  # earlier-appointment offers made in the period
    earlier_filled: int = 0  # of which accepted: slots filled by offers

    @property
    def list_size(self) -> int | None:
        return self.clinical.list_size if self.clinical else None

    @property
    def registered_percent(self) -> float | None:
        return percent(self.registered, self.list_size)

    @property
    def online_booking_percent(self) -> float | None:
        return percent(self.clinical.online_bookings, self.clinical.bookings) if self.clinical else None

    @property
    def bookable_percent(self) -> float | None:
        return percent(self.clinical.online_type_slots, self.clinical.slots) if self.clinical else None

    @property
    def flag_counts(self) -> dict[str, int]:
        return self.clinical.flag_counts if self.clinical else self.gateway_flag_counts

    @property
    def benchmarks(self) -> list[Benchmark]:
        """The contract benchmarks, each with the practice's figure and whether it is met."""
        rows = [
            Benchmark(f"Patients registered for online services: {b}%", self.registered_percent, b)
            for b in REGISTERED_BENCHMARKS
        ]
        rows.append(
            Benchmark(f"Appointments bookable online: {BOOKABLE_BENCHMARK}%", self.bookable_percent, BOOKABLE_BENCHMARK)
        )
        return rows


@dataclass(frozen=True)
class Benchmark:
    label: str
    value: float | None
    target: int

    @property
    def met(self) -> bool | None:
        return meets(self.value, self.target)


def _bounds(period: Period) -> tuple[dt.datetime, dt.datetime]:
    """The period as aware datetimes: London midnight at the start, and midnight after the last day."""
    start = dt.datetime.combine(period.start, dt.time(), LONDON).astimezone(dt.UTC)
    end = dt.datetime.combine(period.end + dt.timedelta(days=1), dt.time(), LONDON).astimezone(dt.UTC)
    return start, end


def uptake_report(uow: AbstractUnitOfWork, practice: Practice, actor: User, period: Period) -> UptakeReport:
    """Every figure of the report for one practice and period, each from one aggregate query; then, with no
    transaction open, the figures only the practice's clinical system holds, where it can give them."""
    require_manager(actor, practice)
    session = uow.session
    start, end = _bounds(period)
    now = uow.now()
    of_practice = Patient.practice_id == practice.id

    registered = session.scalar(
        select(func.count(func.distinct(AccountLink.patient_id)))
        .join(Patient, AccountLink.patient_id == Patient.id)
        .where(of_practice, AccountLink.status == "active", AccountLink.linked_at < end)
    )
    registered_in_period = session.scalar(
        select(func.count(func.distinct(AccountLink.patient_id)))
        .join(Patient, AccountLink.patient_id == Patient.id)
        .where(of_practice, AccountLink.linked_at >= start, AccountLink.linked_at < end)
    )
    verified_q = (
        select(Verification.method, func.count(func.distinct(Verification.patient_id)))
        .join(Patient, Verification.patient_id == Patient.id)
        .where(of_practice, Verification.verified_at < end)
        .group_by(Verification.method)
    )
    by_method_raw = dict(session.execute(verified_q).tuples().all())
    verified = session.scalar(
        select(func.count(func.distinct(Verification.patient_id)))
        .join(Patient, Verification.patient_id == Patient.id)
        .where(of_practice, Verification.verified_at < end)
    )
    labels = {m.value: m.label for m in VerificationMethod}
    by_method = [(labels.get(method, method), int(n)) for method, n in sorted(by_method_raw.items())]

    using = _patients_per_service(uow, practice, start, end)
    gateway_bookings = session.scalar(
        select(func.count(AuditEvent.id))
        .join(Patient, AuditEvent.patient_id == Patient.id)
        .where(of_practice, AuditEvent.action == "appointment.booked", AuditEvent.at >= start, AuditEvent.at < end)
    )

    orders = session.execute(
        select(func.count(PrescriptionOrder.id), func.count(func.distinct(PrescriptionOrder.patient_id)))
        .join(Patient, PrescriptionOrder.patient_id == Patient.id)
        .where(of_practice, PrescriptionOrder.created_at >= start, PrescriptionOrder.created_at < end)
    ).one()
    proxies = session.execute(
        select(
            func.coalesce(func.sum(case((ProxyLink.status == "active", 1), else_=0)), 0),
            func.coalesce(func.sum(case((ProxyLink.status == "requested", 1), else_=0)), 0),
        )
        .join(Patient, ProxyLink.patient_id == Patient.id)
        .where(of_practice)
    ).one()

    band_columns = []
    for low, high, _label in AGE_BANDS:
        newer_than = now - dt.timedelta(days=low)
        condition = LinkRequest.created_at <= newer_than
        if high is not None:
            condition = condition & (LinkRequest.created_at > now - dt.timedelta(days=high))
        band_columns.append(func.coalesce(func.sum(case((condition, 1), else_=0)), 0))
    pending_row = session.execute(
        select(func.count(LinkRequest.id), func.min(LinkRequest.created_at), *band_columns).where(
            LinkRequest.practice_id == practice.id, LinkRequest.status == "pending"
        )
    ).one()
    oldest = pending_row[1]
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=dt.UTC)
    gateway_flags = _codes_in_force(
        session.scalars(
            select(Patient.flags).where(
                of_practice, or_(*[cast(Patient.flags, String).like(f"%{c}%") for c in FLAG_CODES])
            )
        )
    )

    earlier_offered, earlier_filled = waitlist.figures(uow, practice.id, start, end)
    shortfalls = contract_shortfalls(uow, practice)
    name, ods, slot_types = practice.name, practice.ods_code, tuple(practice.online_slot_types or ())
    system = uow.clinical(practice)
    figures = _clinical_figures(uow, system, start, end, slot_types)
    return UptakeReport(
        practice_name=name,
        practice_ods=ods,
        period=period,
        generated_at=now,
        registered=int(registered or 0),
        registered_in_period=int(registered_in_period or 0),
        verified=int(verified or 0),
        by_method=by_method,
        using=using,
        repeat_orders=int(orders[0]),
        repeat_patients=int(orders[1]),
        proxies_active=int(proxies[0]),
        proxies_pending=int(proxies[1]),
        pending=int(pending_row[0]),
        pending_oldest_days=(now - oldest).days if oldest is not None else None,
        pending_bands=[AgeBand(label, int(n)) for (_l, _h, label), n in zip(AGE_BANDS, pending_row[2:], strict=True)],
        gateway_bookings=int(gateway_bookings or 0),
        clinical=figures,
        gateway_flag_counts=gateway_flags,
        shortfalls=shortfalls,
        earlier_offered=earlier_offered,
        earlier_filled=earlier_filled,
    )


def _patients_per_service(
    uow: AbstractUnitOfWork, practice: Practice, start: dt.datetime, end: dt.datetime
) -> dict[Service, int]:
    """Distinct patients who used each service in the period (one grouped query)."""
    service_of = case(
        *[(AuditEvent.action.in_(actions), service.value) for service, actions in SERVICE_ACTIONS.items()],
        else_="",
    )
    actions = [a for group in SERVICE_ACTIONS.values() for a in group]
    rows = uow.session.execute(
        select(service_of, func.count(func.distinct(AuditEvent.patient_id)))
        .join(Patient, AuditEvent.patient_id == Patient.id)
        .where(
            Patient.practice_id == practice.id,
            AuditEvent.action.in_(actions),
            AuditEvent.at >= start,
            AuditEvent.at < end,
        )
        .group_by(service_of)
    ).tuples()
    found = {Service(name): int(n) for name, n in rows if name}
    return {service: found.get(service, 0) for service in SERVICE_ACTIONS}


def reporting_port(system: object) -> ReportFigures | None:
    """The system's optional reporting port, or None when it offers none (its figures are then not available)."""
    return typing.cast(ReportFigures, system) if callable(getattr(system, "report_figures", None)) else None


def _clinical_figures(
    uow: AbstractUnitOfWork, system: object, start: dt.datetime, end: dt.datetime, slot_types: tuple[str, ...]
) -> ClinicalFigures | None:
    """Figures from the clinical system where it can give them, asked outside the transaction; None otherwise."""
    port = reporting_port(system)
    if port is None:
        return None
    uow.release()
    try:
        return port.report_figures(start, end, slot_types, FLAG_CODES)
    except ClinicalSystemError:
        return None


def view_uptake_report(
    uow: AbstractUnitOfWork, practice: Practice, actor: User, period: Period, fmt: str = "html"
) -> UptakeReport:
    """The report, with its viewing (or download) audited."""
    report = uptake_report(uow, practice, actor, period)
    uow.audit(
        "practice.report_viewed",
        actor_id=actor.id,
        actor_role="practice_manager",
        practice_id=practice.id,
        start=period.start.isoformat(),
        end=period.end.isoformat(),
        format=fmt,
    )
    uow.commit()
    return report


NOT_AVAILABLE = "not available from this clinical system"


def report_rows(report: UptakeReport) -> list[tuple[str, str, str]]:
    """The report as (measure, figure, share or note) rows: the table on the page and the CSV download."""

    def share(value: float | None) -> str:
        return NOT_AVAILABLE if value is None else f"{value:g}%"

    c = report.clinical
    rows: list[tuple[str, str, str]] = [
        ("Patients on the practice list", str(c.list_size) if c else NOT_AVAILABLE, ""),
        ("Patients registered for online services", str(report.registered), share(report.registered_percent)),
        ("Newly registered in the period", str(report.registered_in_period), ""),
        ("Patients with identity verified", str(report.verified), share(percent(report.verified, report.list_size))),
    ]
    rows += [(f"Verified by: {label}", str(n), "") for label, n in report.by_method]
    rows += [(f"Patients using: {service.label}", str(n), "") for service, n in report.using.items()]
    rows += [
        (
            "Appointments booked in the period",
            str(c.bookings) if c else NOT_AVAILABLE,
            "",
        ),
        (
            "Appointments booked online",
            str(c.online_bookings) if c else str(report.gateway_bookings),
            share(report.online_booking_percent) + (" of all bookings" if c else ""),
        ),
        (
            "Appointment slots in the period",
            str(c.slots) if c else NOT_AVAILABLE,
            "",
        ),
        (
            "Slots of types bookable online",
            str(c.online_type_slots) if c else NOT_AVAILABLE,
            share(report.bookable_percent) + (" of all slots" if c else ""),
        ),
        ("Earlier appointments offered", str(report.earlier_offered), "Freed times offered to patients waiting"),
        (
            "Slots filled by earlier-appointment offers",
            str(report.earlier_filled),
            share(percent(report.earlier_filled, report.earlier_offered)) + " of offers accepted"
            if report.earlier_offered
            else "",
        ),
        (
            "Repeat prescription requests made online",
            str(report.repeat_orders),
            f"from {plural(report.repeat_patients, 'patient')}",
        ),
        ("Proxies active", str(report.proxies_active), ""),
        ("Proxy requests waiting", str(report.proxies_pending), ""),
        (
            "Verifications waiting",
            str(report.pending),
            ""
            if report.pending_oldest_days is None
            else f"the oldest has waited {plural(report.pending_oldest_days, 'day')}",
        ),
    ]
    rows += [(f"Verifications waiting: {band.label.lower()}", str(band.count), "") for band in report.pending_bands]
    rows += [
        (
            f"Patients with {concept(FLAG_DECLINED)} on their record",
            str(report.flag_counts[FLAG_DECLINED]),
            "They chose not to have online access",
        ),
        (
            f"Patients with {concept(FLAG_ENHANCED_REVIEW)} in force",
            str(report.flag_counts[FLAG_ENHANCED_REVIEW]),
            "No automatic access to new record entries until a clinician reviews it",
        ),
    ]
    for b in report.benchmarks:
        verdict = NOT_AVAILABLE if b.met is None else ("met" if b.met else "not met")
        rows.append((f"Contract benchmark – {b.label}", share(b.value), verdict))
    for s in report.shortfalls:
        back = f"; expected back {s.expected_return:%d %B %Y}" if s.expected_return else ""
        rows.append(
            (
                f"Below contract: {s.service.label}",
                "Off" if not s.enabled else "No record by default",
                f"{s.off_reason}{back}",
            )
        )
    return rows


def _codes_in_force(stored: typing.Iterable[object]) -> dict[str, int]:
    """Patients per rule 8 code in force: a review lifted by a later 'not indicated' no longer counts."""
    counts = dict.fromkeys(FLAG_CODES, 0)
    for items in stored:
        for code in codes_in_force(flags_from(items)):
            counts[code] = counts.get(code, 0) + 1
    return counts


def report_csv(report: UptakeReport) -> str:
    """The report as CSV: a heading block naming the practice and period, then one row per measure."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Practice", f"{report.practice_name} ({report.practice_ods})"])
    writer.writerow(["Period", report.period.start.isoformat(), report.period.end.isoformat()])
    writer.writerow([])
    writer.writerow(["Measure", "Figure", "Share or note"])
    for row in report_rows(report):
        writer.writerow([_safe_cell(cell) for cell in row])
    return out.getvalue()


def _safe_cell(value: str) -> str:
    """Stop spreadsheet programs reading a cell as a formula (a reason typed by a manager could start with =)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value
