"""Patient pages: appointments. Find a time, book it, change or cancel it, add it to a calendar.

Finding a time, phone first: a type (``/appointments/book``), then a day from a short list of days with times,
then a time in time order. The week page (``/appointments/slots``) shows a week at a time with its filters, for
wide screens and for changing an appointment. Every step is a plain link or GET form: no script needed."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask.blueprints import BlueprintSetupState
from markupsafe import Markup
from werkzeug.wrappers import Response as BaseResponse
from wtforms import HiddenField, SelectField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from patient_online.domain.appointments import (
    REASON_MAX_LENGTH,
    AmendmentNotOffered,
    AmendmentRefused,
    BookingFailed,
    BookingLimitReached,
    BookingUnconfirmed,
    CancellationQueued,
    CancellationRefused,
    Clinician,
    DeliveryMode,
    ReasonTooLong,
    Slot,
    SlotDay,
)
from patient_online.domain.errors import ClinicalSystemError, InputError, NotFound, SlotUnavailable, StaleVersion
from patient_online.memo import TimedMemo
from patient_online.services import appointments as service
from patient_online.web.filters import uk_datetime
from patient_online.web.input import Form
from patient_online.wiring import uow

from . import acting, bp

SLOT_PLACEHOLDER = "__slot__"
# What the URL map leaves unquoted in a path part and in a query value, so the links read exactly the same.
PATH_SAFE, QUERY_SAFE = "!$&'()*+,/:;=@", "!$'()*,/:;?@"
TOO_LONG = f"Enter a reason of {REASON_MAX_LENGTH} characters or fewer"


class SlotFilterForm(Form):
    """The filters of the slots page, read from the query string (a GET form: no CSRF token needed)."""

    class Meta:
        csrf = False

    start = SelectField("Dates", validate_choice=False)
    slot_type = SelectField("Type of appointment", name="type", validate_choice=False)
    how = SelectField("How", validate_choice=False)
    clinician = SelectField("Who with", validate_choice=False)


class BookForm(Form):
    reason = TextAreaField(
        "Why do you need this appointment?",
        validators=[
            DataRequired("Enter the reason for your appointment"),
            Length(max=REASON_MAX_LENGTH, message=TOO_LONG),
        ],
    )
    idempotency_key = HiddenField()
    at = HiddenField()


class AmendForm(Form):
    """The new reason, then (``confirmed`` set) the same reason again from the check page."""

    reason = TextAreaField(
        "What is the new reason for your appointment?",
        validators=[
            DataRequired("Enter the reason for your appointment"),
            Length(max=REASON_MAX_LENGTH, message=TOO_LONG),
        ],
    )
    confirmed = HiddenField()


class CancelForm(Form):
    reason = TextAreaField(
        "Why are you cancelling? (optional)",
        validators=[Optional(), Length(max=REASON_MAX_LENGTH, message=TOO_LONG)],
    )


def _date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value or "")
    except ValueError:
        return None


def _instant(value: str | None) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(value or "")
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _week_label(start: dt.date, end: dt.date) -> str:
    """Short enough for a select on a phone: "24 to 30 November", "28 November to 4 December"."""
    if start == end:
        return f"{start:%A} {start.day} {start:%B}"
    if start.month == end.month:
        return f"{start.day} to {end.day} {end:%B}"
    return f"{start.day} {start:%B} to {end.day} {end:%B}"


@bp.record_once
def _remember_slot_days(state: BlueprintSetupState) -> None:
    # Half a minute, up to 64 weeks of about 60 kB: the key is the whole content, so this only bounds memory.
    state.app.extensions["slot_days_memo"] = TimedMemo(30.0, 64)


def _wanted(form: SlotFilterForm) -> service.SlotFilter:
    mode = form.how.data if form.how.data in {m.value for m in DeliveryMode} else None
    return service.SlotFilter(
        start_day=_date(form.start.data),
        slot_type=form.slot_type.data or "",
        clinician_id=form.clinician.data or "",
        delivery_mode=DeliveryMode(mode) if mode else None,
    )


def _filter_choices(
    form: SlotFilterForm,
    weeks: list[tuple[dt.date, dt.date]],
    start_day: dt.date,
    end_day: dt.date,
    slot_types: list[str],
    clinicians: list[Clinician],
) -> None:
    form.start.choices = [(s.isoformat(), _week_label(s, e)) for s, e in weeks]
    if start_day not in {s for s, _ in weeks}:
        form.start.choices.insert(0, (start_day.isoformat(), _week_label(start_day, end_day)))
    form.start.data = start_day.isoformat()
    form.slot_type.choices = [("", "Any type"), *((t, t) for t in slot_types)]
    form.how.choices = [("", "Any way"), *((m.value, m.label) for m in DeliveryMode)]
    form.clinician.choices = [("", "Anyone"), *((c.id, f"{c.name} ({c.role})") for c in clinicians)]


def _query(wanted: service.SlotFilter) -> dict[str, Any]:
    """What the patient asked for, as the query string of the next step (empty values left out)."""
    args = {
        "type": wanted.slot_type,
        "how": wanted.delivery_mode.value if wanted.delivery_mode else "",
        "clinician": wanted.clinician_id,
    }
    return {k: v for k, v in args.items() if v}


def _slots_page(form: SlotFilterForm, replacing: str | None = None) -> str:
    wanted = _wanted(form)
    page = service.find_slots(uow(), acting(), wanted, replacing=replacing)
    _filter_choices(form, page.weeks, page.start_day, page.end_day, page.slot_types, page.clinicians)
    current = {
        "start": page.start_day.isoformat(),
        "type": wanted.slot_type,
        "how": wanted.delivery_mode.value if wanted.delivery_mode else "",
        "clinician": wanted.clinician_id,
    }

    def link(**changes: Any) -> str:
        args = {k: v for k, v in {**current, **changes}.items() if v}
        if replacing:
            return url_for(".reschedule_appointment", appointment_id=replacing, **args)
        return url_for(".appointment_slots", **args)

    if replacing:
        address = url_for(".reschedule_to", appointment_id=replacing, slot_id=SLOT_PLACEHOLDER)
    else:
        address = url_for(".book_slot", slot_id=SLOT_PLACEHOLDER)
    return render_template(
        "patient/appointments/slots.html",
        page=page,
        form=form,
        link=link,
        slot_days=lambda: _slot_days(address, page.days),
        week_label=_week_label,
    )


def _remembered(template_name: str, address: str, content: tuple[Any, ...], **extra: Any) -> Markup:
    """Times as links to ``address``. A week can show well over a hundred times, which made this most of the
    page's work; the same times at the same address render the same for everyone, so a recent rendering is
    reused (remembered by its whole content, never by who asked)."""

    def render() -> Markup:
        def slot_link(slot: Slot) -> str:  # one address filled in: the URL map for every link was slow
            at = urlencode({"at": slot.start.isoformat()}, safe=QUERY_SAFE)
            return f"{address.replace(SLOT_PLACEHOLDER, quote(slot.id, safe=PATH_SAFE))}?{at}"

        template = current_app.jinja_env.get_template(template_name)
        html = template.render(content=content, slot_link=slot_link, **extra)
        return Markup(html)  # noqa: S704 (the app's environment autoescapes .html templates)

    memo: TimedMemo[tuple[Any, ...], Markup] = current_app.extensions["slot_days_memo"]
    return memo.get((template_name, address, content, *sorted(extra.items())), render)


def _slot_days(address: str, days: list[SlotDay]) -> Markup:
    """The week's days, each with its times in time order."""
    return _remembered("patient/appointments/_slot_days.html", address, tuple(days))


