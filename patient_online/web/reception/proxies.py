"""/reception/proxies: review requests to act for a patient, set permissions, and suspend, restart or end links."""

from __future__ import annotations

from typing import Any

from flask import flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response
from wtforms import BooleanField, RadioField, TextAreaField
from wtforms.validators import DataRequired, Length

from patient_online.domain.errors import InputError
from patient_online.domain.proxy import REASON_MAX, ProxyBasis, ProxyStatus
from patient_online.domain.record import RecordLevel
from patient_online.services import proxy as service
from patient_online.services.proxy import Approval, ReviewView
from patient_online.web.input import Form
from patient_online.wiring import uow

from . import bp

TOO_LONG = f"Enter a reason of {REASON_MAX} characters or fewer"
SECTIONS = (
    (ProxyStatus.REQUESTED, "Waiting for you to check"),
    (ProxyStatus.AWAITING_CONSENT, "Waiting for the patient's consent"),
    (ProxyStatus.SUSPENDED, "Suspended"),
    (ProxyStatus.ACTIVE, "Active"),
)
CLOSED = (ProxyStatus.ENDED, ProxyStatus.REJECTED)


class ApproveForm(Form):
    basis = RadioField("Which basis have you confirmed?", choices=[(b.value, b.label) for b in ProxyBasis])
    evidence = TextAreaField("What evidence did you see?")
    safeguarding_checked = BooleanField("I have checked for signs of coercion and for safeguarding concerns")
    safeguarding_notes = TextAreaField("What did you check and find?")
    can_appointments = BooleanField("Book and cancel appointments")
    can_prescriptions = BooleanField("Order repeat prescriptions")
    record_level = RadioField("How much of the GP record can the proxy see?", validate_choice=False)
    competence_assessed = BooleanField("A clinician has assessed the child's competence")
    child_consent = BooleanField("The child agrees to their parent's access")


class RejectForm(Form):
    reason = TextAreaField(
        "Reason (the person asking will see this)",
        validators=[
            DataRequired("Enter the reason the person asking will see"),
            Length(max=REASON_MAX, message=TOO_LONG),
        ],
    )


class ReasonForm(Form):
    reason = TextAreaField(
        "Reason (the proxy and the patient will see this)",
        validators=[DataRequired("Enter a reason"), Length(max=REASON_MAX, message=TOO_LONG)],
    )


class CompetenceForm(Form):
    competence_assessed = BooleanField("A clinician has assessed the child's competence")
    child_consent = BooleanField("The child agrees to their parent's access")


@bp.get("/proxies")
def proxies() -> str:
    if request.args.get("show") == "closed":
        closed = service.practice_links(uow(), g.user, g.practice, CLOSED)
        return render_template(
            "reception/proxies.html",
            sections=[("Ended and turned down", closed)],
            closed=True,
            Basis=ProxyBasis,
            Status=ProxyStatus,
        )
    sections = [(title, service.practice_links(uow(), g.user, g.practice, (status,))) for status, title in SECTIONS]
    return render_template(
        "reception/proxies.html", sections=sections, closed=False, Basis=ProxyBasis, Status=ProxyStatus
    )


def _approve_form(review: ReviewView, formdata: Any | None = None) -> ApproveForm:
    link = review.link
    form = ApproveForm(
        prefix="approve",
        formdata=formdata,
        data={
            "basis": link.basis,
            "record_level": RecordLevel.NONE.value,
            "competence_assessed": link.competence_assessed,
            "child_consent": link.child_consent,
        },
    )
    form.record_level.choices = [(level.value, level.label) for level in review.allowed_levels]
    return form


def _page(review: ReviewView, status: int = 200, **forms: Any) -> tuple[str, int]:
    context: dict[str, Any] = {
        "review": review,
        "approve": forms.get("approve") or _approve_form(review),
        "reject": forms.get("reject") or RejectForm(prefix="reject", formdata=None),
        "suspend": forms.get("suspend") or ReasonForm(prefix="suspend", formdata=None),
        "end": forms.get("end") or ReasonForm(prefix="end", formdata=None),
        "competence": forms.get("competence")
        or CompetenceForm(
            prefix="competence",
            formdata=None,
            data={
                "competence_assessed": review.link.competence_assessed,
                "child_consent": review.link.child_consent,
            },
        ),
        "reinstate_error": forms.get("reinstate_error"),
        "Basis": ProxyBasis,
        "Status": ProxyStatus,
        "RecordLevel": RecordLevel,
    }
    return render_template("reception/proxy_review.html", **context), status


def _review(link_id: int) -> ReviewView:
    return service.review_view(uow(), g.user, g.practice, link_id)


