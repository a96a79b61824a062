"""The demo clinical system's screen for practice staff: the prescription queue of the real system.

It stands in for EMIS Web or SystmOne and only exists for practices that use the demo system. Any member of
staff of the practice may use it; nobody else.
"""

from __future__ import annotations

from flask import Blueprint, Flask, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response
from wtforms import TextAreaField

from patient_online.domain.errors import InputError
from patient_online.domain.prescriptions import RequestStatus
from patient_online.services import demo_system, messages
from patient_online.web.input import Form
from patient_online.wiring import uow

bp = Blueprint("demo_system", __name__, url_prefix="/demo-system")

ACTIONS = {
    "approve": (RequestStatus.APPROVED, "Request approved."),
    "reject": (RequestStatus.REJECTED, "Request rejected. The patient can see your reason."),
    "issue": (RequestStatus.ISSUED, "Prescription issued to the pharmacy."),
}


class ActionForm(Form):
    reason = TextAreaField("Reason the patient will see")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_blueprint(mailbox_bp)


# The demo mailbox: every message the local notifier holds, for someone trying the demo (no sign-in: a person
# registering has none yet). Only with demo data, never in production, never with a real notifier.
mailbox_bp = Blueprint("demo_mailbox", __name__, url_prefix="/demo-system/messages")


@mailbox_bp.before_request
def _mailbox_gate() -> None:
    config = current_app.config
    if not config.get("DEMO_DATA_ENABLED") or config.get("ENV") == "production" or config.get("NOTIFIER") == "notify":
        abort(404)


@mailbox_bp.get("")
def mailbox() -> str:
    return render_template("demo_system/messages.html", messages=messages.mailbox(uow()))


@bp.before_request
def _gate() -> Response | None:
    """Staff of the practice named in the address only, and only where the practice uses the demo system."""
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if current_user.kind != "staff":
        abort(403)
    ods = (request.view_args or {}).get("ods", "")
    practice = demo_system.demo_practice(uow(), str(ods))
    if practice is None:
        abort(404)
    if not any(m.practice_id == practice.id for m in current_user.memberships):
        abort(403)
    g.user = current_user._get_current_object()
    g.practice = practice
    return None


def _page(forms: dict[str, ActionForm] | None = None, status: int = 200) -> tuple[str, int]:
    page = demo_system.prescription_queue(uow(), g.practice)
    queue, pharmacies = page.rows, page.pharmacies
    forms = forms or {}
    return (
        render_template(
            "demo_system/prescriptions.html",
            queue=queue,
            pharmacies=pharmacies,
            forms={row.id: forms.get(row.id) or ActionForm(formdata=None) for row in queue},
            Status=RequestStatus,
        ),
        status,
    )


@bp.get("/<ods>/prescriptions")
def queue(ods: str) -> tuple[str, int]:
    return _page()


@bp.post("/<ods>/prescriptions/<request_id>/<action>")
def act(ods: str, request_id: str, action: str) -> Response | tuple[str, int]:
    if action not in ACTIONS:
        abort(404)
    form = ActionForm()
    if not form.validate_on_submit():
        return _page({request_id: form}, 400)
    new, done = ACTIONS[action]
    try:
        demo_system.decide(uow(), g.practice, request_id, new, form.reason.data or "")
    except InputError as exc:
        if exc.field:
            form.reason.errors = [exc.message]
            return _page({request_id: form}, 400)
        flash(exc.message, "error")
        return redirect(url_for("demo_system.queue", ods=g.practice.ods_code))
    flash(done, "success")
    return redirect(url_for("demo_system.queue", ods=g.practice.ods_code))
