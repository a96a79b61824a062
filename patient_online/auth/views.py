"""Sign in, second factor, register, reset password, sign out."""

from __future__ import annotations

import io
import secrets
from urllib.parse import urlsplit

import qrcode
import qrcode.image.svg
from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user
from markupsafe import Markup
from werkzeug.wrappers import Response

from patient_online import crypto
from patient_online.domain.accounts import SignInStep
from patient_online.domain.errors import InputError
from patient_online.extensions import limiter
from patient_online.models import User
from patient_online.services import accounts
from patient_online.wiring import uow

from . import forms, throttle
from .sessions import end_session, signed_in_user, start_session

bp = Blueprint("auth", __name__)


GUARDED_FAILED = "The email address, password or security code is not correct. Check them and sign in again."


def _keep(name: str, value: str) -> None:
    """Keep a value between the steps of a journey in the cookie, sealed: the cookie is signed but readable,
    and an email address or an authenticator secret must not be read from it."""
    session[name] = crypto.encrypt(value)


def _kept(name: str) -> str | None:
    sealed = session.get(name)
    if not isinstance(sealed, str) or not sealed:
        return None
    try:
        return crypto.decrypt(sealed)
    except ValueError:
        return None


def _pending_key() -> str:
    return f"pending:{session.get('pending_user_id') or session.get('pending_nonce', '-')}"


def _user_key() -> str:
    return f"user:{session.get('_user_id', '-')}"


def _failed(response: Response) -> bool:
    return throttle.failed(response)


def _limit(setting: str) -> str:
    return str(current_app.config[setting])


