"""/manager/system-change: the practice's change of clinical system as planned by the system administrator
(read-only: what patients see meanwhile, the window, where it stands)."""

from __future__ import annotations

from flask import g, render_template

from patient_online.services import system_migration as service
from patient_online.wiring import uow

from . import bp


@bp.route("/system-change", methods=["GET"])
def migration() -> str:
    plan = service.view_plan(uow(), g.practice.ods_code)
    return render_template("manager/migration.html", practice=g.practice, plan=plan)
