"""/reception/system-change: patients whose details reception checks after the practice changed clinical system."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, url_for
from werkzeug.wrappers import Response

from patient_online.domain.errors import DomainError
from patient_online.services import system_migration as service
from patient_online.web.input import Form
from patient_online.wiring import uow

from . import bp


@bp.route("/system-change", methods=["GET"])
def system_change() -> str:
    found = service.checking_list(uow(), g.user.id, g.practice)
    return render_template("reception/migration.html", found=found, csrf_form=Form())


@bp.route("/system-change/check-again", methods=["POST"])
def system_change_check_again() -> Response | tuple[str, int]:
    if not Form().validate_on_submit():
        return render_template("reception/migration.html", found=None, csrf_form=Form(), problem="Try again."), 400
    try:
        report = service.match_patients(uow(), g.user.id, g.practice.ods_code)
    except DomainError as exc:
        found = service.checking_list(uow(), g.user.id, g.practice)
        return render_template("reception/migration.html", found=found, csrf_form=Form(), problem=exc.message), 409
    flash(f"The new system was asked again: {len(report.waiting)} still to check.", "success")
    return redirect(url_for("reception.system_change"))