def safe_next(target: str | None) -> str | None:
    """Only same-site relative paths are followed after sign-in."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


def landing_for(user: User) -> str:
    if user.is_system_admin:
        return url_for("admin.practices")
    roles = {m.role for m in user.memberships}
    if "practice_manager" in roles:
        return url_for("manager.index")
    if "receptionist" in roles:
        return url_for("reception.index")
    return url_for("patient.home")


def _pending_user() -> User | None:
    user_id = session.get("pending_user_id")
    return accounts.account(uow(), user_id) if user_id else None


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: throttle.address_limit("RATELIMIT_SIGN_IN"), methods=["POST"], deduct_when=_failed)
@limiter.limit(
    lambda: _limit("RATELIMIT_SIGN_IN_ACCOUNT"),
    key_func=throttle.account_address_key,
    methods=["POST"],
    deduct_when=_failed,
)
def login() -> Response | str:
    """The password step. There is no lock on an account: see ``throttle`` for what slows guessing down."""
    if signed_in_user():
        return redirect(landing_for(current_user))
    form = forms.SignInForm()
    error = None
    if form.validate_on_submit():
        email = accounts.normalise_email(form.email.data or "")
        guarded = throttle.guarded(email)
        checked = accounts.check_password_sign_in(uow(), email, form.password.data or "", guarded=guarded)
        if checked is not None:
            next_url = safe_next(request.args.get("next"))
            session.clear()
            session["pending_user_id"] = checked.user_id
            session["pending_email"] = email
            if guarded:
                throttle.count_attempt()
                session["pending_guarded"] = True
                session["pending_nonce"] = secrets.token_urlsafe(16)
            if next_url:
                session["next"] = next_url
            if checked.next_step is SignInStep.SETUP:
                return redirect(url_for("auth.setup"))
            return redirect(url_for("auth.code"))
        throttle.note_failure(email)
        error = "Enter a correct email address and password"
    return render_template(
        "auth/login.html", form=form, error=error, nhs_login=bool(current_app.config["NHS_LOGIN_ISSUER"])
    )


@bp.route("/login/code", methods=["GET", "POST"])
@limiter.limit(lambda: throttle.address_limit("RATELIMIT_CODE"), methods=["POST"], deduct_when=_failed)
@limiter.limit(lambda: _limit("RATELIMIT_CODE"), key_func=_pending_key, methods=["POST"], deduct_when=_failed)
def code() -> Response | str:
    guarded = bool(session.get("pending_guarded"))
    user = _pending_user()
    if user is None and not guarded:
        return redirect(url_for("auth.login"))
    form = forms.CodeForm()
    if form.validate_on_submit():
        try:
            if user is None:  # a guarded attempt whose password was wrong: it fails here, like a wrong code
                raise InputError(accounts.APP_CODE_WRONG, "code")
            accounts.check_second_factor(uow(), user, form.code.data or "")
        except InputError as exc:
            throttle.note_failure(session.get("pending_email", ""))
            if guarded:  # say nothing about which part was wrong; start again from the password
                throttle.count_attempt()
                session.clear()
                flash(GUARDED_FAILED, "error")
                return redirect(url_for("auth.login"))
            form.code.errors = [exc.message]
        else:
            return _signed_in(user)
    by_email = not guarded and user is not None and user.second_factor == "email" and not user.is_staff
    return render_template("auth/code.html", form=form, by_email=by_email, guarded=guarded)


@bp.post("/login/code/resend")
@limiter.limit("3 per 15 minutes", key_func=_pending_key)
def resend_code() -> Response:
    user = _pending_user()
    if user is None:
        return redirect(url_for("auth.login"))
    accounts.start_second_factor(uow(), user)
    flash("We have sent you a new security code.", "success")
    return redirect(url_for("auth.code"))


def _signed_in(user: User) -> Response:
    next_url = session.get("next")
    throttle.clear(session.get("pending_email", ""))
    start_session(user)
    return redirect(next_url or landing_for(user))


@bp.route("/login/setup", methods=["GET", "POST"])
@limiter.limit(lambda: _limit("RATELIMIT_CODE"), methods=["POST"], deduct_when=_failed)
def setup() -> Response | str:
    """First sign-in: confirm the email (patients), then set up the second factor."""
    user = _pending_user()
    if user is None:
        return redirect(url_for("auth.login"))
    if user.kind == "patient" and user.email_confirmed_at is None:
        return redirect(url_for("auth.confirm_email"))
    if not accounts.needs_second_factor_setup(user):
        accounts.start_second_factor(uow(), user)
        return redirect(url_for("auth.code"))
    choice = forms.SecondFactorChoiceForm()
    form = forms.CodeForm()
    secret = _kept("totp_secret") or accounts.new_totp_secret()
    _keep("totp_secret", secret)
    if request.method == "POST" and request.form.get("second_factor") == "email" and not user.is_staff:
        if choice.validate_on_submit():
            accounts.choose_email_codes(uow(), user)
            session.pop("totp_secret", None)
            return redirect(url_for("auth.code"))
    elif form.validate_on_submit():
        try:
            accounts.enrol_totp(uow(), user, secret, form.code.data or "")
        except InputError as exc:
            form.code.errors = [exc.message]
        else:
            session.pop("totp_secret", None)
            flash("Your authenticator app is set up. You will use it every time you sign in.", "success")
            return _signed_in(user)
    uri = accounts.totp_uri(user, secret)
    return render_template("auth/setup.html", form=form, choice=choice, secret=secret, qr=_qr_svg(uri), user=user)


def _qr_svg(data: str) -> Markup:
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buffer = io.BytesIO()
    image.save(buffer)
    svg = buffer.getvalue().decode()
    svg = svg[svg.index("<svg") :]
    return Markup(svg.replace("<svg", '<svg role="img" aria-label="QR code for your authenticator app"', 1))  # noqa: S704


@bp.route("/register", methods=["GET", "POST"])
@limiter.limit(lambda: _limit("RATELIMIT_REGISTER"), methods=["POST"])
def register() -> Response | str:
    form = forms.RegisterForm()
    if form.validate_on_submit():
        try:
            user_id = accounts.register(uow(), form.email.data or "", form.password.data or "", form.mobile.data or "")
        except InputError as exc:
            getattr(form, exc.field or "password").errors = [exc.message]
        else:
            session.clear()
            _keep("registered_email", accounts.normalise_email(form.email.data or ""))
            if user_id is not None:
                session["pending_user_id"] = user_id
            return redirect(url_for("auth.confirm_email"))
    return render_template("auth/register.html", form=form)


@bp.route("/register/confirm", methods=["GET", "POST"])
@limiter.limit(lambda: _limit("RATELIMIT_CODE"), methods=["POST"], deduct_when=_failed)
def confirm_email() -> Response | str:
    email = _kept("registered_email")
    user = _pending_user()
    if email is None and user is None:
        return redirect(url_for("auth.login"))
    form = forms.CodeForm()
    if form.validate_on_submit():
        if user is None:
            form.code.errors = [accounts.CODE_WRONG]
        else:
            try:
                accounts.confirm_email(uow(), user, form.code.data or "")
            except InputError as exc:
                form.code.errors = [exc.message]
            else:
                flash("Your email address is confirmed.", "success")
                return redirect(url_for("auth.setup"))
    return render_template("auth/confirm_email.html", form=form, email=email or (user.email if user else ""))


@bp.route("/reset-password", methods=["GET", "POST"])
@limiter.limit("5 per hour", methods=["POST"])
def reset_request() -> Response | str:
    form = forms.EmailForm()
    if form.validate_on_submit():
        accounts.request_password_reset(uow(), form.email.data or "")
        _keep("reset_email", accounts.normalise_email(form.email.data or ""))
        return redirect(url_for("auth.reset_password"))
    return render_template("auth/reset_request.html", form=form)


@bp.route("/reset-password/new", methods=["GET", "POST"])
@limiter.limit(lambda: _limit("RATELIMIT_CODE"), methods=["POST"], deduct_when=_failed)
def reset_password() -> Response | str:
    form = forms.ResetForm(email=_kept("reset_email") or "")
    if form.validate_on_submit():
        try:
            accounts.reset_password(uow(), form.email.data or "", form.code.data or "", form.password.data or "")
        except InputError as exc:
            getattr(form, exc.field or "code").errors = [exc.message]
        else:
            throttle.clear(accounts.normalise_email(form.email.data or ""))
            end_session()
            flash("Your password has been changed. Sign in with your new password.", "success")
            return redirect(url_for("auth.login"))
    return render_template("auth/reset_password.html", form=form)


@bp.route("/login/new-password", methods=["GET", "POST"])
@limiter.limit("5 per 15 minutes", key_func=_user_key, methods=["POST"], deduct_when=_failed)
def new_password() -> Response | str:
    """A temporary password someone else chose is changed before anything else (the staff gates send here)."""
    user = signed_in_user()
    if user is None:
        return redirect(url_for("auth.login"))
    if not user.must_change_password:
        return redirect(landing_for(user))
    form = forms.TemporaryPasswordForm()
    if form.validate_on_submit():
        try:
            accounts.change_password(uow(), user, form.current_password.data or "", form.password.data or "")
        except InputError as exc:
            getattr(form, exc.field or "password").errors = [exc.message]
        else:
            start_session(user)  # the change ended every session; this browser carries on
            flash("Your password has been changed.", "success")
            return redirect(landing_for(user))
    return render_template("auth/new_password.html", form=form)


@bp.post("/logout")
def logout() -> Response:
    user = signed_in_user()
    if user is not None:
        accounts.sign_out(uow(), user)
    end_session()
    flash("You have signed out.", "success")
    return redirect(url_for("public.index"))
