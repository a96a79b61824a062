"""No input a person can send gives an error page (issue 19).

Two parts. First, one test for each finding measured from outside on PostgreSQL: NUL characters reaching the
database, ids beyond its integer range, date parts too large for a date. Second, a walk of every route of the
app, for every audience, with hostile values chosen by Hypothesis: it fails on any 500 or traceback.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from io import BytesIO
from typing import Any, cast
from urllib.parse import quote_from_bytes, urlsplit

import pytest
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import select
from werkzeug.routing import AnyConverter, Rule

from patient_online.extensions import db
from patient_online.models import AccountLink, ProxyLink, User

PATIENT = "patient.y02001@example.com"
PARENT = "parent.y02001@example.com"
RECEPTION = "reception.y02001@example.com"
MANAGER = "manager.y02001@example.com"
ADMIN = "admin@example.com"
REFUSED_CHARACTERS = "contains characters that cannot be used"


@pytest.fixture
def settings() -> dict[str, Any]:
    """Rate limits off: the walk sends hundreds of requests from one address."""
    return {"RATELIMIT_ENABLED": False}


def _user(email: str) -> User:
    found = db.session.scalar(select(User).where(User.email == email))
    assert found is not None
    return found


def _parents_link() -> ProxyLink:
    """The seeded active link: parent.y02001 acts for a child."""
    found = db.session.scalar(select(ProxyLink).where(ProxyLink.proxy_user_id == _user(PARENT).id))
    assert found is not None
    return found


def _own_patient_id(email: str) -> int:
    link = db.session.scalar(select(AccountLink).where(AccountLink.user_id == _user(email).id))
    assert link is not None
    return int(link.patient_id)


def _not_an_error_page(response: Any) -> str:
    page = response.get_data(as_text=True)
    assert response.status_code != 500, page[:400]
    assert "Traceback" not in page
    return page


# The findings, one test each ---------------------------------------------------------------------------------------
def test_nul_in_the_reception_search_is_refused(client: Any, sign_in: Any) -> None:
    sign_in(RECEPTION)
    response = client.get("/reception/patients?q=Smith%00")
    assert response.status_code == 400
    assert "contains characters that cannot be used" in _not_an_error_page(response)
    too_long = client.get("/reception/patients?q=" + "a" * 2_001)
    assert too_long.status_code == 400


def test_nul_and_control_characters_in_the_password_reset(client: Any) -> None:
    nul = client.submit("/reset-password/new", {"email": "someone\x00@example.com", "code": "123456", "password": "x"})
    assert nul.status_code == 400
    _not_an_error_page(nul)
    control = client.submit(
        "/reset-password/new", {"email": "someone@example.com", "code": "12\x0156", "password": "Long enough 123!"}
    )
    page = _not_an_error_page(control)
    assert control.status_code in (200, 400)
    assert "contains characters that cannot be used" in page


def test_nul_in_the_pharmacy_choice_and_search(client: Any, sign_in: Any) -> None:
    sign_in(PATIENT)
    posted = client.submit("/prescriptions/pharmacy", {"pharmacy": "FA\x00123"})
    assert posted.status_code == 400
    _not_an_error_page(posted)
    control = client.submit("/prescriptions/pharmacy", {"pharmacy": "FA\x1b123"})
    assert control.status_code == 400
    _not_an_error_page(control)
    searched = client.get("/prescriptions/pharmacy?q=%00")
    assert searched.status_code == 400
    _not_an_error_page(searched)


def test_nul_and_controls_in_proxy_end_and_suspension_reasons(client: Any, sign_in: Any) -> None:
    link_id = _parents_link().id
    sign_in(RECEPTION)
    page = f"/reception/proxies/{link_id}"
    nul = client.submit(f"/reception/proxies/{link_id}/end", {"end-reason": "Moved\x00away"}, page=page)
    assert nul.status_code == 400
    _not_an_error_page(nul)
    control = client.submit(f"/reception/proxies/{link_id}/suspend", {"suspend-reason": "Review\x07"}, page=page)
    assert control.status_code == 400
    assert "Reason contains characters that cannot be used" in _not_an_error_page(control)
    assert db.session.get(ProxyLink, link_id).status == "active"  # type: ignore[union-attr]


def test_nul_in_the_patients_own_proxy_end_reason(client: Any, sign_in: Any) -> None:
    link_id = _parents_link().id
    sign_in(PARENT)
    control = client.submit(f"/proxy/{link_id}/end", {"reason": "No longer\x0bneeded"})
    assert control.status_code == 400
    assert "contains characters that cannot be used" in _not_an_error_page(control)
    nul = client.submit(f"/proxy/{link_id}/end", {"reason": "\x00"}, page="/proxy")
    assert nul.status_code == 400


def test_nul_and_long_segments_in_an_ods_code_path(client: Any, sign_in: Any) -> None:
    sign_in(ADMIN)
    for path in ("/admin/practices/%00", "/admin/practices/Y02%0001", "/admin/practices/" + "Y" * 121):
        response = client.get(path)
        assert response.status_code == 400, path
        _not_an_error_page(response)
    option = client.submit("/admin/practices/Y02001", {"adapter": "demo\x00"})
    assert option.status_code == 400


def test_huge_dates_in_the_report_period(client: Any, sign_in: Any) -> None:
    sign_in(MANAGER)
    response = client.get(
        "/manage/reports?start-day=1&start-month=1&start-year=99999999999&end-day=1&end-month=1&end-year=2026"
    )
    assert response.status_code == 400
    assert "Year must include 4 numbers" in _not_an_error_page(response)
    huge_day = client.get(
        f"/manage/reports?start-day={2**63}&start-month=1&start-year=2026&end-day=2&end-month=1&end-year=2026"
    )
    assert huge_day.status_code == 400
    assert "From must be a real date" in _not_an_error_page(huge_day)
    far = client.get("/manage/reports?start-day=1&start-month=1&start-year=2026&end-day=31&end-month=12&end-year=9999")
    assert far.status_code == 400
    _not_an_error_page(far)


def test_huge_dates_in_record_access_start_and_patient_search(client: Any, sign_in: Any) -> None:
    sign_in(MANAGER)
    rules = client.submit(
        "/manage/rules",
        {"record_access_start-day": "1", "record_access_start-month": "1", "record_access_start-year": "9" * 30},
    )
    assert rules.status_code in (200, 400)
    assert "Year must include 4 numbers" in _not_an_error_page(rules)
    client.post("/logout", data={"csrf_token": client.csrf_token("/manage/")})
    sign_in(RECEPTION)
    search = client.get("/reception/patients?q=Smith&born-day=1&born-month=1&born-year=99999999999")
    _not_an_error_page(search)


@pytest.mark.parametrize("path", ["/prescriptions/orders/99999999999", "/prescriptions/orders/2147483648"])
def test_ids_beyond_the_database_integer_are_not_pages(client: Any, sign_in: Any, path: str) -> None:
    sign_in(PATIENT)
    assert client.get(path).status_code == 404


@pytest.mark.parametrize(
    "path", ["/reception/patients/2147483648", "/reception/patients/99999999999", "/reception/proxies/-1"]
)
def test_ids_beyond_the_database_integer_are_not_pages_for_staff(client: Any, sign_in: Any, path: str) -> None:
    sign_in(RECEPTION)
    assert client.get(path).status_code == 404


def test_a_field_name_with_a_nul_and_too_many_fields_are_refused(client: Any, sign_in: Any) -> None:
    sign_in(PATIENT)
    token = client.csrf_token("/account")
    named = client.post("/account/password", data={"csrf_token": token, "pass\x00word": "x"})
    assert named.status_code == 400
    many = client.post("/account/password", data={"csrf_token": token, **{f"f{n}": "x" for n in range(400)}})
    assert many.status_code == 400


# The walk ---------------------------------------------------------------------------------------------------------
AUDIENCES = ("anonymous", "patient", "proxy", "reception", "manager", "admin")
SIGN_IN = {"patient": PATIENT, "proxy": PARENT, "reception": RECEPTION, "manager": MANAGER, "admin": ADMIN}
SIGNS_OUT = {"auth.logout"}  # only the anonymous walk posts here, so the others stay signed in to the end
CRAWL_PAGES = 60
EXAMPLES = 100

# Values every form refuses at the boundary.
REFUSED: list[bytes] = [
    b"\x00",
    b"a\x00b",
    b"\x01\x02\x1b[31m\x7f",
    "\u0085\u009f".encode(),
    b"x" * 10_000,
    "\u202egnp.exe\u202c".encode(),
    b"\xed\xa0\x80",  # a lone surrogate, as UTF-8 bytes
    b"\xff\xfe\xc0\xaf",  # not UTF-8 at all
    b"\r\nSet-Cookie: x=1",
]
# Values a form may accept as text, so they reach the views and the use cases behind them.
PASSABLE: list[bytes] = [
    b"-1",
    b"0",
    str(2**31).encode(),
    str(2**63).encode(),
    str(-(2**63)).encode(),
    b"9" * 40,
    b"1e309",
    b"NaN",
    b"1.5",
    "١٢".encode(),
    "😀👩‍👩‍👧".encode() * 20,
    b"x" * 999,
    b"' OR 1=1 --",
    b"<script>alert(1)</script>",
    b"../../../etc/passwd",
    b"%00",
    b"   ",
    b"",
    "ＮＨＳ".encode(),
]
HOSTILE = REFUSED + PASSABLE
HOSTILE_SEGMENTS: list[bytes] = [
    b"%00",
    b"%01",
    b"x" * 300,
    b"x" * 120,
    b"%ED%A0%80",
    b"%FF",
    b"..",
    b"%E2%80%AE",
    b"Y02001%00",
]
HOSTILE_NUMBERS: list[bytes] = [str(2**63).encode(), b"9" * 40, b"-1", b"0", b"1e309", "١٢".encode(), b"99999"]
HOSTILE_IDS: list[bytes] = [b"0", b"-1", str(2**31).encode(), str(2**63).encode(), b"9" * 40, b"1e3", b"%00"]
MAX_QUERY_NAMES = 90  # the guard refuses more than 100
QUERY_NAMES = ["q", "next", "practice", "adapter", "days", "show", "item", "at", "changed", "state", "code", "error"]
WRONG_METHODS = ["PUT", "DELETE", "PATCH"]

Pick = Callable[[list[Any]], Any]


class _Page(HTMLParser):
    """What a page offers: links, form actions, field names with the values it shows, the CSRF token."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.searches: list[str] = []  # forms sent by GET: their pages read the query string
        self.fields: dict[str, set[str]] = {}
        self.token: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "a" and found.get("href", "").startswith("/"):
            self.links.append(found["href"])
        if tag == "form" and found.get("action", "").startswith("/"):
            self.links.append(found["action"])
        if tag == "form" and found.get("method", "get").lower() == "get":
            self.searches.append(found.get("action", ""))
        name = found.get("name")
        if tag in ("input", "textarea", "select") and name:
            if name == "csrf_token":
                self.token = found.get("value") or self.token
                return
            self.fields.setdefault(name, set()).add(found.get("value", ""))
        if tag == "select":
            self._select = name
        if tag == "option" and self._select:
            self.fields.setdefault(self._select, set()).add(found.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


def _encode(pairs: list[tuple[bytes, bytes]]) -> bytes:
    return b"&".join(
        quote_from_bytes(k, safe="").encode() + b"=" + quote_from_bytes(v, safe="").encode() for k, v in pairs
    )


@dataclass
class Walk:
    """One audience's walk: what it learned by crawling, what it sent, what went wrong."""

    app: Any
    client: Any
    audience: str
    fields: dict[str, set[str]] = field(default_factory=dict)
    arguments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    token: str = ""
    requests: int = 0
    routes: set[str] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    searched: set[str] = field(default_factory=set)  # endpoints whose pages read the query string

    @property
    def rules(self) -> list[Rule]:
        return sorted(self.app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint))

    def methods(self, rule: Rule) -> list[str]:
        answered = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        if rule.endpoint in SIGNS_OUT and self.audience != "anonymous":
            return ["GET"]  # a wrong method, still walked
        return answered

    # Sending -------------------------------------------------------------------------------------------------
    def send(self, method: str, path: str, query: bytes = b"", rule: Rule | None = None, **kw: Any) -> Any:
        self.requests += 1
        if rule is not None:
            self.routes.add(f"{rule.rule} {rule.endpoint}")
        what = f"{self.audience}: {method} {path[:160]}{'?' + query.decode()[:160] if query else ''}"
        try:
            response = self.client.open(path, method=method, query_string=query.decode("ascii") or None, **kw)
        except Exception as exc:  # the error pages themselves failed
            self.failures.append(f"{what} raised {type(exc).__name__}: {str(exc)[:200]}")
            return None
        page = response.get_data()
        self.statuses[response.status_code] += 1
        if b"this page was open for too long" in page:
            self.statuses[-1] += 1  # -1: stopped at the CSRF check
        if response.status_code == 500 or b"Traceback (most recent call last)" in page:
            cause = self.errors.pop() if self.errors else "no logged error"
            self.failures.append(f"{what} gave {response.status_code}: {cause} (body: {kw.get('data', b'')!r:.300})")
        return response

    def send_body(self, method: str, path: str, rule: Rule, pairs: list[tuple[bytes, bytes]], kind: str) -> None:
        if kind == "form":
            self.send(method, path, rule=rule, data=_encode(pairs), content_type="application/x-www-form-urlencoded")
        elif kind == "multipart":
            data: dict[str, Any] = {k.decode(): v.decode("utf-8", "replace") for k, v in pairs}
            for name in ("pharmacy", "reason", "q", "file"):
                data[name] = (BytesIO(b"\x00\xff binary"), "evil\x00.txt")
            self.send(method, path, rule=rule, data=data, content_type="multipart/form-data")
        elif kind == "json":
            document = {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in pairs}
            for payload in (document, [1, 2, 3], 12345):
                self.send(method, path, rule=rule, data=json.dumps(payload), content_type="application/json")
        else:
            self.send(method, path, rule=rule, data=b"\x00\xff%%%=&&==", content_type="text/plain")

    # Learning the audience's pages -----------------------------------------------------------------------------
    def learn(self, path: str, page: bytes) -> list[str]:
        parsed = _Page()
        parsed.feed(page.decode("utf-8", "replace"))
        adapter = self.app.url_map.bind("localhost")
        for action in parsed.searches:
            with contextlib.suppress(Exception):
                self.searched.add(adapter.match(urlsplit(action or path).path, method="GET")[0])
        if parsed.token:
            self.token = parsed.token
        for name, values in parsed.fields.items():
            self.fields.setdefault(name, set()).update(values)
        for link in parsed.links:
            for method in ("GET", "POST"):
                try:
                    endpoint, args = adapter.match(urlsplit(link).path, method=method)
                except Exception:  # noqa: S112 - not a route for this method
                    continue
                known = self.arguments.setdefault(endpoint, [])
                if args and args not in known:
                    known.append(args)
        return [urlsplit(link).path for link in parsed.links]

    def crawl(self) -> None:
        """Visit the audience's pages (every route without arguments, then the links they show)."""
        queue = [r.rule for r in self.rules if not r.arguments and "GET" in (r.methods or ())]
        seen: set[str] = set()
        while queue and len(seen) < CRAWL_PAGES:
            path = queue.pop(0)
            if path in seen or path in ("/logout", "/login/nhs"):
                continue
            seen.add(path)
            response = self.send("GET", path)
            if response is not None and response.status_code == 200 and response.mimetype == "text/html":
                queue += self.learn(path, response.get_data())

    # Building requests -------------------------------------------------------------------------------------------
    def path_for(self, rule: Rule, hostile: Callable[[str, Any], bytes | None]) -> str:
        """The rule's path: each argument ordinary (seen on a page) unless ``hostile`` gives a value for it."""
        known = self.arguments.get(rule.endpoint) or [{}]
        path = rule.rule
        for name in rule.arguments:
            converter = rule._converters[name]
            chosen = hostile(name, converter)
            if chosen is not None:
                value = chosen.decode("latin-1")
            elif name in known[0]:
                value = quote_from_bytes(str(known[0][name]).encode(), safe="")
            elif type(converter).__name__ == "AnyConverter":
                value = sorted(cast(AnyConverter, converter).items)[0]
            else:
                value = "1"
            found = re.search(rf"<[^<>]*\b{name}>", path)
            assert found is not None, rule.rule
            path = path[: found.start()] + value + path[found.end() :]
        return path

    def sweep(self) -> None:
        """Every route: a wrong method, then each method it answers with a hostile path, query and body in turn.

        Each request carries one kind of hostility everywhere: a NUL in every value (what the database cannot
        store), or values a form may let through (huge numbers, long or odd text) mixed across the fields.
        """
        names = sorted(self.fields)
        token = [(b"csrf_token", self.token.encode())]
        nul = b"a\x00b"
        for turn, rule in enumerate(self.rules):
            ordinary = self.path_for(rule, lambda _n, _c: None)
            self.send(WRONG_METHODS[turn % len(WRONG_METHODS)], ordinary, rule=rule)
            passable = [(n.encode(), _passable(n, i + turn)) for i, n in enumerate(names)]
            for method in self.methods(rule):
                if rule.arguments:
                    hostile_path = self.path_for(rule, _nth_hostile(turn))
                    self.send(method, hostile_path, rule=rule)
                if method == "GET":
                    everywhere = [(n.encode(), nul) for n in (QUERY_NAMES + names)[:MAX_QUERY_NAMES]]
                    self.send(method, ordinary, _encode(everywhere), rule=rule)
                    if rule.endpoint in self.searched:  # a search or filter: values it may accept
                        self.send(method, ordinary, _encode(passable[:MAX_QUERY_NAMES]), rule=rule)
                    continue
                self.send_body(method, ordinary, rule, passable + token, "form")
                self.send_body(method, ordinary, rule, [(n.encode(), nul) for n in names] + token, "form")
                self.send_body(method, ordinary, rule, token, ("multipart", "json", "raw")[turn % 3])

    def wander(self, rule: Rule, pick: Pick) -> None:
        """One request chosen by Hypothesis: any method, a mix of ordinary, hostile, missing and repeated values."""
        method = pick(self.methods(rule) + WRONG_METHODS[:1])
        path = self.path_for(rule, lambda _n, c: pick([None, None, *_pool(c)]))
        names = sorted(self.fields)
        query = [(n.encode(), pick(HOSTILE)) for n in QUERY_NAMES + names if pick([False] * 6 + [True])]
        if method in ("GET", "PUT", "DELETE"):
            self.send(method, path, _encode(query), rule=rule)
            return
        body: list[tuple[bytes, bytes]] = []
        for name in names:
            choice = pick(["ordinary", "ordinary", "hostile", "missing", "twice"])
            if choice == "missing":
                continue
            ordinary = sorted(v for v in self.fields[name] if v) or ["Ordinary words"]
            value = pick([o.encode() for o in ordinary]) if choice == "ordinary" else pick(HOSTILE)
            body.append((name.encode(), value))
            if choice == "twice":
                body.append((name.encode(), pick(HOSTILE)))
        if pick([True] * 9 + [False]):
            body.append((b"csrf_token", self.token.encode()))
        self.send_body(method, path, rule, body, pick(["form"] * 6 + ["multipart", "json", "raw"]))


