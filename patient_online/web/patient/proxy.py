"""/proxy: the people I act for (and switching to them), asking to act for someone, and people acting for me."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import HiddenField, RadioField, SelectField, StringField, TextAreaField, ValidationError
from wtforms.validators import DataRequired, Length, Optional

from patient_online.domain.errors import ClinicalSystemError, InputError
from patient_online.domain.proxy import REASON_MAX, RELATIONSHIP_MAX, ProxyBasis, ProxyStatus
from patient_online.domain.record import RecordLevel
from patient_online.extensions import db, limiter
from patient_online.models import Practice
from patient_online.services import proxy as service
from patient_online.services.proxy import ProxyRequest
from patient_online.web.fields import DateParts
from patient_online.web.input import Form
from patient_online.wiring import uow

from . import bp

TOO_LONG = f"Enter a reason of {REASON_MAX} characters or fewer"


class RequestForm(Form):
    practice = SelectField("Their GP practice", validate_choice=False)
    nhs_number = StringField("Their NHS number", validators=[DataRequired("Enter their NHS number")])
    date_of_birth = DateParts("Their date of birth", required_message="Enter their date of birth")
    relationship = StringField(
        "How are you related to them?",
        validators=[
            DataRequired("Enter how you are related to them, for example: mother"),
            Length(max=RELATIONSHIP_MAX, message=f"Enter a relationship of {RELATIONSHIP_MAX} characters or fewer"),
        ],
    )
    basis = RadioField(
        "Why can you act for them?",
        choices=[(b.value, b.label) for b in ProxyBasis],
        validate_choice=False,
    )

    def validate_practice(self, field: SelectField) -> None:
        if not field.data:
            raise ValidationError("Choose their GP practice")

    def validate_basis(self, field: RadioField) -> None:
        if field.data not in {b.value for b in ProxyBasis}:
            raise ValidationError("Choose why you can act for them")

    def validate_date_of_birth(self, field: DateParts) -> None:
        if field.data is None and not field.errors:
            raise ValidationError("Enter their date of birth")


class ActForForm(Form):
    patient_id = HiddenField()


class EndForm(Form):
    reason = TextAreaField(
        "Why are you ending this?",
        validators=[DataRequired("Enter why you are ending this"), Length(max=REASON_MAX, message=TOO_LONG)],
    )


class ConsentForm(Form):
    decision = RadioField(
        "Do you agree?",
        choices=[("yes", "Yes, they can act for me as shown"), ("no", "No")],
        validate_choice=False,
    )
    reason = TextAreaField(
        "Anything you want to tell the practice? (optional)",
        validators=[Optional(), Length(max=REASON_MAX, message=TOO_LONG)],
    )

    def validate_decision(self, field: RadioField) -> None:
        if field.data not in ("yes", "no"):
            raise ValidationError("Choose yes or no")


def _request_limit() -> str:
    return str(
        current_app.config.get("RATELIMIT_PROXY_REQUEST", current_app.config.get("RATELIMIT_LINKAGE", "5 per hour"))
    )


def _request_key() -> str:
    return f"proxy-request:{g.user.id}"


def _sent(response: Response) -> bool:
    """Every request that reached the clinical-system check counts, matched or not."""
    return response.status_code == 302


@bp.app_context_processor
def _acting_switch() -> dict[str, Any]:
    """``acting_switch_choices()`` for the header's "acting for" switch, only queried when a page asks for it."""

    def choices() -> list[tuple[str, str]]:
        if not current_user.is_authenticated or current_user.kind != "patient":
            return []
        known = g.get("standing")  # the patient gate has read them already
        found = known.switch_choices if known is not None else service.switch_choices(uow(), current_user)
        if len(found) < 2 and not any(pid is not None for pid, _ in found):
            return []
        return [("" if pid is None else str(pid), name) for pid, name in found]

    return {"acting_switch_choices": choices}


@bp.get("/proxy")
def proxy() -> str:
    overview = service.proxy_overview(uow(), g.user)
    return render_template(
        "patient/proxy/index.html",
        overview=overview,
        current_id=session.get("acting_for"),
        form=ActForForm(),
        Status=ProxyStatus,
        Basis=ProxyBasis,
        RecordLevel=RecordLevel,
    )


