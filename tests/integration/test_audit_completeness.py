"""Every state change and every view of clinical or personal data leaves an audit event (design rule 19).

The walk takes every POST route in the app's url_map and every record page. For each POST route it signs in
as the audience the route is for, opens the page holding the route's form, fills the form in as a person
would (each field's shown value, the first choice of each radio and select, every box ticked, a reason typed
in each text area, plus a few values only the demo data can give), submits it and checks that an audit event
was written in the request. A route missing from both ``ROUTES`` and ``NOT_AUDITED`` fails the walk: a new
route must say how it is audited, or why it is not.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import pytest
from sqlalchemy import select, text

from patient_online.adapters.demo.seed import DEMO_PASSWORD
from patient_online.extensions import db
from patient_online.models import AccountLink, LinkRequest, Patient, ProxyLink, StaffMembership, User

PRACTICE = "Y02001"
PATIENT = f"patient.{PRACTICE.lower()}@example.com"
PARENT = f"parent.{PRACTICE.lower()}@example.com"
NEWCOMER = f"newpatient.{PRACTICE.lower()}@example.com"
RECEPTION = f"reception.{PRACTICE.lower()}@example.com"
MANAGER = f"manager.{PRACTICE.lower()}@example.com"
ADMIN = "admin@example.com"
REASON = "Checked with the patient at the front desk."


# What a person's browser would send ---------------------------------------------------------------------
class _Forms(HTMLParser):
    """Every form on a page: its action and the fields a browser would submit, filled in as a person might."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, Any]]] = []
        self._fields: dict[str, Any] | None = None
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("method", "get").lower() == "post":
            self._fields = {}
            self.forms.append((a.get("action", ""), self._fields))
        if self._fields is None:
            return
        name = a.get("name", "")
        if tag == "input" and name:
            kind = a.get("type", "text").lower()
            if kind in ("radio", "checkbox"):
                if kind == "radio" and name in self._fields:
                    return
                if kind == "checkbox" and name in self._fields:
                    existing = self._fields[name]
                    self._fields[name] = [
                        *(existing if isinstance(existing, list) else [existing]),
                        a.get("value", "y"),
                    ]
                    return
                self._fields[name] = a.get("value", "y")
            elif kind not in ("submit", "button", "file"):
                self._fields[name] = a.get("value", "")
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select and a.get("value") and self._select not in self._fields:
            self._fields[self._select] = a["value"]
        elif tag == "textarea" and name:
            self._textarea = name
            self._fields[name] = REASON

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._fields = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def forms_on(html: str) -> list[tuple[str, dict[str, Any]]]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


@dataclass
class Route:
    """How to reach a POST route as its audience would: who, the address, and the page its form is on."""

    who: str | None
    url: str | Callable[[Walk], str]
    page: str | Callable[[Walk], str] | None = None  # default: the same address
    form_with: str = ""  # a field the right form has, when the page has several forms for the address
    data: dict[str, Any] | Callable[[Walk], dict[str, Any]] = field(default_factory=dict)
    prepare: Callable[[Walk], None] | None = None  # runs once signed in


@dataclass
class Walk:
    app: Any
    client: Any

    def ids(self, query: Any) -> Any:
        with self.app.app_context():
            return db.session.scalar(query)

    def add(self, *rows: Any) -> None:
        with self.app.app_context():
            for row in rows:
                db.session.add(row)
            db.session.commit()

    def first_link(self, page: str, pattern: str, last: bool = False) -> str:
        html = self.client.get(page).get_data(as_text=True)
        found = re.findall(pattern, html)
        assert found, f"no link like {pattern} on {page}"
        return str(found[-1] if last else found[0])

    def user_id(self, email: str) -> int:
        return int(self.ids(select(User.id).where(User.email == email)))

    def patient_id(self, email: str = PATIENT) -> int:
        return int(self.ids(select(AccountLink.patient_id).where(AccountLink.user_id == self.user_id(email))))

    def submit_form(self, page: str, pattern: str = "", **data: Any) -> Any:
        """Fill in and send the first form on ``page`` (whose action matches ``pattern``), as the walk does."""
        html = self.client.get(page).get_data(as_text=True)
        action, fields = next((a, f) for a, f in forms_on(html) if re.search(pattern, a or page) and "/logout" not in a)
        return self.client.post(action or page, data={**fields, **data})

    def patient_details(self, email: str = PATIENT) -> dict[str, str]:
        with self.app.app_context():
            patient = db.session.get(Patient, self.patient_id(email))
            assert patient is not None
            return {
                "nhs_number": patient.nhs_number,
                "given_name": patient.given_name,
                "family_name": patient.family_name,
                "day": str(patient.date_of_birth.day),
                "month": str(patient.date_of_birth.month),
                "year": str(patient.date_of_birth.year),
            }

    def proxy_link_id(self, status: str = "active") -> int:
        found = self.ids(select(ProxyLink.id).where(ProxyLink.status == status).order_by(ProxyLink.id))
        assert found, f"no proxy link {status}"
        return int(found)


