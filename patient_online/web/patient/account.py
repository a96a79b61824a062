"""/account: sign-in details, and /account/activity: what happened on the account and record."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from patient_online.auth import forms
from patient_online.auth.sessions import start_session
from patient_online.domain.errors import InputError
from patient_online.extensions import limiter
from patient_online.services import accounts
from patient_online.services.activity import activity_page
from patient_online.wiring import uow

from . import bp


def _page(**forms_: object) -> str:
    context: dict[str, object] = {
        "password_form": forms.ChangePasswordForm(prefix="pw"),
        "email_form": forms.EmailChangeForm(prefix="em"),
        "code_form": forms.CodeForm(prefix="ec"),
    }
    context.update(forms_)
    return render_template("patient/account.html", **context)


@bp.get("/account")
def account() -> str:
    return _page()


def _account_key() -> str:
    return f"account:{session.get('_user_id', '-')}"


def _refused(response: Response) -> bool:
    return response.status_code == 200


# A session left open must not become a way to guess the account's password: wrong current passwords are limited.
@bp.post("/account/password")
@limiter.limit("5 per 15 minutes", key_func=_account_key, deduct_when=_refused)
def change_password() -> Response | str:
    form = forms.ChangePasswordForm(prefix="pw")
    if form.validate_on_submit():
        try:
            accounts.change_password(uow(), g.user, form.current_password.data or "", form.password.data or "")
        except InputError as exc:
            getattr(form, exc.field or "password").errors = [exc.message]
        else:
            start_session(g.user)  # this browser stays signed in; every other session has ended
            flash("Your password has been changed. You have been signed out everywhere else.", "success")
            return redirect(url_for("patient.account"))
    return _page(password_form=form)


@bp.post("/account/email")
@limiter.limit("5 per 15 minutes", key_func=_account_key, deduct_when=_refused)
def change_email() -> Response | str:
    form = forms.EmailChangeForm(prefix="em")
    if form.validate_on_submit():
        try:
            accounts.start_email_change(uow(), g.user, form.current_password.data or "", form.email.data or "")
        except InputError as exc:
            getattr(form, exc.field or "email").errors = [exc.message]
        else:
            flash("If that address can be used, we have sent a security code to it. Enter it below.", "info")
            return redirect(url_for("patient.account", _anchor="confirm-email"))
    return _page(email_form=form)


@bp.post("/account/email/confirm")
def confirm_email_change() -> Response | str:
    form = forms.CodeForm(prefix="ec")
    if form.validate_on_submit():
        try:
            accounts.confirm_email_change(uow(), g.user, form.code.data or "")
        except InputError as exc:
            form.code.errors = [exc.message]
        else:
            start_session(g.user)  # this browser stays signed in; every other session has ended
            flash(
                "Your email address has been changed. You have been signed out everywhere else, and we have told "
                "your old email address.",
                "success",
            )
            return redirect(url_for("patient.account"))
    return _page(code_form=form)


@bp.get("/account/activity")
def activity() -> str:
    page = request.args.get("page", 1, type=int) or 1
    return render_template("patient/activity.html", activity=activity_page(uow(), g.user, page))
