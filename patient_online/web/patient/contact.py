"""/account/contact: a mobile number for text messages (confirmed with a code sent to it), and email only or email
and a text for each kind of message."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, session, url_for
from werkzeug.wrappers import Response
from wtforms import RadioField, StringField
from wtforms.validators import DataRequired, Length, Regexp

from patient_online.domain.errors import InputError
from patient_online.extensions import limiter
from patient_online.services import contact_preferences as contact
from patient_online.web.input import Form
from patient_online.wiring import uow

from . import bp


class MobileForm(Form):
    mobile = StringField(
        "UK mobile number",
        validators=[DataRequired("Enter your mobile number"), Length(max=30, message=contact.MOBILE_FORMAT)],
    )


class MobileCodeForm(Form):
    code = StringField(
        "Code from the text message",
        validators=[
            DataRequired("Enter the 6-digit code we sent to your mobile"),
            Regexp(r"^\s*\d{3}\s?\d{3}\s*$", message="Enter the code as 6 digits, like 123456"),
        ],
    )


class RemoveForm(Form):
    pass


def _choices_form(current: dict[str, str] | None = None) -> Form:
    class ChannelsForm(Form):
        pass

    for kind, label in contact.KINDS.items():
        field = RadioField(
            label,
            choices=list(contact.CHANNELS.items()),
            default=(current or {}).get(kind, "email"),
            validators=[DataRequired("Choose how you want to be told")],
        )
        setattr(ChannelsForm, kind, field)
    return ChannelsForm(prefix="ch")


def _page(status: int = 200, **forms: object) -> tuple[str, int]:
    found = contact.choices(uow(), g.user)
    context: dict[str, object] = {
        "found": found,
        "mobile_form": MobileForm(prefix="mo"),
        "code_form": MobileCodeForm(prefix="mc"),
        "remove_form": RemoveForm(prefix="rm"),
        "choices_form": _choices_form(found.channels),
        "kinds": contact.KINDS,
    }
    context.update(forms)
    return render_template("patient/contact.html", **context), status


def _account_key() -> str:
    return f"contact:{session.get('_user_id', '-')}"


@bp.get("/account/contact")
def contact_choices() -> tuple[str, int]:
    return _page()


@bp.post("/account/contact/mobile")
@limiter.limit("5 per hour", key_func=_account_key)
def add_mobile() -> Response | tuple[str, int]:
    form = MobileForm(prefix="mo")
    if form.validate_on_submit():
        try:
            number = contact.start_mobile_change(uow(), g.user, form.mobile.data or "")
        except InputError as exc:
            form.mobile.errors = [exc.message]
        else:
            flash(f"We have sent a code by text message to {number}. Enter it below.", "info")
            return redirect(url_for("patient.contact_choices", _anchor="confirm-mobile"))
    return _page(400, mobile_form=form)


@bp.post("/account/contact/mobile/confirm")
def confirm_mobile() -> Response | tuple[str, int]:
    form = MobileCodeForm(prefix="mc")
    if form.validate_on_submit():
        try:
            contact.confirm_mobile(uow(), g.user, (form.code.data or "").replace(" ", ""))
        except InputError as exc:
            form.code.errors = [exc.message]
        else:
            flash("Your mobile number is confirmed. Choose below what we may tell you by text message.", "success")
            return redirect(url_for("patient.contact_choices", _anchor="choices"))
    return _page(400, code_form=form)


@bp.post("/account/contact/mobile/remove")
def remove_mobile() -> Response | tuple[str, int]:
    form = RemoveForm(prefix="rm")
    if not form.validate_on_submit():
        return _page(400)
    contact.remove_mobile(uow(), g.user)
    flash("We have removed your mobile number. We will contact you by email.", "success")
    return redirect(url_for("patient.contact_choices"))


@bp.post("/account/contact/choices")
def save_choices() -> Response | tuple[str, int]:
    form = _choices_form()
    if form.validate_on_submit():
        chosen = {kind: str(getattr(form, kind).data) for kind in contact.KINDS}
        try:
            contact.set_channels(uow(), g.user, chosen)
        except InputError as exc:
            field = getattr(form, exc.field, None) or getattr(form, next(iter(contact.KINDS)))
            field.errors = [exc.message]
        else:
            flash("Your choices are saved.", "success")
            return redirect(url_for("patient.contact_choices"))
    return _page(400, choices_form=form)