def _new_proxy(status: str) -> Callable[[Walk], None]:
    def prepare(walk: Walk) -> None:
        import datetime as dt

        patient_id = walk.patient_id(PATIENT)
        walk.add(
            ProxyLink(
                proxy_user_id=walk.user_id(f"patient2.{PRACTICE.lower()}@example.com"),
                patient_id=patient_id,
                relationship_text="Daughter",
                basis="consent",
                status=status,
                evidence="",
                created_at=dt.datetime.now(dt.UTC),
            )
        )

    return prepare


def _pending_link_request(walk: Walk) -> None:
    import datetime as dt

    with walk.app.app_context():
        patient = db.session.get(Patient, walk.patient_id(PATIENT))
        assert patient is not None
        db.session.add(
            LinkRequest(
                user_id=walk.user_id(NEWCOMER),
                practice_id=patient.practice_id,
                nhs_number=patient.nhs_number,
                clinical_id=patient.clinical_id,
                given_name=patient.given_name,
                family_name=patient.family_name,
                date_of_birth=patient.date_of_birth,
                postcode="KB1 4RT",
                created_at=dt.datetime.now(dt.UTC),
            )
        )
        db.session.commit()


def _book(walk: Walk) -> None:
    slot = walk.first_link("/appointments/slots", r"/appointments/slots/[^\"?#]+", last=True)  # well ahead
    walk.submit_form(slot, re.escape(slot), reason="A cough")


def _join_earlier_list(walk: Walk) -> None:
    walk.submit_form("/appointments/earlier", "/appointments/earlier$")


def _earlier_offer(walk: Walk) -> None:
    """On the list, and offered a time by the worker's round (as ``flask outbox run`` makes it)."""
    from patient_online.services import waitlist
    from patient_online.wiring import uow_factory

    _join_earlier_list(walk)
    with walk.app.app_context():
        waitlist.run(uow_factory(walk.app)(db.session))


def _offer_id(walk: Walk) -> int:
    from patient_online.models import SlotOffer

    found = walk.ids(select(SlotOffer.id).where(SlotOffer.status == "held").order_by(SlotOffer.id))
    assert found, "the worker made no earlier-appointment offer"
    return int(found)


def _order(walk: Walk) -> None:
    walk.submit_form("/prescriptions/order", "/prescriptions/order")


def _link_request(walk: Walk) -> dict[str, Any]:
    d = walk.patient_details()
    return {
        "request-practice": PRACTICE,
        "request-nhs_number": d["nhs_number"],
        "request-given_name": d["given_name"],
        "request-family_name": d["family_name"],
        "request-date_of_birth-day": d["day"],
        "request-date_of_birth-month": d["month"],
        "request-date_of_birth-year": d["year"],
        "request-postcode": "KB1 4RT",
    }


def _proxy_request(walk: Walk) -> dict[str, Any]:
    d = walk.patient_details()
    return {
        "practice": PRACTICE,
        "nhs_number": d["nhs_number"],
        "date_of_birth-day": d["day"],
        "date_of_birth-month": d["month"],
        "date_of_birth-year": d["year"],
        "relationship": "Son",
        "basis": "consent",
    }


def _today_fields(prefix: str, days: int = 0) -> dict[str, str]:
    import datetime as dt

    today = dt.date.today() + dt.timedelta(days=days)
    return {f"{prefix}-day": str(today.day), f"{prefix}-month": str(today.month), f"{prefix}-year": str(today.year)}