def _times(address: str, slots: list[Slot], *, with_type: bool) -> Markup:
    """One day's times in time order; each says its type too when the patient asked for any type."""
    return _remembered("patient/appointments/_times.html", address, tuple(slots), with_type=with_type)


@bp.get("/appointments")
def appointments() -> str:
    result = service.list_appointments(uow(), acting())
    return render_template("patient/appointments/index.html", result=result)


@bp.get("/appointments/slots")
def appointment_slots() -> str:
    return _slots_page(SlotFilterForm(formdata=request.args))


@bp.get("/appointments/book")
def book_start() -> str:
    """Step 1: the type of appointment, or any type."""
    start = service.start_booking(uow(), acting())
    return render_template("patient/appointments/choose_type.html", page=start)


@bp.get("/appointments/book/days")
def booking_days() -> str:
    """Step 2: a day, from the next days that have times (filters behind "Change filters")."""
    form = SlotFilterForm(formdata=request.args)
    wanted = _wanted(form)
    page = service.find_days(uow(), acting(), wanted)
    end_day = page.start_day + dt.timedelta(days=service.WEEK_DAYS - 1)
    _filter_choices(form, page.weeks, page.start_day, end_day, page.slot_types, page.clinicians)
    query = _query(wanted)
    return render_template(
        "patient/appointments/days.html",
        page=page,
        form=form,
        query=query,
        narrowed=bool(wanted.clinician_id or wanted.delivery_mode),
        days_from=lambda day: url_for(".booking_days", **query, start=day.isoformat()),
        times_on=lambda day: url_for(".booking_times", **query, day=day.isoformat()),
    )