def _done(message: str, link_id: int | None = None) -> Response:
    flash(message, "success")
    if link_id is None:
        return redirect(url_for("reception.proxies"))
    return redirect(url_for("reception.proxy_detail", link_id=link_id))


@bp.route("/proxies/<id:link_id>", methods=["GET", "POST"])
def proxy_detail(link_id: int) -> Response | tuple[str, int]:
    review = _review(link_id)
    if request.method == "GET":
        return _page(review)
    if "reject-reason" in request.form:
        reject = RejectForm(prefix="reject")
        if reject.validate_on_submit():
            try:
                service.reject_proxy(uow(), g.user, g.practice, link_id, reject.reason.data or "")
            except InputError as exc:
                reject.reason.errors = [exc.message]
            else:
                return _done("Request turned down. We have emailed the person who asked.")
        return _page(review, 400, reject=reject)
    form = _approve_form(review, request.form)
    if form.validate_on_submit():
        approval = Approval(
            basis=form.basis.data or "",
            evidence=form.evidence.data or "",
            safeguarding_checked=bool(form.safeguarding_checked.data),
            safeguarding_notes=form.safeguarding_notes.data or "",
            can_appointments=bool(form.can_appointments.data),
            can_prescriptions=bool(form.can_prescriptions.data),
            record_level=form.record_level.data or "",
            competence_assessed=bool(form.competence_assessed.data),
            child_consent=bool(form.child_consent.data),
        )
        try:
            approved = service.approve_proxy(uow(), g.user, g.practice, link_id, approval)
        except InputError as exc:
            getattr(form, exc.field if exc.field in form else "basis").errors = [exc.message]
        else:
            if approved.status is ProxyStatus.AWAITING_CONSENT:
                return _done(f"Checked. {approved.patient_name} has been asked to agree online.")
            return _done(f"Approved. {approved.proxy_name} can now act for {approved.patient_name}.")
    return _page(review, 400, approve=form)


@bp.post("/proxies/<id:link_id>/competence")
def proxy_competence(link_id: int) -> Response | tuple[str, int]:
    form = CompetenceForm(prefix="competence")
    if form.validate_on_submit():
        try:
            service.record_competence(
                uow(),
                g.user,
                g.practice,
                link_id,
                bool(form.competence_assessed.data),
                bool(form.child_consent.data),
            )
        except InputError as exc:
            form.competence_assessed.errors = [exc.message]
        else:
            return _done("Saved.", link_id)
    return _page(_review(link_id), 400, competence=form)


@bp.post("/proxies/<id:link_id>/suspend")
def proxy_suspend(link_id: int) -> Response | tuple[str, int]:
    form = ReasonForm(prefix="suspend")
    if form.validate_on_submit():
        try:
            service.suspend_proxy(uow(), g.user, g.practice, link_id, form.reason.data or "")
        except InputError as exc:
            form.reason.errors = [exc.message]
        else:
            return _done("Proxy access suspended. We have told the proxy and the patient.", link_id)
    return _page(_review(link_id), 400, suspend=form)


@bp.post("/proxies/<id:link_id>/reinstate")
def proxy_reinstate(link_id: int) -> Response | tuple[str, int]:
    form = Form()
    if form.validate_on_submit():
        try:
            service.reinstate_proxy(uow(), g.user, g.practice, link_id)
        except InputError as exc:
            return _page(_review(link_id), 400, reinstate_error=exc.message)
        return _done("Proxy access restarted. We have told the proxy and the patient.", link_id)
    return _page(_review(link_id), 400)


def _end_page(review: ReviewView, form: ReasonForm, status: int = 200) -> tuple[str, int]:
    return render_template("reception/proxy_end.html", review=review, end=form, Status=ProxyStatus), status


@bp.get("/proxies/<id:link_id>/end")
def proxy_end_confirm(link_id: int) -> tuple[str, int]:
    """Say what ending the link will do, and ask for the reason, before ending it."""
    return _end_page(_review(link_id), ReasonForm(prefix="end", formdata=None))


@bp.post("/proxies/<id:link_id>/end")
def proxy_end(link_id: int) -> Response | tuple[str, int]:
    form = ReasonForm(prefix="end")
    if form.validate_on_submit():
        try:
            service.end_proxy_by_reception(uow(), g.user, g.practice, link_id, form.reason.data or "")
        except InputError as exc:
            form.reason.errors = [exc.message]
        else:
            return _done("Proxy access ended. It stays on record. We have told the proxy and the patient.", link_id)
    return _end_page(_review(link_id), form, 400)
