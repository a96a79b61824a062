"""The reception home: what needs attention today, and the link to the clinical system in plain words."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, url_for
from werkzeug.wrappers import Response

from patient_online.domain.errors import InputError
from patient_online.services import reception_home
from patient_online.web.input import Form
from patient_online.wiring import uow

from . import bp


@bp.get("/")
def index() -> str:
    home = reception_home.reception_home(uow(), g.user, g.practice)
    return render_template("reception/index.html", practice=g.practice, home=home, action_form=Form())


@bp.post("/repeats/<id:message_id>/retry")
def retry_repeat(message_id: int) -> Response:
    if Form().validate_on_submit():
        try:
            reception_home.retry_repeat_request(uow(), g.user, g.practice, message_id)
        except InputError as exc:
            flash(f"{exc.message}.", "error")
        else:
            flash("We will try to send the repeat request again in the next minute.", "success")
    return redirect(url_for("reception.index") + "#repeats")


@bp.post("/repeats/<id:message_id>/tell-patient")
def tell_patient(message_id: int) -> Response:
    if Form().validate_on_submit():
        try:
            name = reception_home.tell_patient_about_repeat_request(uow(), g.user, g.practice, message_id)
        except InputError as exc:
            flash(f"{exc.message}.", "error")
        else:
            flash(f"We have emailed {name} to say the request did not reach you. It is off this list.", "success")
    return redirect(url_for("reception.index") + "#repeats")
