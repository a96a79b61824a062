"""/manage/rules: the practice's rules for appointments (earlier appointments too), repeat prescriptions and record
access (rules 6-8)."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response
from wtforms import Field, RadioField, SelectMultipleField, StringField, TextAreaField, ValidationError

from patient_online.domain.controls import LIMITS, PracticeRules, clean_list, next_bank_holidays
from patient_online.domain.errors import InputError
from patient_online.domain.prescriptions import add_working_days
from patient_online.services import controls
from patient_online.services.controls import RulesPage
from patient_online.web.fields import DateParts
from patient_online.web.input import Form
from patient_online.wiring import uow

from . import bp

NUMBERS = {
    "booking_horizon_days": "Booking horizon must be a whole number of days, like 28",
    "min_lead_time_hours": "Minimum lead time must be a whole number of hours, like 2",
    "max_future_appointments": "Maximum future appointments must be a whole number, like 2",
    "cancellation_cutoff_hours": "Cancellation cutoff must be a whole number of hours, like 24",
    "turnaround_working_days": "Turnaround must be a whole number of working days, like 2",
    "max_note_length": "Maximum note length must be a whole number of characters, like 300",
    "waitlist_hold_minutes": "How long an offer is held must be a whole number of minutes, like 15",
}
# A form rendered before these fields existed does not send them: the practice's value stands (an open tab, a
# script). The radio keeps its shown value by itself; a number left out is not the same as a number cleared.
KEPT_WHEN_ABSENT = frozenset({"waitlist_hold_minutes"})


class RulesForm(Form):
    online_slot_types = SelectMultipleField("Appointment types patients can book online", validate_choice=False)
    booking_horizon_days = StringField("Booking horizon (days)")
    min_lead_time_hours = StringField("Minimum lead time (hours)")
    max_future_appointments = StringField("Maximum future appointments per patient")
    cancellation_allowed = RadioField(
        "Can patients cancel online?", choices=[("yes", "Yes"), ("no", "No")], validate_choice=False
    )
    cancellation_cutoff_hours = StringField("Cancellation cutoff (hours before the appointment)")
    turnaround_working_days = StringField("Turnaround (working days)")
    max_note_length = StringField("Maximum length of a note with a request (characters)")
    never_online = TextAreaField("Medicines never orderable online")
    record_access_start = DateParts(
        "Earliest date of record entries shown", required_message="Enter the earliest date of record entries shown"
    )
    waitlist_enabled = RadioField(
        "Offer freed times to patients waiting for an earlier appointment?",
        choices=[("yes", "Yes"), ("no", "No")],
        validate_choice=False,
    )
    waitlist_hold_minutes = StringField("How long an offer is held (minutes)")

    def validate_cancellation_allowed(self, field: Field) -> None:
        if field.data not in ("yes", "no"):
            raise ValidationError("Choose whether patients can cancel online")

    def validate_waitlist_enabled(self, field: Field) -> None:
        if field.data not in ("yes", "no"):
            raise ValidationError("Choose whether to offer freed times to patients waiting for an earlier appointment")


def _sent(field: Field) -> bool:
    """Whether the submitted form had the field at all."""
    return bool(field.raw_data)


def _whole(form: RulesForm, name: str, current: PracticeRules) -> int:
    field = getattr(form, name)
    if name in KEPT_WHEN_ABSENT and not _sent(field):
        field.data = str(getattr(current, name))
        return int(getattr(current, name))
    text = (field.data or "").strip()
    try:
        return int(text)
    except ValueError:
        field.errors = [*field.errors, NUMBERS[name]]
        return 0


def _data(rules: PracticeRules) -> dict[str, object]:
    return {
        "online_slot_types": list(rules.online_slot_types),
        "booking_horizon_days": str(rules.booking_horizon_days),
        "min_lead_time_hours": str(rules.min_lead_time_hours),
        "max_future_appointments": str(rules.max_future_appointments),
        "cancellation_allowed": "yes" if rules.cancellation_allowed else "no",
        "cancellation_cutoff_hours": str(rules.cancellation_cutoff_hours),
        "turnaround_working_days": str(rules.turnaround_working_days),
        "max_note_length": str(rules.max_note_length),
        "never_online": "\n".join(rules.never_online),
        "record_access_start": rules.record_access_start,
        "waitlist_enabled": "yes" if rules.waitlist_enabled else "no",
        "waitlist_hold_minutes": str(rules.waitlist_hold_minutes),
    }


@bp.route("/rules", methods=["GET", "POST"])
def rules() -> Response | str | tuple[str, int]:
    page = controls.rules_page(uow(), g.practice, request.args.get("page", 1, type=int) or 1)
    current = page.current
    form = RulesForm(data=_data(current))
    form.online_slot_types.choices = [(name, name) for name in page.offered.names]
    if form.is_submitted():
        valid = form.validate()
        numbers = {name: _whole(form, name, current) for name in NUMBERS}
        if valid and not any(getattr(form, name).errors for name in NUMBERS):
            wanted = PracticeRules(
                online_slot_types=tuple(form.online_slot_types.data or ()),
                cancellation_allowed=form.cancellation_allowed.data == "yes",
                waitlist_enabled=form.waitlist_enabled.data == "yes",
                never_online=clean_list(form.never_online.data or ""),
                record_access_start=form.record_access_start.data or current.record_access_start,
                **numbers,
            )
            try:
                changes = controls.set_rules(uow(), g.practice, g.user, wanted, page.offered_types)
            except InputError as exc:
                for name, problem in exc.fields.items():
                    getattr(form, name).errors = [problem]
            else:
                flash(controls.rules_saved_words(changes), "success")
                return redirect(url_for("manager.rules"))
        return _page(form, page), 400
    return _page(form, page)


def _page(form: RulesForm, page: RulesPage) -> str:
    day = page.today
    return render_template(
        "manager/rules.html",
        form=form,
        offered=page.offered,
        limits=LIMITS,
        ready_example=(day, add_working_days(day, page.current.turnaround_working_days)),
        history=page.history,
        bank_holidays=next_bank_holidays(day),
    )
