"""/admin/practices/<ods>/migration: plan a practice's change of clinical system and take its steps."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

from flask import abort, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from patient_online.domain.errors import DomainError, InputError, NotFound
from patient_online.services import practices as practice_service
from patient_online.services import system_migration as service
from patient_online.services.unit_of_work import AbstractUnitOfWork
from patient_online.web.input import Form
from patient_online.wiring import uow

from . import bp

LONDON = ZoneInfo("Europe/London")
STEPS: dict[str, tuple[str, Callable[[AbstractUnitOfWork, int | None, str], object]]] = {
    "freeze": ("Changes are paused: patients see the plan's message.", service.freeze),
    "cut-over": ("The practice now uses the new system.", service.cut_over),
    "match": ("The new system was asked again for the patients still waiting.", service.match_patients),
    "done": ("The change of clinical system is finished.", service.finish),
    "rollback": ("The practice is back on its old system, with every patient's old id.", service.roll_back),
}


def _when(text: str, field: str, what: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text.strip()).replace(tzinfo=LONDON)
    except ValueError:
        raise InputError(f"Enter {what} as a date and time, like 5 December 2026 18:00", field) from None


def _page(ods: str, errors: dict[str, str] | None = None, **extra: object) -> str:
    try:
        settings = practice_service.adapter_settings(uow(), ods, request.values.get("adapter") or "demo")
    except NotFound:
        abort(404)
    plan = service.view_plan(uow(), ods)
    adapter = settings.adapter
    return render_template(
        "admin/migration.html",
        practice=settings.practice,
        plan=plan if plan and plan.state.open else None,
        last=plan if plan and not plan.state.open else None,
        adapter=adapter,
        adapters=settings.adapters,
        errors=errors or {},
        values=request.form,
        csrf_form=Form(),
        **extra,
    )


@bp.route("/practices/<ods>/migration", methods=["GET", "POST"])
def migration(ods: str) -> Response | str:
    if request.method == "POST" and Form().validate_on_submit():
        options = {k.removeprefix("option-"): v.strip() for k, v in request.form.items() if k.startswith("option-")}
        try:
            start = _when(request.form.get("window_start", ""), "window_start", "when changes pause")
            end = _when(request.form.get("window_end", ""), "window_end", "when the window ends")
            service.plan_migration(
                uow(),
                g.user.id,
                ods,
                request.form.get("adapter", ""),
                options,
                start,
                end,
                request.form.get("patient_message", ""),
            )
        except InputError as exc:
            return _page(ods, exc.fields or {"adapter": exc.message})
        except NotFound:
            abort(404)
        flash("Change of clinical system planned.", "success")
        return redirect(url_for("admin.migration", ods=ods))
    return _page(ods)


@bp.route("/practices/<ods>/migration/rehearse", methods=["POST"])
def migration_rehearse(ods: str) -> Response | str:
    if not Form().validate_on_submit():
        abort(400)
    try:
        report = service.rehearse(uow(), ods)
    except NotFound:
        abort(404)
    except DomainError as exc:
        return _page(ods, {"step": exc.message})
    return _page(ods, rehearsal=report)


@bp.route("/practices/<ods>/migration/<step>", methods=["POST"])
def migration_step(ods: str, step: str) -> Response | str:
    if step not in STEPS or not Form().validate_on_submit():
        abort(404 if step not in STEPS else 400)
    done, action = STEPS[step]
    try:
        result = action(uow(), g.user.id, ods)
    except NotFound:
        abort(404)
    except DomainError as exc:
        return _page(ods, {"step": exc.message})
    if isinstance(result, service.MatchReport):
        return _page(ods, report=result, done=done)
    flash(done, "success")
    return redirect(url_for("admin.migration", ods=ods))