def _passable(name: str, turn: int) -> bytes:
    """A value a form may let through: a number (often far too big) for a date box, else any passable text."""
    if name.endswith(("-day", "-month", "-year")):
        return HOSTILE_NUMBERS[turn % len(HOSTILE_NUMBERS)]
    return PASSABLE[turn % len(PASSABLE)]


def _nth_hostile(turn: int) -> Callable[[str, Any], bytes]:
    """For the sweep: the turn's hostile value of each path argument's kind."""

    def choose(_name: str, converter: Any) -> bytes:
        pool = _pool(converter)
        return pool[turn % len(pool)]

    return choose


def _pool(converter: Any) -> list[bytes]:
    """Hostile path arguments of the converter's kind: numbers for ids, one wrong word for a choice, else anything."""
    kind = type(converter).__name__
    if kind == "AnyConverter":
        return [b"other", b"%00"]
    return HOSTILE_IDS if kind == "IdConverter" else HOSTILE_SEGMENTS


def _sign_in_as(client: Any, audience: str) -> None:
    from tests.helpers import sign_in

    if audience == "anonymous":
        return
    sign_in(client, SIGN_IN[audience])
    if audience == "proxy":
        acted = client.submit("/proxy/act-for", {"patient_id": str(_parents_link().patient_id)}, page="/proxy")
        assert acted.status_code == 302


