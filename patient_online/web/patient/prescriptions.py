"""Patient pages: repeat prescriptions (the template, ordering, requests, the nominated pharmacy)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response
from wtforms import HiddenField, RadioField, SelectMultipleField, StringField, TextAreaField

from patient_online.domain.errors import ClinicalSystemUnavailable, DomainError, InputError, NotFound
from patient_online.domain.prescriptions import Collection
from patient_online.services import prescriptions as rx
from patient_online.web import held
from patient_online.web.input import Form
from patient_online.wiring import uow

from . import acting, bp

OFFERED = "rx_offered"
OFFERED_FOR = dt.timedelta(hours=2)


class OrderForm(Form):
    items = SelectMultipleField("Which medicines do you need?", choices=[], validate_choice=False)
    note = TextAreaField("Anything your GP practice should know? (optional)")
    collection = RadioField(
        "Where do you want to collect your prescription?",
        choices=[(c.value, c.value) for c in Collection],
        validate_choice=False,
    )
    collection_asked = HiddenField()  # the form showed the choice: not choosing is then an error
    idempotency_key = HiddenField()

    def chosen_collection(self) -> Collection | None:
        """The choice; None from a form that did not ask (it was rendered before the choice existed)."""
        value = self.collection.data or ""
        if value in {c.value for c in Collection}:
            return Collection(value)
        if self.collection_asked.data or value:
            raise InputError(rx.CHOOSE_COLLECTION, "collection")
        return None


class PharmacySearchForm(Form):
    class Meta:
        csrf = False  # a search changes nothing

    q = StringField("Search by pharmacy name, town or postcode")


class NominateForm(Form):
    pharmacy = HiddenField()


class CancelForm(Form):
    pass


@bp.get("/prescriptions")
def prescriptions() -> str:
    view = rx.repeat_template(uow(), acting())
    return render_template("patient/prescriptions/index.html", view=view)


def _order_page(form: OrderForm, status: int = 200) -> tuple[str, int]:
    current = acting()
    view = rx.repeat_template(uow(), current)
    form.collection.choices = [
        (
            Collection.PHARMACY.value,
            f"Your nominated pharmacy: {view.pharmacy.name}" if view.pharmacy else "A pharmacy (you will choose one)",
        ),
        (Collection.SURGERY.value, f"Collect a paper prescription from {current.practice.name}"),
    ]
    # Remember what the form offered, so a request can still be queued if the link fails before it is sent.
    # Medicine names are health data: they stay on the server, the cookie holds only a random token.
    offered = {"patient": current.patient.id, "items": rx.template_item_names(x.item for x in view.orderable)}
    held.hold(OFFERED, offered, OFFERED_FOR)
    return render_template("patient/prescriptions/order.html", view=view, form=form), status


@bp.get("/prescriptions/order")
def order() -> tuple[str, int]:
    form = OrderForm(formdata=None, idempotency_key=rx.new_idempotency_key())
    preselected = request.args.getlist("item")
    form.items.data = preselected
    return _order_page(form)


@bp.post("/prescriptions/order")
def order_post() -> Response | tuple[str, int]:
    form = OrderForm()
    current = acting()
    if form.validate_on_submit():
        remembered: dict[str, Any] = held.read(OFFERED) or {}
        offered = remembered.get("items", {}) if remembered.get("patient") == current.patient.id else {}
        try:
            result = rx.order_repeats(
                uow(),
                current,
                form.items.data or [],
                form.note.data or "",
                form.idempotency_key.data or "",
                offered=offered,
                collection=form.chosen_collection(),
            )
        except InputError as exc:
            if exc.field == "pharmacy":
                flash(exc.message, "error")
                return redirect(url_for("patient.pharmacy", next="order"))
            getattr(form, exc.field).errors = [exc.message]
        else:
            return redirect(url_for("patient.order_done", order_id=result.order.id))
    try:
        return _order_page(form, 400)
    except ClinicalSystemUnavailable:
        if not form.errors:
            raise
        # The link is down, so the form cannot be shown again; what was wrong with it (such as "already
        # requested" for an item queued a moment ago) still can.
        messages = [message for errors in form.errors.values() for message in errors]
        return render_template("patient/prescriptions/not_ordered.html", messages=messages), 400


@bp.get("/prescriptions/orders/<id:order_id>")
def order_done(order_id: int) -> str:
    result = rx.order_for(uow(), acting(), order_id)
    return render_template("patient/prescriptions/done.html", result=result)


@bp.get("/prescriptions/requests")
def requests() -> str:
    history = rx.list_requests(uow(), acting())
    return render_template("patient/prescriptions/requests.html", history=history)


@bp.get("/prescriptions/requests/<request_id>/cancel")
def cancel(request_id: str) -> str:
    line = rx.request_for(uow(), acting(), request_id)
    return render_template("patient/prescriptions/cancel.html", line=line, form=CancelForm())


@bp.post("/prescriptions/requests/<request_id>/cancel")
def cancel_post(request_id: str) -> Response:
    form = CancelForm()
    if not form.validate_on_submit():
        return redirect(url_for("patient.cancel", request_id=request_id))
    try:
        rx.cancel_request(uow(), acting(), request_id)
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        flash(exc.message, "error")
    else:
        flash("Your request has been cancelled.", "success")
    return redirect(url_for("patient.requests"))


@bp.get("/prescriptions/pharmacy")
def pharmacy() -> str:
    current = acting()
    search = PharmacySearchForm(request.args)
    choice = rx.pharmacy_choice(uow(), current, search.q.data or "")
    return render_template(
        "patient/prescriptions/pharmacy.html",
        current=choice.current,
        search=search,
        results=choice.results,
        form=NominateForm(),
        next_page=request.args.get("next", ""),
    )


@bp.post("/prescriptions/pharmacy")
def pharmacy_post() -> Response | tuple[str, int]:
    current = acting()
    form = NominateForm()
    next_page = request.args.get("next", "")
    if form.validate_on_submit():
        try:
            chosen = rx.nominate_pharmacy(uow(), current, form.pharmacy.data or "")
        except InputError as exc:
            form.pharmacy.errors = [exc.message]
        else:
            flash(f"Your prescriptions will now go to {chosen.name}.", "success")
            return redirect(url_for("patient.order" if next_page == "order" else "patient.prescriptions"))
    search = PharmacySearchForm(request.args)
    choice = rx.pharmacy_choice(uow(), current, search.q.data or "")
    page = render_template(
        "patient/prescriptions/pharmacy.html",
        current=choice.current,
        search=search,
        results=choice.results,
        form=form,
        next_page=next_page,
    )
    return page, 400