def _membership_id(walk: Walk) -> int:
    return int(
        walk.ids(
            select(StaffMembership.id).join(User, User.id == StaffMembership.user_id).where(User.email == RECEPTION)
        )
    )


ROUTES: dict[str, Route] = {
    # Signing in and accounts
    "auth.login": Route(None, "/login", data={"email": PATIENT, "password": "wrong password"}),
    "auth.register": Route(
        None,
        "/register",
        data={"email": "someone.new@example.com", "password": "Correct-horse-42-battery", "mobile": ""},
    ),
    "auth.reset_request": Route(None, "/reset-password", data={"email": PATIENT}),
    "patient.change_password": Route(
        PATIENT,
        "/account/password",
        page="/account",
        data={"pw-current_password": DEMO_PASSWORD, "pw-password": "Another-long-passphrase-9"},
    ),
    "patient.change_email": Route(
        PATIENT,
        "/account/email",
        page="/account",
        data={"em-current_password": DEMO_PASSWORD, "em-email": "moved@example.com"},
    ),
    # The patient's services
    "patient.book_slot": Route(
        PATIENT,
        lambda w: w.first_link("/appointments/slots", r"/appointments/slots/[^\"?#]+"),
        data={"reason": "A cough"},
    ),
    "patient.cancel_appointment": Route(
        PATIENT,
        lambda w: w.first_link("/appointments", r"/appointments/(?!slots|book)[A-Za-z0-9-]+") + "/cancel",
        prepare=_book,
    ),
    "patient.amend_appointment": Route(
        PATIENT,
        lambda w: w.first_link("/appointments", r"/appointments/(?!slots|book)[A-Za-z0-9-]+") + "/reason",
        data={"reason": "A cough and a temperature", "confirmed": "yes"},
        prepare=_book,
    ),
    "patient.earlier_appointments": Route(PATIENT, "/appointments/earlier"),
    "patient.leave_earlier_list": Route(
        PATIENT, "/appointments/earlier/leave", page="/appointments/earlier", prepare=_join_earlier_list
    ),
    "patient.accept_earlier_offer": Route(
        PATIENT,
        lambda w: f"/appointments/offers/{_offer_id(w)}/accept",
        page=lambda w: f"/appointments/offers/{_offer_id(w)}",
        prepare=_earlier_offer,
    ),
    "patient.decline_earlier_offer": Route(
        PATIENT,
        lambda w: f"/appointments/offers/{_offer_id(w)}/decline",
        page=lambda w: f"/appointments/offers/{_offer_id(w)}",
        prepare=_earlier_offer,
    ),
    "patient.order_post": Route(PATIENT, "/prescriptions/order", page="/prescriptions/order"),
    "patient.pharmacy_post": Route(
        PATIENT, "/prescriptions/pharmacy", page="/prescriptions/pharmacy?q=Kingsbridge", form_with="pharmacy"
    ),
    "patient.cancel_post": Route(
        PATIENT,
        lambda w: w.first_link("/prescriptions/requests", r"/prescriptions/requests/[^/\"]+/cancel"),
        prepare=_order,
    ),
    "patient.proxy_request": Route(PARENT, "/proxy/request", data=_proxy_request),
    "patient.end_proxy": Route(PARENT, lambda w: f"/proxy/{w.proxy_link_id()}/end"),
    "patient.proxy_consent": Route(
        PATIENT,
        lambda w: f"/proxy/{w.proxy_link_id('awaiting_consent')}/consent",
        prepare=_new_proxy("awaiting_consent"),
    ),
    "patient.link": Route(NEWCOMER, "/link", form_with="request-nhs_number", data=_link_request),
    "patient.download_my_data": Route(PATIENT, "/account/my-data"),
    "patient.close_account_post": Route(PATIENT, "/account/close"),
    "patient.add_mobile": Route(
        PATIENT, "/account/contact/mobile", page="/account/contact", data={"mo-mobile": "07700 900123"}
    ),
    "patient.save_choices": Route(PATIENT, "/account/contact/choices", page="/account/contact"),
    # Reception
    "reception.produce_patient_data": Route(RECEPTION, lambda w: f"/reception/patients/{w.patient_id()}/data"),
    "reception.close_account_post": Route(
        RECEPTION,
        lambda w: f"/reception/patients/{w.patient_id()}/accounts/{w.user_id(PATIENT)}/close",
        data={"reason": "The patient asked at the desk"},
    ),
    "reception.change_patient_access": Route(
        RECEPTION, lambda w: f"/reception/patients/{w.patient_id()}/access", data={"appointments": "off"}
    ),
    "reception.record_access_flag": Route(
        RECEPTION,
        lambda w: f"/reception/patients/{w.patient_id()}/access/flags",
        page=lambda w: f"/reception/patients/{w.patient_id()}/access",
        data=_today_fields("recorded_on"),
    ),
    "reception.issue_letter": Route(
        RECEPTION,
        lambda w: f"/reception/patients/{w.patient_id()}/letter",
        page=lambda w: f"/reception/patients/{w.patient_id()}/letter/new",
    ),
    "reception.suspend": Route(
        RECEPTION,
        lambda w: f"/reception/patients/{w.patient_id()}/links/"
        f"{w.ids(select(AccountLink.id).where(AccountLink.patient_id == w.patient_id()))}/suspend",
    ),
    "reception.proxy_detail": Route(
        RECEPTION,
        lambda w: f"/reception/proxies/{w.proxy_link_id('requested')}",
        form_with="approve-safeguarding_checked",
        data={"approve-basis": "consent"},
        prepare=_new_proxy("requested"),
    ),
    "reception.proxy_suspend": Route(
        RECEPTION,
        lambda w: f"/reception/proxies/{w.proxy_link_id()}/suspend",
        page=lambda w: f"/reception/proxies/{w.proxy_link_id()}",
    ),
    "reception.proxy_end": Route(RECEPTION, lambda w: f"/reception/proxies/{w.proxy_link_id()}/end"),
    "reception.verification_detail": Route(
        RECEPTION,
        lambda w: f"/reception/verifications/{w.ids(select(LinkRequest.id).where(LinkRequest.status == 'pending'))}",
        form_with="reject-reason",
        prepare=_pending_link_request,
    ),
    # Practice manager and system administrator
    "manager.change_service": Route(
        MANAGER, "/manage/services/appointments", data={"enabled": "off", **_today_fields("expected_return", days=7)}
    ),
    "manager.rules": Route(MANAGER, "/manage/rules"),
    "manager.staff": Route(
        MANAGER,
        "/manage/staff",
        data={"email": "new.receptionist@example.com", "name": "New Receptionist", "password": "Temporary-pass-2026"},
    ),
    "manager.remove_staff": Route(MANAGER, lambda w: f"/manage/staff/{_membership_id(w)}/remove", page="/manage/staff"),
    "admin.practices": Route(ADMIN, "/admin/practices", data={"ods_code": "Y09999", "name": "Test Surgery"}),
    "admin.practice": Route(ADMIN, f"/admin/practices/{PRACTICE}"),
}

