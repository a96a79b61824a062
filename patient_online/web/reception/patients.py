"""/reception/patients: find a patient, see their online accounts, issue linkage letters, suspend access."""

from __future__ import annotations

import datetime as dt

from flask import flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response
from wtforms import BooleanField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from patient_online.domain.errors import ClinicalSystemError, InputError
from patient_online.domain.verification import DOCUMENTS, PHOTO_DOCUMENTS, identity_check
from patient_online.services import linking, patient_search, verification
from patient_online.services.patient_search import PatientQuery
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

    q = StringField("NHS number or surname", validators=[Length(max=100, message="Enter 100 characters or fewer")])
    born = DateParts("Date of birth", required_message="")
    given = StringField("First name (optional)", validators=[Length(max=100, message="Enter 100 characters or fewer")])
    postcode = StringField("Postcode (optional)", validators=[Length(max=10, message="Enter 10 characters or fewer")])


class OpenForm(Form):
    nhs_number = StringField("NHS number")


class ReasonForm(Form):
    reason = TextAreaField(
        "Reason",
        validators=[
            DataRequired("Enter a reason"),
            Length(max=500, message="Enter a reason of 500 characters or fewer"),
        ],
    )


@bp.get("/patients")
def patients() -> tuple[str, int]:
    form = SearchForm(request.args)
    outcome = None
    status = 200
    if request.args:
        if form.validate():
            query = PatientQuery(
                text=form.q.data or "",
                born=form.born.data,
                given_name=form.given.data or "",
                postcode=form.postcode.data or "",
            )
            outcome = patient_search.find_patients(uow(), g.user, g.practice, query)
        else:
            status = 400
    return render_template("reception/patients.html", form=form, outcome=outcome), status


@bp.post("/patients/open")
def open_patient() -> Response:
    """A registered patient not yet known to the gateway: make their row from the clinical system, then open
    their page (the NHS number travels in the form, never in an address)."""
    form = OpenForm()
    if not form.validate_on_submit():
        return redirect(url_for("reception.patients"))
    try:
        patient_id = patient_search.open_patient(uow(), g.user, g.practice, form.nhs_number.data or "")
    except InputError as exc:
        flash(f"{exc.message}.", "error")
        return redirect(url_for("reception.patients"))
    except ClinicalSystemError:
        flash("The clinical system cannot be reached just now. Try again in a few minutes.", "error")
        return redirect(url_for("reception.patients"))
    return redirect(url_for("reception.patient", patient_id=patient_id))


@bp.get("/patients/<id:patient_id>")
def patient(patient_id: int) -> str:
    page = verification.patient_page(uow(), g.user, g.practice, patient_id)
    return render_template("reception/patient.html", page=page, patient=page.patient, **access_context(page.access))


class LetterCheckForm(IdentityCheckForm):
    replace = BooleanField("I understand the earlier letter will stop working")


def _letter_check_page(patient_id: int, form: LetterCheckForm, status: int = 200) -> tuple[str, int]:
    page = verification.letter_page(uow(), g.user, g.practice, patient_id)
    return (
        render_template(
            "reception/letter_check.html",
            patient=page.patient,
            issued=page.letter,
            replaces=page.replaces,
            linked=page.linked,
            form=form,
            documents=DOCUMENTS,
            photo=PHOTO_DOCUMENTS,
        ),
        status,
    )


@bp.get("/patients/<id:patient_id>/letter/new")
def new_letter(patient_id: int) -> tuple[str, int]:
    """Before a letter: how was this person's identity checked? What is recorded is what reception says."""
    return _letter_check_page(patient_id, LetterCheckForm(prefix="check"))


@bp.post("/patients/<id:patient_id>/letter")
def issue_letter(patient_id: int) -> Response | tuple[str, int]:
    form = LetterCheckForm(prefix="check")
    if form.validate_on_submit():
        try:
            check = identity_check(
                form.method.data or "", list(form.documents.data or []), bool(form.remote.data), form.notes.data or ""
            )
            if not form.replace.data and verification.letter_page(uow(), g.user, g.practice, patient_id).replaces:
                raise InputError("Confirm that the earlier letter will stop working", "replace")
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


def _account_page(patient_id: int, link_id: int, action: str, form: ReasonForm, status: int = 200) -> tuple[str, int]:
    found = verification.account_of_patient(uow(), g.user, g.practice, patient_id, link_id)
    return (
        render_template(
            "reception/account_change.html",
            patient=found.patient,
            account=found.account,
            suspending=action == "suspend",
            form=form,
        ),
        status,
    )


@bp.get("/patients/<id:patient_id>/links/<id:link_id>/<any(suspend, reinstate):action>")
def confirm_suspend(patient_id: int, link_id: int, action: str) -> tuple[str, int]:
    """Say what suspending (or reinstating) will do, and ask for the reason, before doing it."""
    return _account_page(patient_id, link_id, action, ReasonForm(formdata=None))


@bp.post("/patients/<id:patient_id>/links/<id:link_id>/<any(suspend, reinstate):action>")
def suspend(patient_id: int, link_id: int, action: str) -> Response | tuple[str, int]:
    form = ReasonForm()
    if not form.validate_on_submit():
        return _account_page(patient_id, link_id, action, form, 400)
    try:
        verification.set_suspended(
            uow(), g.user, g.practice, patient_id, link_id, action == "suspend", form.reason.data or ""
        )
    except InputError as exc:
        form.reason.errors = [f"{exc.message}"]
        return _account_page(patient_id, link_id, action, form, 400)
    flash(
        "Online access suspended. We have emailed the account holder."
        if action == "suspend"
        else "Online access reinstated. We have emailed the account holder.",
        "success",
    )
    return redirect(url_for("reception.patient", patient_id=patient_id))