def _practice_choices() -> list[tuple[str, str]]:
    practices = db.session.scalars(select(Practice).order_by(Practice.name)).all()
    return [("", "Choose their practice")] + [(p.ods_code, f"{p.name} ({p.ods_code})") for p in practices]


@bp.route("/proxy/request", methods=["GET", "POST"])
@limiter.limit(_request_limit, methods=["POST"], key_func=_request_key, deduct_when=_sent)
def proxy_request() -> Response | tuple[str, int]:
    form = RequestForm()
    form.practice.choices = _practice_choices()
    if request.method == "GET" and not form.practice.data and g.acting is not None and not g.acting.is_proxy:
        form.practice.data = g.acting.practice.ods_code
    if form.validate_on_submit():
        assert form.date_of_birth.data is not None
        try:
            service.request_proxy(
                uow(),
                g.user,
                ProxyRequest(
                    practice_ods=form.practice.data or "",
                    nhs_number=form.nhs_number.data or "",
                    date_of_birth=form.date_of_birth.data,
                    relationship=form.relationship.data or "",
                    basis=form.basis.data or "",
                ),
            )
        except InputError as exc:
            getattr(form, exc.field if exc.field in form else "nhs_number").errors = [exc.message]
        except ClinicalSystemError:
            form.nhs_number.errors = ["We cannot check these details at the moment. Try again later"]
        else:
            flash(
                "Request sent. If the details match a patient registered at the practice, the practice will check "
                "your request. We will email you when they have decided.",
                "success",
            )
            return redirect(url_for("patient.proxy"))
    linked = g.acting is not None
    status = 400 if form.errors else 200
    return render_template("patient/proxy/request.html", form=form, Basis=ProxyBasis, linked=linked), status


@bp.post("/proxy/act-for")
def act_for() -> Response:
    form = ActForForm()
    if not form.validate_on_submit():
        abort(400)
    raw = (form.patient_id.data or "").strip()
    if raw in ("", "own"):
        wanted = None
    elif raw.isdigit():
        wanted = int(raw)
    else:
        abort(400)
    chosen = service.switch_acting_for(uow(), g.user, wanted)  # NotAllowed -> 403, nothing changes
    if chosen is None or not chosen.is_proxy:
        session.pop("acting_for", None)
        flash("You are now using your own account.", "success")
    else:
        session["acting_for"] = chosen.patient.id
        flash(f"You are now acting for {chosen.patient.full_name}.", "success")
    return redirect(url_for("patient.home"))


@bp.route("/proxy/<id:link_id>/end", methods=["GET", "POST"])
def end_proxy(link_id: int) -> Response | tuple[str, int]:
    form = EndForm()
    if form.validate_on_submit():
        try:
            ended = service.end_link(uow(), g.user, link_id, form.reason.data or "")
        except InputError as exc:
            form.reason.errors = [exc.message]
        else:
            if ended.proxy_user_id == g.user.id and session.get("acting_for") == ended.patient_id:
                session.pop("acting_for", None)
            flash("Proxy access has ended. We have told the people concerned.", "success")
            return redirect(url_for("patient.proxy"))
    link = service.link_for(uow(), g.user, link_id)
    status = 400 if form.errors else 200
    return render_template(
        "patient/proxy/end.html", link=link, form=form, is_proxy=link.proxy_user_id == g.user.id
    ), status


@bp.route("/proxy/<id:link_id>/consent", methods=["GET", "POST"])
def proxy_consent(link_id: int) -> Response | tuple[str, int]:
    form = ConsentForm()
    if form.validate_on_submit():
        try:
            if form.decision.data == "yes":
                answered = service.give_consent(uow(), g.user, link_id)
                flash(f"{answered.proxy_name} can now act for you as shown.", "success")
            else:
                answered = service.refuse_consent(uow(), g.user, link_id, form.reason.data or "")
                flash(f"You said no. {answered.proxy_name} cannot act for you.", "success")
        except InputError as exc:
            form.decision.errors = [exc.message]
        else:
            return redirect(url_for("patient.proxy"))
    link = service.link_for(uow(), g.user, link_id, as_patient=True)
    status = 400 if form.errors else 200
    return render_template(
        "patient/proxy/consent.html", link=link, form=form, level=RecordLevel(link.record_level)
    ), status
