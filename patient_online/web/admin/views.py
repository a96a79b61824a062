"""/admin/practices: every practice, its clinical-system adapter and link state; add practices, set adapters."""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response
from wtforms import StringField
from wtforms.validators import DataRequired, Length, Optional

from patient_online.domain.errors import InputError, NotFound
from patient_online.services import practices as practice_service
from patient_online.services import system_ids
from patient_online.web.input import Form
from patient_online.wiring import uow

from . import bp


class AddPracticeForm(Form):
    ods_code = StringField("ODS code", validators=[DataRequired("Enter the practice's ODS code")])
    name = StringField("Practice name", validators=[DataRequired("Enter the practice name"), Length(max=120)])
    phone = StringField("Phone number for patients", validators=[Optional(), Length(max=30)])
    address = StringField("Address", validators=[Optional(), Length(max=300)])


@bp.route("/", methods=["GET"])
@bp.route("/practices", methods=["GET", "POST"])
def practices() -> Response | str:
    form = AddPracticeForm()
    if form.validate_on_submit():
        try:
            added = practice_service.add_practice(
                uow(),
                form.ods_code.data or "",
                form.name.data or "",
                phone=form.phone.data or "",
                address=form.address.data or "",
                actor_id=g.user.id,
            )
        except InputError as exc:
            form.ods_code.errors = [exc.message]
        else:
            flash(
                f"{added.name} ({added.ods_code}) added. It uses the demo clinical system until you change it.",
                "success",
            )
            return redirect(url_for("admin.practice", ods=added.ods_code))
    found = practice_service.list_practices(uow())
    return render_template("admin/practices.html", practices=found.practices, states=found.states, form=form)


@bp.route("/practices/<ods>", methods=["GET", "POST"])
def practice(ods: str) -> Response | str:
    try:
        page = practice_service.adapter_settings(
            uow(), ods, request.form.get("adapter") or request.args.get("adapter") or None
        )
    except NotFound:
        abort(404)
    adapter = page.adapter
    errors: dict[str, str] = {}
    values = page.values
    if request.method == "POST" and Form().validate_on_submit():
        raw = {o.name: request.form.get(f"option-{o.name}", "").strip() for o in adapter.options}
        try:
            practice_service.set_adapter(
                uow(), page.practice.ods_code, adapter.name, raw, g.user.id, keep_blank_secrets=True
            )
        except InputError as exc:
            errors = exc.fields
            values = {k: ("" if k in adapter.secret_options else v) for k, v in raw.items()}
        else:
            # Each system has its own ids for patients: find the practice's patients again by NHS number.
            found = system_ids.refind_practice_patients(uow(), page.practice.ods_code, actor_id=g.user.id)
            flash(
                f"{page.practice.name} now uses {adapter.title}. Patients found in it: {found.found}; "
                f"not found: {found.not_found}; not reached (found on their next visit): {found.failed}.",
                "success",
            )
            return redirect(url_for("admin.practice", ods=page.practice.ods_code))
    return render_template(
        "admin/practice.html",
        practice=page.practice,
        adapter=adapter,
        adapters=page.adapters,
        values=values,
        errors=errors,
        state=page.state,
        csrf_form=Form(),
    )


from . import migration  # noqa: E402,F401  (a change of clinical system: /practices/<ods>/migration)
