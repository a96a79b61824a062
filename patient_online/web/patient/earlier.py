"""Patient pages: earlier appointments (the waitlist). A patient asks to be offered an earlier time, sees what they
asked for, leaves the list; and answers an offer the worker made them (accept it, or say no thanks).

The rules and the queue are in ``services/waitlist.py``; these pages only read what the patient chose and show
what the service says. Every error a person can cause is a clear page: the practice has the list off (403), the
offer has ended (409), someone else's offer (404), or the form again with what to fix."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response
from wtforms import Field, HiddenField, SelectField, SelectMultipleField, TextAreaField, ValidationError
from wtforms.validators import DataRequired, Length

from patient_online.domain.appointments import (
    REASON_MAX_LENGTH,
    BookingFailed,
    BookingLimitReached,
    BookingUnconfirmed,
    CancellationRefused,
    ReasonTooLong,
)
from patient_online.domain.errors import DomainError, InputError, NotFound, SlotUnavailable
from patient_online.domain.waitlist import WEEKDAYS, DayPart
from patient_online.services import waitlist
from patient_online.web.filters import uk_datetime
from patient_online.web.input import Form
from patient_online.wiring import uow

from . import acting, bp

TOO_LONG = f"Enter a reason of {REASON_MAX_LENGTH} characters or fewer"
CHOOSE_DAYS = "Choose at least one day you can come"
CHOOSE_PARTS = "Choose at least one time of day you can come"
CHOOSE_WEEKS = "Choose how far ahead you could come"


class EarlierForm(Form):
    """What the patient can do: the type, the days, the times of day, and how far ahead."""

    slot_type = SelectField("Type of appointment", validate_choice=False)
    weekdays = SelectMultipleField(
        "Which days can you come?", choices=[(str(n), day) for n, day in enumerate(WEEKDAYS)], validate_choice=False
    )
    parts = SelectMultipleField(
        "What times can you come?", choices=[(p.value, p.label) for p in DayPart], validate_choice=False
    )
    weeks = SelectField("How far ahead can you come?", validate_choice=False)
    replacing = HiddenField()

    def validate_weekdays(self, field: Field) -> None:
        if not field.data or not all(v in {str(n) for n in range(7)} for v in field.data):
            raise ValidationError(CHOOSE_DAYS)

    def validate_parts(self, field: Field) -> None:
        if not field.data or not all(v in {p.value for p in DayPart} for v in field.data):
            raise ValidationError(CHOOSE_PARTS)

    def validate_weeks(self, field: Field) -> None:
        if field.data not in {value for value, _ in field.choices or []}:
            raise ValidationError(CHOOSE_WEEKS)


class AcceptForm(Form):
    reason = TextAreaField(
        "Why do you need this appointment?",
        validators=[
            DataRequired("Enter the reason for your appointment"),
            Length(max=REASON_MAX_LENGTH, message=TOO_LONG),
        ],
    )


def _weeks_label(weeks: int) -> str:
    return "1 week" if weeks == 1 else f"{weeks} weeks"


def _choices(form: EarlierForm, page: waitlist.WaitlistPage) -> None:
    form.slot_type.choices = [("", "Any type"), *((t, t) for t in page.slot_types)]
    form.weeks.choices = [(str(w), _weeks_label(w)) for w in page.weeks]


def _fill(form: EarlierForm, page: waitlist.WaitlistPage) -> None:
    """Show what the patient asked for last time (to change it), or sensible starting choices."""
    if page.entry is not None:
        wish = page.entry.wish
        form.slot_type.data = wish.slot_type
        form.weekdays.data = [str(d) for d in sorted(wish.weekdays)]
        form.parts.data = [p.value for p in DayPart if p in wish.parts]
        weeks = max(1, -(-(wish.until - page.entry.joined_at.date()).days // 7))
        form.weeks.data = str(min(weeks, page.weeks[-1])) if page.weeks else ""
    else:
        form.slot_type.data = ""
        form.weekdays.data = []
        form.parts.data = []
        form.weeks.data = str(page.weeks[min(1, len(page.weeks) - 1)]) if page.weeks else ""
    if page.replacing is not None:
        form.replacing.data = page.replacing.id
    elif page.entry is not None and page.entry.replacing_ref:
        form.replacing.data = page.entry.replacing_ref


def _render(form: EarlierForm, page: waitlist.WaitlistPage, *, changing: bool, status: int = 200) -> tuple[str, int]:
    return render_template(
        "patient/appointments/earlier.html",
        form=form,
        page=page,
        changing=changing,
    ), status


@bp.route("/appointments/earlier", methods=["GET", "POST"])
def earlier_appointments() -> Response | tuple[str, int]:
    """Ask for an earlier appointment; after joining, what was asked for and a way to leave the list."""
    current = acting()
    form = EarlierForm()
    replacing = (form.replacing.data if request.method == "POST" else request.args.get("replacing")) or None
    try:
        page = waitlist.waitlist_page(uow(), current, replacing)
    except NotFound:
        abort(404)
    if not page.enabled:
        if request.method == "POST":
            raise waitlist.WaitlistOff()  # the practice turned the list off after the form was shown: 403
        return render_template("patient/appointments/earlier.html", form=None, page=page, changing=False), 200
    _choices(form, page)
    if request.method == "POST":
        if form.validate():
            try:
                waitlist.join(
                    uow(),
                    current,
                    slot_type=form.slot_type.data or "",
                    weekdays={int(d) for d in form.weekdays.data or []},
                    parts=set(form.parts.data or []),
                    weeks=int(form.weeks.data or 0),
                    replacing=replacing,
                )
            except NotFound:
                abort(404)
            except InputError as exc:
                for name, problem in (exc.fields or {"slot_type": exc.message}).items():
                    field = form._fields.get(name, form.slot_type)
                    field.errors = [*field.errors, problem]
            else:
                who = "" if not current.is_proxy else f" for {current.patient.given_name}"
                flash(
                    f"You are on the list for an earlier appointment{who}. We will email you when we find one.",
                    "success",
                )
                return redirect(url_for(".earlier_appointments"))
        return _render(form, page, changing=page.entry is not None, status=400)
    changing = page.entry is None or page.replacing is not None or request.args.get("change") == "1"
    _fill(form, page)
    return _render(form, page, changing=changing)


@bp.post("/appointments/earlier/leave")
def leave_earlier_list() -> Response:
    """Take the patient off the list; any offer they hold goes to the next person (CSRF checked app-wide)."""
    if waitlist.leave(uow(), acting()):
        flash("You are no longer on the list for an earlier appointment.", "success")
    else:
        flash("You were not on the list for an earlier appointment.", "info")
    return redirect(url_for(".appointments"))


def _offer_page(
    view: waitlist.OfferView, form: AcceptForm | None = None, error: str = "", status: int = 200
) -> tuple[str, int]:
    return render_template(
        "patient/appointments/offer.html",
        offer=view,
        form=form or AcceptForm(),
        error=error,
        maxlength=REASON_MAX_LENGTH,
    ), status


def _ended(view: waitlist.OfferView, status: int) -> tuple[str, int]:
    return render_template("patient/appointments/offer_ended.html", offer=view), status


def _offer(offer_id: int) -> waitlist.OfferView:
    try:
        return waitlist.offer_for(uow(), acting(), offer_id)
    except NotFound:
        abort(404)


def _problem(title: str, message: str, status: int) -> tuple[str, int]:
    return render_template(
        "patient/appointments/problem.html",
        title=title,
        message=message,
        back=url_for(".earlier_appointments"),
        back_text="Back to earlier appointments",
    ), status


@bp.get("/appointments/offers/<id:offer_id>")
def earlier_offer(offer_id: int) -> tuple[str, int]:
    """The time offered to the patient, held for them a few minutes: accept it, or say no thanks."""
    view = _offer(offer_id)
    if not view.live:
        return _ended(view, 200)
    return _offer_page(view)


@bp.post("/appointments/offers/<id:offer_id>/accept")
def accept_earlier_offer(offer_id: int) -> Response | tuple[str, int]:
    """Book the offered time (and cancel the appointment it replaces, after the booking)."""
    view = _offer(offer_id)
    form = AcceptForm()
    if not form.validate_on_submit():
        if not view.live:
            return _ended(view, 409)
        return _offer_page(view, form, status=400)
    current = acting()
    try:
        accepted = waitlist.accept_offer(uow(), current, offer_id, form.reason.data or "")
    except NotFound:
        abort(404)
    except waitlist.OfferEnded:
        return _ended(view, 409)
    except (ReasonTooLong, InputError) as exc:
        form.reason.errors = [exc.message]
        return _offer_page(view, form, status=400)
    except SlotUnavailable as exc:
        return _problem("That time is no longer available", exc.message, 409)
    except (BookingLimitReached, CancellationRefused) as exc:
        return _problem("You cannot book this appointment online", exc.message, 409)
    except BookingUnconfirmed as exc:
        return _problem("Your appointment may have been booked", exc.message, 503)
    except BookingFailed as exc:
        return _offer_page(view, form, error=exc.message, status=503)
    booked = accepted.appointment
    words = "Your earlier appointment is booked"
    if view.replacing_ref and view.replacing_start is not None:
        if not accepted.replaced_cancelled:
            flash(
                f"{words}, but we could not cancel your appointment on {uk_datetime(view.replacing_start)}. "
                "You now have both: cancel the one you do not need.",
                "info",
            )
            return redirect(url_for(".appointment_booked", appointment_id=booked.id))
        words += f", and your appointment on {uk_datetime(view.replacing_start)} is cancelled"
    flash(f"{words}.", "success")
    return redirect(url_for(".appointment_booked", appointment_id=booked.id, changed=1 if view.replacing_ref else None))


@bp.post("/appointments/offers/<id:offer_id>/decline")
def decline_earlier_offer(offer_id: int) -> Response:
    """No thanks: the time goes to the next person, and the patient stays on the list."""
    try:
        waitlist.decline_offer(uow(), acting(), offer_id)
    except NotFound:
        abort(404)
    flash("You said no to that time. You are still on the list for an earlier appointment.", "success")
    return redirect(url_for(".earlier_appointments"))


@bp.context_processor
def _earlier_status() -> dict[str, Any]:
    """``earlier_status()`` for the appointments list: the patient's entry and any offer (read only when asked)."""

    def earlier_status() -> waitlist.WaitlistPage | None:
        try:
            page = waitlist.waitlist_page(uow(), acting())
        except DomainError:
            return None
        return page if page.enabled else None

    return {"earlier_status": earlier_status}
