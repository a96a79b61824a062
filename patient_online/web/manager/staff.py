"""/manage/staff: the practice's staff and their roles; managers add and remove them."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, url_for
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Optional

from patient_online.domain.errors import InputError
from patient_online.services import staff as staff_service
from patient_online.web.fields import Choice
from patient_online.web.input import Form
from patient_online.wiring import uow

from . import bp


class AddStaffForm(Form):
    email = EmailField("Work email address", validators=[DataRequired("Enter their work email address")])
    name = StringField("Full name", validators=[Optional()])
    role = Choice(
        "Role",
        choices=[("receptionist", "Receptionist"), ("practice_manager", "Practice manager")],
        message="Select a role",
    )
    password = PasswordField("Temporary password (new accounts only)", validators=[Optional()])


@bp.route("/staff", methods=["GET", "POST"])
def staff() -> Response | str:
    form = AddStaffForm()
    if form.validate_on_submit():
        email, role = form.email.data or "", form.role.data or ""
        try:
            staff_service.add_staff(
                uow(),
                g.practice,
                email=email,
                role=role,
                password=form.password.data or "",
                name=form.name.data or "",
                actor_id=g.user.id,
            )
        except InputError as exc:
            getattr(form, exc.field or "email").errors = [exc.message]
        else:
            flash(
                f"{email} now has the {role.replace('_', ' ')} role. A new account sets up an authenticator app and "
                "chooses its own password at first sign-in.",
                "success",
            )
            return redirect(url_for("manager.staff"))
    members = staff_service.practice_staff(uow(), g.practice)
    return render_template("manager/staff.html", form=form, members=members)


@bp.post("/staff/<id:membership_id>/remove")
def remove_staff(membership_id: int) -> Response:
    form = Form()
    if form.validate_on_submit():
        try:
            staff_service.remove_role(uow(), g.practice, membership_id, g.user.id)
        except InputError as exc:
            flash(f"{exc.message}.", "error")
        else:
            flash("Role removed.", "success")
    return redirect(url_for("manager.staff"))
