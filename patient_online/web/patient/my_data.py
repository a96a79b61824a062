"""/account/my-data: download everything the service holds about you; /account/close: close your account."""

from __future__ import annotations

import io

from flask import g, render_template, send_file
from werkzeug.wrappers import Response

from patient_online.auth.sessions import end_session
from patient_online.domain.errors import InputError
from patient_online.services import account_closure, subject_access
from patient_online.web.input import Form
from patient_online.wiring import uow

from . import bp


class ConfirmForm(Form):
    """A button and its CSRF token: nothing to type."""


def zip_response(export: subject_access.SubjectAccessExport) -> Response:
    response = send_file(
        io.BytesIO(export.content),
        mimetype="application/zip",
        as_attachment=True,
        download_name=export.filename,
        max_age=0,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/account/my-data")
def my_data() -> str:
    return render_template("patient/my_data.html", form=ConfirmForm())


@bp.post("/account/my-data")
def download_my_data() -> Response | tuple[str, int]:
    form = ConfirmForm()
    if not form.validate_on_submit():
        return render_template("patient/my_data.html", form=form), 400
    return zip_response(subject_access.download_my_data(uow(), g.user))


@bp.get("/account/close")
def close_account() -> str:
    return render_template("patient/my_data_close.html", form=ConfirmForm())


@bp.post("/account/close")
def close_account_post() -> Response | str | tuple[str, int]:
    form = ConfirmForm()
    if not form.validate_on_submit():
        return render_template("patient/my_data_close.html", form=form), 400
    try:
        account_closure.close_own_account(uow(), g.user)
    except InputError:
        end_session()
        return render_template("patient/my_data_closed.html"), 409
    end_session()
    return render_template("patient/my_data_closed.html")
