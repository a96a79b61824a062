"""Reception: one patient's online access (record level, services, SNOMED CT access codes).

The panel is a partial, templates/reception/_patient_access.html, that the patient page includes with
``**access_context(panel)``; GET /reception/patients/<id>/access shows it on a page of its own too.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response
from wtforms import RadioField, SelectField, ValidationError

from patient_online.domain.access import FLAG_LABELS
from patient_online.domain.errors import ClinicalSystemError, InputError
from patient_online.domain.record import RecordLevel
from patient_online.services import patient_access as service
from patient_online.services.patient_access import LEVEL_CHOICES, AccessChange, AccessPanel
from patient_online.web.fields import DateParts
from patient_online.web.input import Form
from patient_online.wiring import uow

from . import bp

DEFAULT = "default"
ON_OFF = [("on", "On"), ("off", "Off")]


class AccessForm(Form):
    record_level = RadioField("GP record", validate_choice=False)
    appointments = RadioField("Online appointments", choices=ON_OFF, validate_choice=False)
    prescriptions = RadioField("Repeat prescriptions", choices=ON_OFF, validate_choice=False)

    def validate_record_level(self, field: RadioField) -> None:
        if field.data not in {value for value, _ in field.choices or []}:
            raise ValidationError("Choose a record access level")

    def validate_appointments(self, field: RadioField) -> None:
        if field.data not in ("on", "off"):
            raise ValidationError("Choose whether online appointments are on or off for this patient")

    def validate_prescriptions(self, field: RadioField) -> None:
        if field.data not in ("on", "off"):
            raise ValidationError("Choose whether repeat prescriptions are on or off for this patient")


class FlagForm(Form):
    code = SelectField(
        "Code",
        choices=[("", "Choose a code"), *[(code, f"{label} ({code})") for code, label in FLAG_LABELS.items()]],
        validate_choice=False,
    )
    recorded_on = DateParts("Date recorded", required_message="Enter the date the code was recorded")


def _access_form(panel: AccessPanel, formdata: Any | None = None) -> AccessForm:
    form = AccessForm(
        formdata=formdata,
        data={
            "record_level": panel.record_level.value if panel.record_level else DEFAULT,
            "appointments": "on" if panel.appointments_enabled else "off",
            "prescriptions": "on" if panel.prescriptions_enabled else "off",
        },
    )
    form.record_level.choices = [
        (DEFAULT, f"Practice default ({panel.practice_default.label.lower()})"),
        *[(level.value, level.label) for level in LEVEL_CHOICES],
    ]
    return form


def access_context(
    panel: AccessPanel, form: AccessForm | None = None, flag_form: FlagForm | None = None
) -> dict[str, Any]:
    """What the partial needs; the reception patient page passes this to render_template."""
    return {
        "access_panel": panel,
        "access_form": form or _access_form(panel),
        "flag_form": flag_form or FlagForm(formdata=None),
    }


def _back(patient_id: int) -> Response:
    if request.form.get("return_to") == "patient" and "reception.patient" in current_app.view_functions:
        return redirect(url_for("reception.patient", patient_id=patient_id) + "#online-access")
    return redirect(url_for("reception.patient_access", patient_id=patient_id))


def _page(panel: AccessPanel, status: int = 200, **forms: Any) -> tuple[str, int]:
    return render_template("reception/access.html", **access_context(panel, **forms)), status


@bp.get("/patients/<id:patient_id>/access")
def patient_access(patient_id: int) -> tuple[str, int]:
    panel = service.view_patient_access(uow(), g.user, g.practice, patient_id)
    return _page(panel)


@bp.post("/patients/<id:patient_id>/access")
def change_patient_access(patient_id: int) -> Response | tuple[str, int]:
    panel = service.access_panel(uow(), g.user, g.practice, patient_id)
    form = _access_form(panel, request.form)
    if form.validate():
        change = AccessChange(
            record_level=None if form.record_level.data == DEFAULT else RecordLevel(form.record_level.data),
            appointments=form.appointments.data == "on",
            prescriptions=form.prescriptions.data == "on",
        )
        try:
            service.set_patient_access(uow(), g.user, g.practice, patient_id, change)
        except InputError as exc:
            getattr(form, exc.field or "record_level").errors = [exc.message]
        else:
            flash(f"Online access saved for {panel.patient.full_name}. It applies from their next page.", "success")
            return _back(patient_id)
    return _page(panel, 400, form=form)


@bp.post("/patients/<id:patient_id>/access/flags")
def record_access_flag(patient_id: int) -> Response | tuple[str, int]:
    panel = service.access_panel(uow(), g.user, g.practice, patient_id)
    form = FlagForm(request.form)
    if form.validate():
        try:
            service.record_flag(uow(), g.user, g.practice, patient_id, form.code.data or "", form.recorded_on.data)
        except InputError as exc:
            getattr(form, exc.field or "code").errors = [exc.message]
        else:
            flash(f"Code recorded: {FLAG_LABELS[form.code.data or '']}.", "success")
            return _back(patient_id)
    return _page(panel, 400, flag_form=form)


@bp.post("/patients/<id:patient_id>/access/flags/<id:index>/remove")
def remove_access_flag(patient_id: int, index: int) -> Response:
    form = Form()
    if form.validate_on_submit():
        try:
            service.remove_flag(uow(), g.user, g.practice, patient_id, index)
        except InputError as exc:
            flash(exc.message, "error")
        else:
            flash("Code removed.", "success")
    return _back(patient_id)


@bp.post("/patients/<id:patient_id>/access/refresh")
def refresh_access_flags(patient_id: int) -> Response:
    form = Form()
    if form.validate_on_submit():
        try:
            count = service.refresh_flags(uow(), g.user, g.practice, patient_id)
        except InputError as exc:
            flash(exc.message, "error")
        except ClinicalSystemError:
            flash("The clinical system cannot be reached just now. The codes shown are the last ones read.", "error")
        else:
            flash(f"Codes read from the clinical system: {count} access code{'s' if count != 1 else ''}.", "success")
    return _back(patient_id)
