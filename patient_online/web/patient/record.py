"""/record: the parts of the GP record the practice has opened, one section at a time, and downloads."""

from __future__ import annotations

import json

from flask import Response, abort, render_template

from patient_online.domain.errors import ClinicalSystemUnavailable
from patient_online.domain.record import Section
from patient_online.services import record as records
from patient_online.wiring import uow

from . import acting, bp


@bp.get("/record")
def record() -> str:
    return render_template("patient/record/overview.html", overview=records.view_overview(uow(), acting()))


@bp.get("/record/download")
def record_print() -> str | tuple[str, int]:
    current = acting()
    try:
        printable = records.printable_record(uow(), current)
    except ClinicalSystemUnavailable:
        return _unavailable()
    return render_template("patient/record/print.html", printable=printable)


@bp.get("/record/download.json")
def record_fhir() -> Response | tuple[str, int]:
    current = acting()
    try:
        bundle = records.export_fhir_bundle(uow(), current)
    except ClinicalSystemUnavailable:
        return _unavailable()
    filename = f"gp-record-{uow().today().isoformat()}.json"
    return Response(
        json.dumps(bundle, indent=2, ensure_ascii=False),
        mimetype="application/fhir+json",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.get("/record/<slug>")
def record_section(slug: str) -> str | tuple[str, int]:
    try:
        section = Section(slug)
    except ValueError:
        abort(404)
    current = acting()
    try:
        scope, view = records.view_section(uow(), current, section)
    except ClinicalSystemUnavailable:
        return _unavailable()
    return render_template("patient/record/section.html", scope=scope, view=view)


def _unavailable() -> tuple[str, int]:
    scope = records.record_scope(acting())
    return render_template("patient/record/unavailable.html", scope=scope), 503
