"""/reception/verifications: the queue of link requests; approve with how identity was checked, or reject."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response
from wtforms import BooleanField, SelectMultipleField, TextAreaField
from wtforms.validators import Length, Optional

from patient_online.domain.errors import InputError
from patient_online.domain.verification import DOCUMENTS, PHOTO_DOCUMENTS, STAFF_METHODS
from patient_online.services import verification
from patient_online.web.fields import Choice
from patient_online.web.input import Form
from patient_online.wiring import uow

from . import bp


class IdentityCheckForm(Form):
    """How reception checked someone's identity (rule 3), asked the same way wherever a check is recorded:
    approving a request, issuing a linkage letter."""

    method = Choice(
        "How did you verify this person's identity?",
        choices=[(m.value, m.label) for m in STAFF_METHODS],
        message="Select how you verified this person's identity",
    )
    documents = SelectMultipleField("Documents seen", choices=list(DOCUMENTS.items()), validate_choice=False)
    remote = BooleanField("I vouched remotely (by phone or video), not face to face")
    notes = TextAreaField("Notes (optional)", validators=[Optional(), Length(max=2000)])


class ApproveForm(IdentityCheckForm):
    pass


class RejectForm(Form):
    reason = TextAreaField("Reason (the patient will see this)", validators=[Length(max=500)])


@bp.get("/verifications")
def verifications() -> str:
    queue = verification.pending_requests(uow(), g.user, g.practice)
    return render_template("reception/verifications.html", queue=queue)


@bp.route("/verifications/<id:request_id>", methods=["GET", "POST"])
def verification_detail(request_id: int) -> Response | str:
    approve = ApproveForm(prefix="approve")
    reject = RejectForm(prefix="reject")
    if request.method == "POST":
        try:
            if "reject-reason" in request.form and reject.validate_on_submit():
                verification.reject_request(uow(), g.user, g.practice, request_id, reject.reason.data or "")
                flash("Request rejected. The patient has been told why.", "success")
                return redirect(url_for("reception.verifications"))
            approving = "approve-method" in request.form or "approve-notes" in request.form
            if approving and approve.validate_on_submit():
                approved = verification.approve_request(
                    uow(),
                    g.user,
                    g.practice,
                    request_id,
                    approve.method.data or "",
                    list(approve.documents.data or []),
                    bool(approve.remote.data),
                    approve.notes.data or "",
                )
                flash(f"{approved.patient.full_name} is verified and linked. They have been emailed.", "success")
                return redirect(url_for("reception.verifications"))
        except InputError as exc:
            form = reject if exc.field == "reason" else approve
            getattr(form, exc.field or "method").errors = [exc.message]
    pending = verification.get_request(uow(), g.user, g.practice, request_id)
    return render_template(
        "reception/verification_detail.html",
        pending=pending,
        approve=approve,
        reject=reject,
        documents=DOCUMENTS,
        photo=PHOTO_DOCUMENTS,
    )
