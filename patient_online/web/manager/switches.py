"""/manage/services: a summary of the online services (check answers), and one change page per service (rule 5)."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response
from wtforms import RadioField, TextAreaField, ValidationError

from patient_online.domain.access import Service
from patient_online.domain.controls import (
    DEFAULT_LEVEL_CHOICES,
    MESSAGE_MAX_LENGTH,
    OFF_MEANS,
    REASON_MAX_LENGTH,
    SwitchSetting,
    setting_words,
)
from patient_online.domain.errors import InputError
from patient_online.domain.record import RecordLevel
from patient_online.services import controls
from patient_online.services.controls import SwitchView
from patient_online.web.fields import DateParts
from patient_online.web.input import Form
from patient_online.wiring import uow

from . import bp

LEVEL_WORDS = {
    RecordLevel.NONE: "No record access",
    RecordLevel.SUMMARY: "Summary record: allergies, adverse reactions and medicines",
    RecordLevel.DETAILED: "Detailed coded record: also problems, vaccinations, test results, procedures, referrals",
    RecordLevel.FULL: "Full record from the access start date: also consultation notes and documents",
}


class OptionalDate(DateParts):
    """A date that may be left blank."""

    def process(self, formdata: Any, data: Any = None, extra_filters: Any = None) -> None:
        super().process(formdata, data, extra_filters)
        if self.process_errors == [""]:
            self.process_errors = []
            self.data = None


class SwitchForm(Form):
    enabled = RadioField(
        "Available online",
        choices=[("on", "On – patients can use it"), ("off", "Off – patients see your message instead")],
        validate_choice=False,
    )
    default_level = RadioField(
        "What newly verified adults see of their GP record",
        choices=[(level.value, LEVEL_WORDS[level]) for level in DEFAULT_LEVEL_CHOICES],
        validate_choice=False,
    )
    message = TextAreaField("Message for patients (optional)")
    off_reason = TextAreaField("Why is this below what the GP contract requires?")
    expected_return = OptionalDate("Expected date of return", required_message="")

    def validate_enabled(self, field: RadioField) -> None:
        if field.data not in ("on", "off"):
            raise ValidationError("Choose whether the service is on or off")


def _service(name: str) -> Service:
    try:
        return Service(name)
    except ValueError:
        abort(404)


def _form(view: SwitchView, submitted: bool) -> SwitchForm:
    form = SwitchForm(
        data={
            "enabled": "on" if view.enabled else "off",
            "default_level": view.default_level.value if view.default_level else None,
            "message": view.message,
            "off_reason": view.off_reason,
            "expected_return": view.expected_return,
        },
        meta={"csrf": submitted},
    )
    if view.service is not Service.RECORD:
        del form.default_level
    return form


@bp.get("/services")
def services() -> str:
    page = controls.switches_page(uow(), g.practice, request.args.get("page", 1, type=int) or 1)
    return render_template(
        "manager/services.html",
        views=page.views,
        words={v.service: setting_words(v.setting) for v in page.views},
        history=page.history,
    )


@bp.route("/services/<service_name>", methods=["GET", "POST"])
def change_service(service_name: str) -> Response | str | tuple[str, int]:
    service = _service(service_name)
    view = controls.switch_view(uow(), g.practice, service)
    form = _form(view, request.method == "POST")
    if request.method != "POST":
        return _page(view, form)
    if form.validate():
        setting = SwitchSetting(
            service=service,
            enabled=form.enabled.data == "on",
            message=form.message.data or "",
            off_reason=form.off_reason.data or "",
            expected_return=form.expected_return.data,
            default_level=_level(form) if service is Service.RECORD else None,
        )
        try:
            changed = controls.set_switch(uow(), g.practice, g.user, setting)
        except InputError as exc:
            for name, problem in exc.fields.items():
                getattr(form, name).errors = [problem]
        else:
            flash(_done_message(setting, changed), "success")
            return redirect(url_for("manager.services"))
    return _page(view, form), 400


def _level(form: SwitchForm) -> RecordLevel | None:
    try:
        return RecordLevel(form.default_level.data)
    except ValueError:
        return None


def _done_message(setting: SwitchSetting, changed: bool) -> str:
    label = setting.service.label
    if not changed:
        return f"{label}: nothing changed."
    if setting.below_contract:
        return (
            f"{label} saved. The GP contract requires this service: it shows as below contract on your uptake "
            "report until it is back."
        )
    return f"{label} is {'on' if setting.enabled else 'off'} for every patient of the practice, from now."


def _page(view: SwitchView, form: SwitchForm) -> str:
    return render_template(
        "manager/service_change.html",
        view=view,
        form=form,
        off_means=OFF_MEANS[view.service],
        message_max=MESSAGE_MAX_LENGTH,
        reason_max=REASON_MAX_LENGTH,
        Service=Service,
    )
