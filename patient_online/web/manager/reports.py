"""/manage/reports: the uptake report for a chosen period, as a page and as a CSV download."""

from __future__ import annotations

from flask import Response, g, render_template, request

from patient_online.domain.errors import InputError
from patient_online.domain.reports import SNOMED_TERMS, Period
from patient_online.services import reports
from patient_online.web.fields import DateParts
from patient_online.web.input import Form
from patient_online.wiring import uow

from . import bp


class PeriodForm(Form):
    class Meta:
        csrf = False  # a GET that changes nothing

    start = DateParts("From", required_message="Enter the first day of the period")
    end = DateParts("To", required_message="Enter the last day of the period")


def _period(form: PeriodForm) -> Period | None:
    """The period asked for (the last 28 days when none was), or None with errors on the form."""
    if not request.args:
        fallback = reports.choose_period(uow())
        form.start.data, form.end.data = fallback.start, fallback.end
        return fallback
    if not form.validate():
        return None
    try:
        return reports.choose_period(uow(), form.start.data, form.end.data)
    except InputError as exc:
        getattr(form, exc.field).errors = [exc.message]
        return None


@bp.get("/reports")
def report() -> str | tuple[str, int]:
    form = PeriodForm(request.args)
    period = _period(form)
    if period is None:
        return render_template("manager/reports.html", form=form, report=None, rows=[]), 400
    found = reports.view_uptake_report(uow(), g.practice, g.user, period)
    return render_template(
        "manager/reports.html",
        form=form,
        report=found,
        rows=reports.report_rows(found),
        codes=SNOMED_TERMS,
        csv_query=request.query_string.decode()
        or f"start-day={period.start.day}&start-month={period.start.month}"
        f"&start-year={period.start.year}&end-day={period.end.day}&end-month={period.end.month}"
        f"&end-year={period.end.year}",
    )


@bp.get("/reports.csv")
def report_csv() -> Response | tuple[str, int]:
    form = PeriodForm(request.args)
    period = _period(form)
    if period is None:
        return render_template("manager/reports.html", form=form, report=None, rows=[]), 400
    found = reports.view_uptake_report(uow(), g.practice, g.user, period, fmt="csv")
    name = f"uptake-{g.practice.ods_code}-{period.start.isoformat()}-to-{period.end.isoformat()}.csv"
    return Response(
        reports.report_csv(found),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