# POST routes that write no audit event when used as above, and why that is right.
NOT_AUDITED: dict[str, str] = {
    "auth.logout": "signing out is audited (sign_out) when a session exists; it changes no data of its own",
    "auth.code": "the second step of signing in: audited as sign_in or sign_in.failed (test_sign_in.py)",
    "auth.resend_code": "sends a new code to the account's own address; the code is not personal data",
    "auth.setup": "setting up an authenticator is part of signing in, needs a live code from the person's app",
    "auth.new_password": "a must-change password, only reachable straight after signing in with a temporary one",
    "auth.confirm_email": "needs the code sent by email; confirming an address is audited (account.email_confirmed)",
    "auth.reset_password": "needs the code sent by email; a reset is audited (account.password_reset)",
    "patient.confirm_email_change": "needs the code sent by email; the change is audited (account.email_changed)",
    "patient.reschedule_to": "a cancel and a book, audited as such (tests/integration/test_appointments.py)",
    "patient.act_for": "chooses whose record the session shows; what is then viewed or changed is audited",
    "reception.open_patient": "opens a patient's page (audited there); making the row on first use is audited",
    "reception.refresh_access_flags": "re-reads the access flags; audited when they change (refresh_flags)",
    "reception.remove_access_flag": "needs a flag recorded first; recording and removing are audited together",
    "reception.proxy_competence": "only for a child's link at the review age; audited (proxy.competence_recorded)",
    "reception.proxy_reinstate": "only for a suspended link; audited (proxy.reinstated)",
    "demo_system.act": "the demo clinical system's own screen: it is not the gateway, and keeps its own history",
    "patient.confirm_mobile": "needs the code sent by text; audited (contact.mobile_confirmed)",
    "patient.remove_mobile": "needs a confirmed mobile first; audited (contact.mobile_removed)",
    "reception.retry_repeat": "needs a repeat request the outbox gave up on; audited (services/reception_home.py)",
    "reception.tell_patient": "needs a repeat request the outbox gave up on; audited (services/reception_home.py)",
    "reception.system_change_check_again": "needs a practice part-way through a change of system; audited",
    "admin.migration": "plans a practice's change of system: audited per step (test_system_migration.py)",
    "admin.migration_rehearse": "a rehearsal changes nothing (test_system_migration.py)",
    "admin.migration_step": "each step of a change of system is audited (services/system_migration.py)",
    "stay_signed_in": "keeps a session alive; no data is read or changed",
    "timed_out": "ends a session that timed out; no data is read or changed",
}


