"""/reception/patients: find a patient, see their online accounts, issue linkage letters, suspend access."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import StringField, TextAreaField
from wtforms.validators import Length

from patient_online.extensions import db
from patient_online.models import AccountLink, LinkageLetter, ProxyLink, Verification
from patient_online.services import linking, verification
from patient_online.services import patient_access as access_service
from patient_online.services.verification import VerificationError
from patient_online.web.fields import DateParts

from . import bp
from .access import access_context


class SearchForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search changes nothing

    q = StringField("NHS number or name")
    born = DateParts("Date of birth (optional)", required_message="")


class ReasonForm(FlaskForm):
    reason = TextAreaField("Reason", validators=[Length(max=500)])


@bp.get("/patients")
def patients() -> str:
    form = SearchForm(request.args)
    results = None
    if request.args:
        form.validate()
        results = verification.search_patients(db.session, g.user, g.practice, form.q.data or "", form.born.data)
    return render_template("reception/patients.html", form=form, results=results)


@bp.get("/patients/<int:patient_id>")
def patient(patient_id: int) -> str:
    found = verification.patient_of_practice(db.session, g.user, g.practice, patient_id)
    links = db.session.scalars(select(AccountLink).where(AccountLink.patient_id == found.id)).all()
    proxies = db.session.scalars(select(ProxyLink).where(ProxyLink.patient_id == found.id)).all()
    checks = db.session.scalars(
        select(Verification).where(Verification.patient_id == found.id).order_by(Verification.verified_at.desc())
    ).all()
    letter = db.session.scalar(
        select(LinkageLetter).where(LinkageLetter.patient_id == found.id).order_by(LinkageLetter.id.desc()).limit(1)
    )
    panel = access_service.view_patient_access(db.session, g.user, g.practice, found.id)
    return render_template(
        "reception/patient.html",
        patient=found,
        links=links,
        proxies=proxies,
        checks=checks,
        letter=letter,
        reason_form=ReasonForm(),
        **access_context(panel),
    )


@bp.post("/patients/<int:patient_id>/letter")
def issue_letter(patient_id: int) -> Response:
    found = verification.patient_of_practice(db.session, g.user, g.practice, patient_id)
    key = linking.issue_letter(db.session, found, g.user)
    # The key is shown once, on the printable letter; only its hash is stored.
    session["letter_key"] = {"patient_id": found.id, "key": key}
    return redirect(url_for("reception.letter", patient_id=found.id))


@bp.get("/patients/<int:patient_id>/letter")
def letter(patient_id: int) -> Response | str:
    found = verification.patient_of_practice(db.session, g.user, g.practice, patient_id)
    held = session.pop("letter_key", None)
    if not held or held.get("patient_id") != found.id:
        flash(
            "A Linkage Key is shown only once. Issue a new letter to print it again (the old key will stop working).",
            "info",
        )
        return redirect(url_for("reception.patient", patient_id=found.id))
    issued = db.session.scalar(
        select(LinkageLetter).where(LinkageLetter.patient_id == found.id).order_by(LinkageLetter.id.desc()).limit(1)
    )
    return render_template("reception/letter.html", patient=found, key=held["key"], issued=issued)


@bp.post("/patients/<int:patient_id>/links/<int:link_id>/<any(suspend, reinstate):action>")
def suspend(patient_id: int, link_id: int, action: str) -> Response | str:
    found = verification.patient_of_practice(db.session, g.user, g.practice, patient_id)
    form = ReasonForm()
    if form.validate_on_submit():
        try:
            verification.set_suspended(
                db.session, g.user, g.practice, link_id, action == "suspend", form.reason.data or ""
            )
        except VerificationError as exc:
            flash(f"{exc.message}.", "error")
        else:
            flash("Online access suspended." if action == "suspend" else "Online access reinstated.", "success")
    return redirect(url_for("reception.patient", patient_id=found.id))