class _Errors(logging.Handler):
    """Keeps what the 500 handler logged, so a failure says which exception, and where."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__(logging.ERROR)
        self.errors = errors

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            frames = traceback.extract_tb(exc.__traceback__)
            where = next(
                (
                    f"{f.filename.split('/patient_online/')[-1]}:{f.lineno}"
                    for f in reversed(frames)
                    if "/patient_online/" in f.filename
                ),
                "?",
            )
            self.errors.append(f"{type(exc).__name__} at {where}: {str(exc)[:160]}")


@pytest.mark.parametrize("audience", AUDIENCES)
def test_walk_every_route_with_hostile_input(
    app: Any, client: Any, audience: str, backend: str, request: pytest.FixtureRequest
) -> None:
    """Every route for every audience, CSRF on with the session's valid token, rate limits off: never a 500."""
    started = time.monotonic()
    _sign_in_as(client, audience)
    walk = Walk(app, client.raw, audience)
    handler = _Errors(walk.errors)
    logging.getLogger("patient_online").addHandler(handler)
    request.addfinalizer(lambda: logging.getLogger("patient_online").removeHandler(handler))
    walk.crawl()
    assert walk.token or audience == "anonymous", "no CSRF token on the audience's pages"
    walk.sweep()
    rules = walk.rules

    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def wander(data: st.DataObject) -> None:
        rule = data.draw(st.sampled_from(rules))
        walk.wander(rule, lambda options: data.draw(st.sampled_from(options)))

    wander()
    seconds = time.monotonic() - started
    print(
        f"\nhostile walk [{backend}] {audience}: {len(walk.routes)} of {len(rules)} routes, "
        f"{walk.requests} requests, {len(walk.failures)} failures, {seconds:.1f} s; "
        f"statuses {dict(sorted(walk.statuses.items()))}"
    )
    assert not walk.failures, f"{len(walk.failures)} requests gave an error page:\n" + "\n".join(walk.failures[:40])
    assert len(walk.routes) == len(rules), "every route is walked"
    assert walk.requests >= 4 * len(rules)
