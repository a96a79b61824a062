"""/admin/practices: every practice, its clinical-system adapter and link state; add practices, set adapters."""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import StringField
from wtforms.validators import DataRequired, Length, Optional

from patient_online.adapters import registry
from patient_online.adapters.registry import OptionsInvalid
from patient_online.extensions import db
from patient_online.models import Practice
from patient_online.services import practices as practice_service
from patient_online.services.clinical import system_for

from . import bp


class AddPracticeForm(FlaskForm):
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
                db.session,
                form.ods_code.data or "",
                form.name.data or "",
                phone=form.phone.data or "",
                address=form.address.data or "",
                actor_id=g.user.id,
            )
        except practice_service.PracticeError as exc:
            form.ods_code.errors = [exc.message]
        else:
            flash(
                f"{added.name} ({added.ods_code}) added. It uses the demo clinical system until you change it.",
                "success",
            )
            return redirect(url_for("admin.practice", ods=added.ods_code))
    rows = db.session.scalars(select(Practice).order_by(Practice.ods_code)).all()
    states = {p.id: system_for(p).link_state() for p in rows}
    return render_template("admin/practices.html", practices=rows, states=states, form=form)


@bp.route("/practices/<ods>", methods=["GET", "POST"])
def practice(ods: str) -> Response | str:
    found = db.session.scalar(select(Practice).where(Practice.ods_code == ods.upper()))
    if found is None:
        abort(404)
    chosen = request.form.get("adapter") or request.args.get("adapter") or found.adapter_name
    if chosen not in registry.names():
        abort(404)
    adapter = registry.get(chosen)
    errors: dict[str, str] = {}
    values = {o.name: ("" if o.secret else str(found.adapter_options.get(o.name, ""))) for o in adapter.options}
    if request.method == "POST" and FlaskForm().validate_on_submit():
        raw = {o.name: request.form.get(f"option-{o.name}", "").strip() for o in adapter.options}
        # A secret left blank keeps the stored value, so it never has to be shown again.
        keep = {o.name for o in adapter.options if o.secret and not raw[o.name] and o.name in found.adapter_options}
        try:
            practice_service.set_adapter(
                db.session, found, chosen, {k: v for k, v in raw.items() if v}, g.user.id, keep_secrets=keep
            )
        except OptionsInvalid as exc:
            errors = exc.errors
            values = {k: ("" if k in adapter.secret_options else v) for k, v in raw.items()}
        else:
            flash(f"{found.name} now uses {adapter.title}.", "success")
            return redirect(url_for("admin.practice", ods=found.ods_code))
    state = system_for(found).link_state()
    return render_template(
        "admin/practice.html",
        practice=found,
        adapter=adapter,
        adapters=registry.all_types(),
        values=values,
        errors=errors,
        state=state,
        csrf_form=FlaskForm(),
    )
