"""/reception/patients: find a patient, see their online accounts, issue linkage letters, suspend access."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response
from wtforms import StringField, TextAreaField
from wtforms.validators import Length

from patient_online.domain.errors import InputError
from patient_online.services import linking, verification
from patient_online.web.fields import DateParts
from patient_online.web.input import Form
from patient_online.wiring import uow

from . import bp
from .access import access_context


class SearchForm(Form):
    class Meta:
        csrf = False  # a GET search changes nothing

    q = StringField("NHS number or name")
    born = DateParts("Date of birth (optional)", required_message="")


class ReasonForm(Form):
    reason = TextAreaField("Reason", validators=[Length(max=500)])


@bp.get("/patients")
def patients() -> str:
    form = SearchForm(request.args)
    results = None
    if request.args:
        form.validate()
        results = verification.search_patients(uow(), g.user, g.practice, form.q.data or "", form.born.data)
    return render_template("reception/patients.html", form=form, results=results)


@bp.get("/patients/<id:patient_id>")
def patient(patient_id: int) -> str:
    page = verification.patient_page(uow(), g.user, g.practice, patient_id)
    return render_template(
        "reception/patient.html",
        patient=page.patient,
        links=page.links,
        proxies=page.proxies,
        checks=page.checks,
        letter=page.letter,
        reason_form=ReasonForm(),
        **access_context(page.access),
    )


@bp.post("/patients/<id:patient_id>/letter")
def issue_letter(patient_id: int) -> Response:
    key = linking.issue_letter(uow(), g.user, g.practice, patient_id)
    # The key is shown once, on the printable letter; only its hash is stored.
    session["letter_key"] = {"patient_id": patient_id, "key": key}
    return redirect(url_for("reception.letter", patient_id=patient_id))


@bp.get("/patients/<id:patient_id>/letter")
def letter(patient_id: int) -> Response | str:
    page = verification.letter_page(uow(), g.user, g.practice, patient_id)
    held = session.pop("letter_key", None)
    if not held or held.get("patient_id") != page.patient.id:
        flash(
            "A Linkage Key is shown only once. Issue a new letter to print it again (the old key will stop working).",
            "info",
        )
        return redirect(url_for("reception.patient", patient_id=page.patient.id))
    return render_template("reception/letter.html", patient=page.patient, key=held["key"], issued=page.letter)


@bp.post("/patients/<id:patient_id>/links/<id:link_id>/<any(suspend, reinstate):action>")
def suspend(patient_id: int, link_id: int, action: str) -> Response | str:
    form = ReasonForm()
    if not form.validate_on_submit():
        verification.patient_of_practice(uow(), g.user, g.practice, patient_id)
        return redirect(url_for("reception.patient", patient_id=patient_id))
    try:
        verification.set_suspended(
            uow(), g.user, g.practice, patient_id, link_id, action == "suspend", form.reason.data or ""
        )
    except InputError as exc:
        flash(f"{exc.message}.", "error")
    else:
        flash("Online access suspended." if action == "suspend" else "Online access reinstated.", "success")
    return redirect(url_for("reception.patient", patient_id=patient_id))