@bp.get("/appointments/book/times")
def booking_times() -> str:
    """Step 3: a time on the chosen day, in time order, each with its clinician and how it happens."""
    form = SlotFilterForm(formdata=request.args)
    wanted = _wanted(form)
    day = _date(request.args.get("day"))
    if day is None:
        abort(404)
    page = service.find_times(uow(), acting(), wanted, day)
    address = url_for(".book_slot", slot_id=SLOT_PLACEHOLDER)
    query = _query(wanted)
    return render_template(
        "patient/appointments/times.html",
        page=page,
        days=url_for(".booking_days", **query),
        times=lambda: _times(address, page.slots, with_type=not wanted.slot_type),
    )


def _problem(title: str, message: str, back: str, back_text: str, status: int) -> tuple[str, int]:
    return render_template(
        "patient/appointments/problem.html", title=title, message=message, back=back, back_text=back_text
    ), status


def _booking_page(
    slot_id: str,
    replacing: str | None,
    submit: Callable[[BookForm, dt.datetime | None], BaseResponse | str],
) -> BaseResponse | str | tuple[str, int]:
    """The shared journey of booking a slot and of moving an appointment to one."""
    current = acting()
    form = BookForm()
    at = _instant(form.at.data if request.method == "POST" else request.args.get("at"))
    if replacing:
        again = url_for(".reschedule_appointment", appointment_id=replacing)
    elif at is not None:  # the times of that day, where the phone journey chose it
        again = url_for(".booking_times", day=at.astimezone(service.LONDON).date().isoformat())
    else:
        again = url_for(".book_start")
    error = ""
    status = 200
    if form.validate_on_submit():
        try:
            return submit(form, at)
        except ReasonTooLong as exc:
            form.reason.errors = [exc.message]
        except SlotUnavailable as exc:
            return _problem("That time is no longer available", exc.message, again, "Choose another time", 409)
        except (BookingLimitReached, CancellationRefused) as exc:
            return _problem(
                "You cannot book this appointment online",
                exc.message,
                url_for(".appointments"),
                "See your appointments",
                409,
            )
        except BookingFailed as exc:
            error, status = exc.message, 503
        except BookingUnconfirmed as exc:  # booked at the practice, perhaps, but not recorded here yet
            return _problem(
                "Your appointment may have been booked",
                exc.message,
                url_for(".appointments"),
                "Check your appointments",
                503,
            )
    elif request.method == "GET":
        form.idempotency_key.data = uuid.uuid4().hex
        form.at.data = at.isoformat() if at else ""
    try:
        slot, old = service.prepare_booking(uow(), current, slot_id, at, replacing=replacing)
    except NotFound:
        abort(404)
    except SlotUnavailable as exc:
        return _problem("That time is no longer available", exc.message, again, "Choose another time", 409)
    except (BookingLimitReached, CancellationRefused) as exc:
        return _problem(
            "You cannot book this appointment online",
            exc.message,
            url_for(".appointments"),
            "See your appointments",
            409,
        )
    if replacing and request.method == "GET" and old is not None:
        form.reason.data = old.reason
    page = render_template(
        "patient/appointments/book.html",
        form=form,
        slot=slot,
        old=old,
        error=error,
        again=again,
        maxlength=REASON_MAX_LENGTH,
    )
    return page, status


@bp.route("/appointments/slots/<slot_id>", methods=["GET", "POST"])
def book_slot(slot_id: str) -> BaseResponse | str | tuple[str, int]:
    def submit(form: BookForm, at: dt.datetime | None) -> BaseResponse:
        appointment = service.book_appointment(
            uow(), acting(), slot_id, form.reason.data or "", form.idempotency_key.data or "", at
        )
        return redirect(url_for(".appointment_booked", appointment_id=appointment.id))

    return _booking_page(slot_id, None, submit)


@bp.get("/appointments/<appointment_id>/booked")
def appointment_booked(appointment_id: str) -> str:
    current = acting()
    try:
        item = service.get_appointment(uow(), current, appointment_id, audited=False)
    except NotFound:
        abort(404)
    return render_template(
        "patient/appointments/booked.html", item=item, changed=request.args.get("changed") == "1", old=None
    )


@bp.get("/appointments/<appointment_id>")
def appointment(appointment_id: str) -> str:
    try:
        item = service.get_appointment(uow(), acting(), appointment_id)
    except NotFound:
        abort(404)
    return render_template("patient/appointments/show.html", item=item)