def _post_endpoints(app: Any) -> list[str]:
    return sorted({r.endpoint for r in app.url_map.iter_rules() if "POST" in (r.methods or ())})


def test_every_post_route_is_walked_or_justified(app: Any) -> None:
    unknown = [e for e in _post_endpoints(app) if e not in ROUTES and e not in NOT_AUDITED]
    assert unknown == [], f"POST routes with no audit check: add them to ROUTES (or NOT_AUDITED with why): {unknown}"
    stale = [e for e in [*ROUTES, *NOT_AUDITED] if e not in _post_endpoints(app)]
    assert stale == [], f"listed routes that no longer exist: {stale}"


def _audit_count(connection: Any) -> int:
    return int(connection.execute(text("SELECT count(*) FROM audit_event")).scalar_one())


@pytest.mark.parametrize("endpoint", sorted(ROUTES))
def test_each_post_route_writes_an_audit_event(
    endpoint: str, app: Any, client: Any, sign_in: Any, connection: Any
) -> None:
    route = ROUTES[endpoint]
    walk = Walk(app, client)
    if route.who:
        sign_in(route.who)
    if route.prepare:
        route.prepare(walk)
    url = route.url(walk) if callable(route.url) else route.url
    page = route.page(walk) if callable(route.page) else (route.page or url)
    html = client.get(page).get_data(as_text=True)
    candidates = [f for action, f in forms_on(html) if (action or page).split("?")[0] == url]
    if route.form_with:
        candidates = [f for f in candidates if route.form_with in f]
    assert candidates, f"no form for {url} on {page}"
    data = {**candidates[0], **(route.data(walk) if callable(route.data) else route.data)}
    before = _audit_count(connection)
    response = client.post(url, data=data)
    assert response.status_code < 500, f"{endpoint}: {response.status_code}"
    html_back = response.get_data(as_text=True) if response.mimetype == "text/html" else ""
    said = re.findall(r"Error:</span>\s*([^<]*)<", html_back)
    assert _audit_count(connection) > before, (
        f"{endpoint} ({url}) answered {response.status_code} and wrote no audit event; the page said {said}"
    )


RECORD_PAGES = ["/record", "/record/download", "/record/download.json"]


def test_each_record_page_writes_an_audit_event(app: Any, client: Any, sign_in: Any, connection: Any) -> None:
    sign_in(PATIENT)
    sections = sorted(set(re.findall(r'href="(/record/[a-z-]+)"', client.get("/record").get_data(as_text=True))))
    assert sections, "the record page links to its sections"
    for page in [*RECORD_PAGES, *(s for s in sections if s != "/record/download")]:
        before = _audit_count(connection)
        response = client.get(page)
        assert response.status_code == 200, page
        assert _audit_count(connection) > before, f"viewing {page} wrote no audit event"
