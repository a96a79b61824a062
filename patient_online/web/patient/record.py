"""/record: the parts of the GP record the practice has opened, one section at a time, and downloads."""

from __future__ import annotations

import json

from flask import Response, abort, render_template

from patient_online.domain.errors import ClinicalSystemError, ClinicalSystemUnavailable
from patient_online.domain.record import Section
from patient_online.services import record as records
from patient_online.wiring import uow

from . import acting, bp


@bp.get("/record")
def record() -> str | tuple[str, int]:
    try:
        overview = records.view_overview(uow(), acting())
    except ClinicalSystemError as exc:  # the practice's system answered, and said why not
        return _unavailable(exc)
    return render_template("patient/record/overview.html", overview=overview)


@bp.get("/record/download")
def record_print() -> str | tuple[str, int]:
    current = acting()
    try:
        printable = records.printable_record(uow(), current)
    except ClinicalSystemUnavailable:
        return _unavailable()
    except ClinicalSystemError as exc:  # the practice's system answered, and said why not
        return _unavailable(exc)
    return render_template("patient/record/print.html", printable=printable)


@bp.get("/record/download.json")
def record_fhir() -> Response | tuple[str, int]:
    current = acting()
    try:
        bundle = records.export_fhir_bundle(uow(), current)
    except ClinicalSystemUnavailable:
        return _unavailable()
    except ClinicalSystemError as exc:  # the practice's system answered, and said why not
        return _unavailable(exc)
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
    except ClinicalSystemError as exc:  # the practice's system answered, and said why not
        return _unavailable(exc)
    return render_template("patient/record/section.html", scope=scope, view=view)


def _unavailable(problem: ClinicalSystemError | None = None) -> tuple[str, int]:
    """The page for a record that cannot be shown: the link is down (503), or the practice's system refused
    and its reason is given in plain words, with the status that fits it (a record not found: 404)."""
    scope = records.record_scope(acting())
    if problem is None:
        return render_template("patient/record/unavailable.html", scope=scope), 503
    page = render_template("patient/record/unavailable.html", scope=scope, problem=problem.message)
    return page, problem.http_status
