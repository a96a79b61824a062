"""/link: link the account to the GP record with a linkage letter or a request to the practice."""

from __future__ import annotations

from flask import current_app, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length

from patient_online.auth import throttle
from patient_online.domain.errors import InputError
from patient_online.extensions import limiter
from patient_online.services import linking
from patient_online.web.fields import DateParts
from patient_online.web.input import Form
from patient_online.wiring import uow

from . import bp


class LetterForm(Form):
    ods_code = StringField(
        "Practice ODS code", validators=[DataRequired("Enter the practice ODS code from your letter")]
    )
    account_id = StringField("Account ID", validators=[DataRequired("Enter the Account ID from your letter")])
    linkage_key = StringField("Linkage Key", validators=[DataRequired("Enter the Linkage Key from your letter")])


class RequestForm(Form):
    practice = SelectField("Your GP practice", validators=[DataRequired("Choose your GP practice")])
    nhs_number = StringField("NHS number", validators=[DataRequired("Enter your NHS number")])
    given_name = StringField("First name", validators=[DataRequired("Enter your first name"), Length(max=100)])
    family_name = StringField("Last name", validators=[DataRequired("Enter your last name"), Length(max=100)])
    date_of_birth = DateParts("Date of birth", required_message="Enter your date of birth")
    postcode = StringField("Postcode", validators=[DataRequired("Enter your postcode"), Length(max=10)])


def _address_key() -> str:
    return f"link-address:{request.remote_addr}"


def _account_limit() -> str:
    return str(current_app.config["RATELIMIT_LINKAGE"])


def _target_limit() -> str:
    return str(current_app.config.get("RATELIMIT_LINKAGE_TARGET", current_app.config["RATELIMIT_LINKAGE"]))


def _address_limit() -> str:
    return throttle.address_limit("RATELIMIT_LINKAGE_ADDRESS")


def _counted(response: Response) -> bool:
    """Attempts count (a wrong letter, a request sent), not typing mistakes and not a successful link."""
    return bool(g.get("link_attempted")) and not g.get("link_succeeded")


# Counted per signed-in account (a staff member's own account when staff act), per record tried from one
# address (the NHS number, or the letter's Account ID), and per address only with a much higher ceiling: many
# people share a front desk's or a care home's address and must not lock each other out (higher still for
# TRUSTED_NETWORKS).
@bp.route("/link", methods=["GET", "POST"])
@limiter.limit(_account_limit, methods=["POST"], key_func=throttle.link_actor_key, deduct_when=_counted)
@limiter.limit(_target_limit, methods=["POST"], key_func=throttle.link_target_key, deduct_when=_counted)
@limiter.limit(_address_limit, methods=["POST"], key_func=_address_key, deduct_when=_counted)
def link() -> Response | str:
    page = linking.link_page(uow(), g.user)
    if g.acting is not None and page.linked:
        flash("Your account is already linked to your GP record.", "info")
        return redirect(url_for("patient.home"))
    letter = LetterForm(prefix="letter")
    req = RequestForm(prefix="request")
    req.practice.choices = [("", "Choose your practice"), *page.practices]
    if "letter-linkage_key" in request.form and letter.validate_on_submit():
        g.link_attempted = True
        try:
            linking.link_with_letter(
                uow(),
                g.user,
                letter.ods_code.data or "",
                letter.account_id.data or "",
                letter.linkage_key.data or "",
            )
        except InputError as exc:
            letter.linkage_key.errors = [exc.message]
        else:
            g.link_succeeded = True
            flash("Your account is linked to your GP record.", "success")
            return redirect(url_for("patient.home"))
    elif "request-nhs_number" in request.form and req.validate_on_submit():
        g.link_attempted = True
        try:
            linking.request_link(
                uow(),
                g.user,
                req.practice.data or "",
                req.nhs_number.data or "",
                req.date_of_birth.data,  # type: ignore[arg-type]  # validated as required
                req.given_name.data or "",
                req.family_name.data or "",
                req.postcode.data or "",
            )
        except InputError as exc:
            getattr(req, exc.field if exc.field in req else "nhs_number").errors = [exc.message]
        else:
            # The same answer whether or not the details matched: the practice checks, the patient waits.
            return redirect(url_for("patient.link_requested"))
    return render_template("patient/link.html", letter=letter, req=req, pending=page.latest)


@bp.get("/link/requested")
def link_requested() -> str:
    return render_template("patient/link_requested.html")