@bp.route("/appointments/<appointment_id>/cancel", methods=["GET", "POST"])
def cancel_appointment(appointment_id: str) -> BaseResponse | str | tuple[str, int]:
    current = acting()
    form = CancelForm()
    error = ""
    status = 200
    if form.validate_on_submit():
        try:
            cancelled = service.cancel_appointment(uow(), current, appointment_id, form.reason.data or "")
        except NotFound:
            abort(404)
        except ReasonTooLong as exc:
            form.reason.errors = [exc.message]
        except CancellationRefused as exc:
            error, status = exc.message, 409
        except BookingFailed as exc:
            error, status = exc.message, 503
        except CancellationQueued as exc:
            flash(exc.message, "info")
            return redirect(url_for(".appointments"))
        else:
            flash(f"Your appointment on {uk_datetime(cancelled.slot.start)} has been cancelled.", "success")
            return redirect(url_for(".appointments"))
    try:
        item = service.get_appointment(uow(), current, appointment_id, audited=False)
    except NotFound:
        abort(404)
    return render_template(
        "patient/appointments/cancel.html", item=item, form=form, error=error, maxlength=REASON_MAX_LENGTH
    ), status


@bp.route("/appointments/<appointment_id>/reason", methods=["GET", "POST"])
def amend_appointment(appointment_id: str) -> BaseResponse | str | tuple[str, int]:
    """Change the reason: the new reason, a check of old and new, then the change and its confirmation."""
    current = acting()
    form = AmendForm()
    back = url_for(".appointment", appointment_id=appointment_id)
    if form.validate_on_submit():
        if form.confirmed.data != "yes":  # the check page; or ("edit") back to the form with what was typed
            item = _amendable_item(appointment_id)
            if isinstance(item, tuple):
                return item
            page = "amend.html" if form.confirmed.data == "edit" else "amend_check.html"
            return render_template(f"patient/appointments/{page}", item=item, form=form, maxlength=REASON_MAX_LENGTH)
        try:
            amended = service.amend_appointment(uow(), current, appointment_id, form.reason.data or "")
        except NotFound:
            abort(404)
        except (ReasonTooLong, InputError) as exc:
            form.reason.errors = [exc.message]
        except (AmendmentRefused, AmendmentNotOffered, StaleVersion) as exc:
            return _problem("You cannot change the reason online", exc.message, back, "Back to your appointment", 409)
        except ClinicalSystemError as exc:
            title = "The reason has not been changed"
            return _problem(title, exc.message, back, "Back to your appointment", exc.http_status)
        else:
            flash(f"The reason for your appointment on {uk_datetime(amended.slot.start)} has been changed.", "success")
            return redirect(back)
    item = _amendable_item(appointment_id)
    if isinstance(item, tuple):
        return item
    if request.method == "GET":
        form.reason.data = item.appointment.reason
    status = 400 if form.errors else 200
    return render_template("patient/appointments/amend.html", item=item, form=form, maxlength=REASON_MAX_LENGTH), status


def _amendable_item(appointment_id: str) -> service.AppointmentItem | tuple[str, int]:
    """The appointment whose reason the patient wants to change, or the page saying why they cannot."""
    try:
        item = service.get_appointment(uow(), acting(), appointment_id, audited=False)
    except NotFound:
        abort(404)
    if not item.may_amend:
        if not item.upcoming:
            why = "This appointment has already taken place or been cancelled."
        else:
            why = item.refusal or (
                "Your GP practice's system does not let you change the reason for an appointment online. "
                "Contact your GP practice to change it."
            )
        back = url_for(".appointment", appointment_id=appointment_id)
        return _problem("You cannot change the reason online", why, back, "Back to your appointment", 409)
    return item


@bp.get("/appointments/<appointment_id>/reschedule")
def reschedule_appointment(appointment_id: str) -> str | tuple[str, int]:
    try:
        return _slots_page(SlotFilterForm(formdata=request.args), replacing=appointment_id)
    except NotFound:
        abort(404)
    except CancellationRefused as exc:
        return _problem(
            "You cannot change this appointment online",
            exc.message,
            url_for(".appointments"),
            "See your appointments",
            409,
        )


@bp.route("/appointments/<appointment_id>/reschedule/<slot_id>", methods=["GET", "POST"])
def reschedule_to(appointment_id: str, slot_id: str) -> BaseResponse | str | tuple[str, int]:
    def submit(form: BookForm, at: dt.datetime | None) -> BaseResponse | str:
        outcome = service.reschedule_appointment(
            uow(), acting(), appointment_id, slot_id, form.reason.data or "", form.idempotency_key.data or "", at
        )
        if outcome.old_cancelled:
            return redirect(url_for(".appointment_booked", appointment_id=outcome.new.id, changed=1))
        item = service.AppointmentItem(outcome.new, upcoming=True, may_change=False)
        return render_template("patient/appointments/booked.html", item=item, changed=True, old=outcome.old)

    try:
        return _booking_page(slot_id, appointment_id, submit)
    except NotFound:
        abort(404)


@bp.get("/appointments/<appointment_id>/calendar.ics")
def appointment_calendar(appointment_id: str) -> Response:
    try:
        name, content = service.calendar_file(uow(), acting(), appointment_id)
    except NotFound:
        abort(404)
    return Response(
        content,
        mimetype="text/calendar",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
