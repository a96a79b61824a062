"""/reception/patients: find a patient, see their online accounts, issue linkage letters, suspend access."""

from __future__ import annotations

import datetime as dt

from flask import flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response
from wtforms import StringField, TextAreaField
from wtforms.validators import Length

from patient_online.domain.errors import InputError
from patient_online.domain.verification import DOCUMENTS, PHOTO_DOCUMENTS, identity_check
from patient_online.services import linking, verification
from patient_online.web import held
from patient_online.web.fields import DateParts
from patient_online.web.input import Form
from patient_online.wiring import uow

from . import bp
from .access import access_context
from .verifications import IdentityCheckForm

LETTER_KEY = "letter_key"
# Long enough to reach the printer, short enough that a forgotten key does not linger.
LETTER_KEY_HELD_FOR = dt.timedelta(minutes=15)


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


def _letter_check_page(patient_id: int, form: IdentityCheckForm, status: int = 200) -> tuple[str, int]:
    page = verification.letter_page(uow(), g.user, g.practice, patient_id)
    return (
        render_template(
            "reception/letter_check.html",
            patient=page.patient,
            issued=page.letter,
            form=form,
            documents=DOCUMENTS,
            photo=PHOTO_DOCUMENTS,
        ),
        status,
    )


@bp.get("/patients/<id:patient_id>/letter/new")
def new_letter(patient_id: int) -> tuple[str, int]:
    """Before a letter: how was this person's identity checked? What is recorded is what reception says."""
    return _letter_check_page(patient_id, IdentityCheckForm(prefix="check"))


@bp.post("/patients/<id:patient_id>/letter")
def issue_letter(patient_id: int) -> Response | tuple[str, int]:
    form = IdentityCheckForm(prefix="check")
    if form.validate_on_submit():
        try:
            check = identity_check(
                form.method.data or "", list(form.documents.data or []), bool(form.remote.data), form.notes.data or ""
            )
            key = linking.issue_letter(uow(), g.user, g.practice, patient_id, check)
        except InputError as exc:
            getattr(form, exc.field if exc.field in form else "method").errors = [exc.message]
        else:
            # The key is shown once, on the printable letter: only its hash is stored, and until it is printed
            # it is held on the server (sealed), never in the session cookie.
            held.hold(LETTER_KEY, {"patient_id": patient_id, "key": key}, LETTER_KEY_HELD_FOR)
            return redirect(url_for("reception.letter", patient_id=patient_id))
    return _letter_check_page(patient_id, form, 400)


@bp.get("/patients/<id:patient_id>/letter")
def letter(patient_id: int) -> Response | str:
    page = verification.letter_page(uow(), g.user, g.practice, patient_id)
    key = held.take(LETTER_KEY)
    if not key or key.get("patient_id") != page.patient.id:
        flash(
            "A Linkage Key is shown only once. Issue a new letter to print it again (the old key will stop working).",
            "info",
        )
        return redirect(url_for("reception.patient", patient_id=page.patient.id))
    return render_template("reception/letter.html", patient=page.patient, key=key["key"], issued=page.letter)


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
