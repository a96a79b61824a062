"""A patient's data at the desk: reception produces the download for a patient who asks (recorded in the
audit), and closes a patient's online account when asked to, with a reason."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, url_for
from werkzeug.wrappers import Response
from wtforms import TextAreaField

from patient_online.domain.errors import InputError
from patient_online.services import account_closure, subject_access
from patient_online.web.input import Form
from patient_online.web.patient.my_data import ConfirmForm, zip_response
from patient_online.wiring import uow

from . import bp


class CloseForm(Form):
    reason = TextAreaField("Why is the account being closed?")


@bp.get("/patients/<id:patient_id>/data")
def patient_data(patient_id: int) -> str:
    return render_template("reception/subject_access.html", patient_id=patient_id, form=ConfirmForm())


@bp.post("/patients/<id:patient_id>/data")
def produce_patient_data(patient_id: int) -> Response | tuple[str, int]:
    form = ConfirmForm()
    if not form.validate_on_submit():
        return render_template("reception/subject_access.html", patient_id=patient_id, form=form), 400
    return zip_response(subject_access.produce_at_desk(uow(), g.user, g.practice, patient_id))


def _close_page(patient_id: int, user_id: int, form: CloseForm, status: int = 200) -> tuple[str, int]:
    closing = account_closure.closing_at_desk(uow(), g.user, g.practice, patient_id, user_id)
    return render_template("reception/close_account.html", closing=closing, form=form), status


@bp.get("/patients/<id:patient_id>/accounts/<id:user_id>/close")
def close_account(patient_id: int, user_id: int) -> tuple[str, int]:
    return _close_page(patient_id, user_id, CloseForm())


@bp.post("/patients/<id:patient_id>/accounts/<id:user_id>/close")
def close_account_post(patient_id: int, user_id: int) -> Response | tuple[str, int]:
    form = CloseForm()
    if not form.validate_on_submit():
        return _close_page(patient_id, user_id, form, 400)
    try:
        closed = account_closure.close_at_desk(uow(), g.user, g.practice, patient_id, user_id, form.reason.data or "")
    except InputError as exc:
        form.reason.errors = [exc.message]
        return _close_page(patient_id, user_id, form, 400)
    flash(f"The online account {closed.email} is closed. We have emailed them to say so.", "success")
    return redirect(url_for("reception.patient", patient_id=patient_id))
