"""The load generator: signed-in patients driven through the gateway's journeys by a small asyncio client.

Why not locust: on this 2-core machine every CPU cycle the load generator spends is taken from the server
under test. Locust (gevent greenlets, its stats machinery and web UI plumbing even when headless) costs
several times more CPU per request than a plain asyncio loop, which showed up directly as lower server
throughput. This client does only what a browser does (GET the page, read its CSRF token, POST the form,
follow the one redirect that matters) and records each request's latency, status and the server's
X-Query-Count header. Its own CPU time is measured and reported with the results.

Why not httpx either: its request and response models, cookie jar (http.cookiejar), URL handling and
connection pool cost about 1.0-1.5 ms of CPU per request here (2-3 ms per page request in the journeys),
so at the minimal endpoint (~620 req/s with it) the client took 84-86% of one core from the server. The HTTP
layer (client.py) is the least a benchmark against our own gunicorn needs: one kept-alive HTTP/1.1 connection per
patient, made again when the server has closed it (gunicorn's keep-alive is 5 s, and it may answer
``Connection: close``), read by an ``asyncio.Protocol`` as the bytes arrive (Content-Length or chunked
bodies), requests written as bytes, a cookie jar of name=value pairs, no redirects followed, the body decoded
only when a journey reads its text. Measured the same way it costs about 0.05-0.12 ms of CPU per request at
the minimal endpoint and 0.15-0.4 ms per page request, the journeys' own HTML regexes included (0.03-0.05 ms
against a canned server on an idle core), and the minimal endpoint serves 1,600-2,600 req/s instead of ~600.
uvloop, when installed, takes about a quarter off the client's CPU.

Each virtual user is one benchmark patient with its own connection and cookie jar, so no two clients share a
session, and sends one request at a time, as a person clicking through the pages does.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

import pyotp

from .client import TIMEOUT, ClientError, Connection, Response, Stale, cookie_expired

LoopFactory = Callable[[], asyncio.AbstractEventLoop]
LOOP_FACTORY: LoopFactory | None
try:  # optional (requirements-dev.txt): its event loop costs this client about a quarter less CPU per request
    import uvloop

    LOOP_FACTORY = uvloop.new_event_loop
except ImportError:
    LOOP_FACTORY = None
CLIENT = f"asyncio{' on uvloop' if LOOP_FACTORY else ''} + its own HTTP/1.1 client"  # for the report

T = TypeVar("T")

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
IDEMPOTENCY_RE = re.compile(r'name="idempotency_key"[^>]*value="([^"]*)"')
AT_RE = re.compile(r'name="at"[^>]*value="([^"]*)"')
SLOT_RE = re.compile(r'href="(/appointments/slots/([^"?]+)\?at=([^"]+))"')
WEEK_RE = re.compile(r"[?&;]start=(\d{4}-\d{2}-\d{2})")
ITEM_RE = re.compile(r'name="items" type="checkbox" value="([^"]+)"')
CANCEL_REQUEST_RE = re.compile(r'href="(/prescriptions/requests/[^"/]+/cancel)"')
BOOKED_RE = re.compile(r"/appointments/([^/]+)/booked")


class JourneyError(Exception):
    """A page did not answer as a browser would expect."""


@dataclass
class Sample:
    latency: float
    status: int
    queries: int | None
    method: str = "GET"


@dataclass
class Stats:
    """Every request of one journey during the measured window."""

    samples: list[Sample] = field(default_factory=list)
    errors: int = 0
    conflicts: int = 0  # a slot taken by another client between seeing and booking it: expected, not an error
    journeys: int = 0
    seconds: float = 0.0
    client_cpu: float = 0.0
    last_error: str = ""
    open: bool = True  # only requests that end while the window is open are recorded

    def add(self, latency: float, response: Response) -> None:
        if not self.open:
            return
        if response.status_code >= 500:
            self.errors += 1
        header = response.headers.get("X-Query-Count")
        queries = int(header) if header is not None else None
        self.samples.append(Sample(latency, response.status_code, queries, response.method))

    @property
    def requests(self) -> int:
        return len(self.samples)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        """Latency percentile in milliseconds (nearest rank)."""
        if not self.samples:
            return 0.0
        ordered = sorted(s.latency for s in self.samples)
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
        return ordered[index] * 1000

    @property
    def queries_mean(self) -> float | None:
        counted = [s.queries for s in self.samples if s.queries is not None]
        return sum(counted) / len(counted) if counted else None

    @property
    def queries_max(self) -> int | None:
        counted = [s.queries for s in self.samples if s.queries is not None]
        return max(counted) if counted else None

    def queries_max_of(self, method: str) -> int | None:
        """The most statements any request of this method ran (pages are GETs; form posts are actions)."""
        counted = [s.queries for s in self.samples if s.queries is not None and s.method == method]
        return max(counted) if counted else None

    @classmethod
    def pooled(cls, runs: Sequence[Stats]) -> Stats:
        """Several measured windows of one journey as one: every request, over the windows' time together."""
        return cls(
            samples=[sample for run in runs for sample in run.samples],
            errors=sum(run.errors for run in runs),
            conflicts=sum(run.conflicts for run in runs),
            journeys=sum(run.journeys for run in runs),
            seconds=sum(run.seconds for run in runs),
            client_cpu=sum(run.client_cpu for run in runs),
            last_error=next((run.last_error for run in reversed(runs) if run.last_error), ""),
            open=False,
        )


# One patient -------------------------------------------------------------------------------------------------
FORM = "application/x-www-form-urlencoded"


class User:
    """One signed-in patient: its own kept-alive connection and cookie jar, as one browser tab would have."""

    def __init__(self, base: str, email: str, password: str, secret: str) -> None:
        self.email = email
        self.password = password
        self.secret = secret
        self.stats: Stats | None = None
        self.rng = random.Random(email)
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) base URL: {base}")
        self.base = f"{parts.scheme}://{parts.netloc}"
        self.secure = parts.scheme == "https"
        self.address = (parts.hostname, parts.port or (443 if self.secure else 80))
        self.prefix = parts.path.rstrip("/")
        self.fixed = f"Host: {parts.netloc}\r\nUser-Agent: patient-online-bench\r\nAccept: */*\r\n"
        self.cookies: dict[str, str] = {}
        self.cookie_line = ""  # the Cookie header the jar makes, ready to send
        self.connection: Connection | None = None

    async def request(
        self, method: str, url: str, data: dict[str, str] | list[tuple[str, str]] | None = None
    ) -> Response:
        started = time.perf_counter()
        response = await self._exchange(method, url, data)
        elapsed = time.perf_counter() - started
        if self.stats is not None:
            self.stats.add(elapsed, response)
        return response

    async def page(self, url: str, expect: int = 200) -> str:
        response = await self.request("GET", url)
        if response.status_code != expect:
            raise JourneyError(f"GET {url} answered {response.status_code}")
        return response.text

    async def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None
            await asyncio.sleep(0)  # let the transport finish closing

    async def _exchange(self, method: str, url: str, data: dict[str, str] | list[tuple[str, str]] | None) -> Response:
        if url.startswith(self.base):
            url = url[len(self.base) :] or "/"
        if not url.isascii() or " " in url:
            url = quote(url, safe="/?&=%:+;,@!$'()*~#[]")
        head = f"{method} {self.prefix}{url} HTTP/1.1\r\n{self.fixed}{self.cookie_line}"
        if data is None:
            payload = f"{head}\r\n".encode()
        else:
            body = urlencode(data).encode()
            payload = f"{head}Content-Type: {FORM}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
        connection = self.connection
        if connection is None or connection.closed:
            connection = await self._connect()
        try:
            response = await self._send(connection, method, payload)
        except Stale:  # closed as it sat idle, the request unread: send it again, as a browser does
            response = await self._send(await self._connect(), method, payload)
        if response.headers.set_cookie:
            self._store_cookies(response.headers.set_cookie)
        return response

    @staticmethod
    async def _send(connection: Connection, method: str, payload: bytes) -> Response:
        waiter = connection.send(method, payload)
        try:
            return await waiter
        except asyncio.CancelledError:
            connection.close()  # the answer may still come: this connection is out of step now
            raise

    async def _connect(self) -> Connection:
        loop = asyncio.get_running_loop()
        host, port = self.address
        try:
            _transport, connection = await asyncio.wait_for(
                loop.create_connection(lambda: Connection(loop), host, port, ssl=self.secure or None), TIMEOUT
            )
        except (OSError, TimeoutError) as exc:
            raise ClientError(f"cannot connect to {host}:{port}: {exc or type(exc).__name__}") from exc
        self.connection = connection
        return connection

    def _store_cookies(self, fields: list[str]) -> None:
        """Keep name=value of each cookie set; drop those deleted (empty, Max-Age=0 or Expires in the past)."""
        for field_ in fields:
            pair, _, attributes = field_.partition(";")
            name, equals, value = pair.partition("=")
            name, value = name.strip(), value.strip()
            if not equals or not name:
                continue
            max_age: str | None = None
            expires: str | None = None
            secure = False
            for attribute in attributes.split(";"):
                key, _, setting = attribute.partition("=")
                key = key.strip().lower()
                if key == "max-age":
                    max_age = setting.strip()
                elif key == "expires":
                    expires = setting.strip()
                elif key == "secure":
                    secure = True
            if secure and not self.secure:
                continue  # a browser keeps Secure cookies for https only
            if not value or cookie_expired(max_age, expires):
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        self.cookie_line = (
            "Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()) + "\r\n" if self.cookies else ""
        )


def _token(html: str, url: str) -> str:
    found = CSRF_RE.search(html)
    if not found:
        raise JourneyError(f"no CSRF token on {url}")
    return found.group(1)


async def sign_in(user: User) -> None:
    """Password, then the TOTP code: the two forms a person fills in."""
    html = await user.page("/login")
    response = await user.request(
        "POST", "/login", {"email": user.email, "password": user.password, "csrf_token": _token(html, "/login")}
    )
    if response.status_code != 302:
        raise JourneyError(f"password step for {user.email} answered {response.status_code}")
    html = await user.page("/login/code")
    code = pyotp.TOTP(user.secret).now()
    response = await user.request("POST", "/login/code", {"code": code, "csrf_token": _token(html, "/login/code")})
    if response.status_code != 302:
        raise JourneyError(f"code step for {user.email} answered {response.status_code}")


# Journeys --------------------------------------------------------------------------------------------------
async def ceiling(user: User) -> None:
    await user.page("/healthz")


async def home(user: User) -> None:
    await user.page("/home")


async def slot_search(user: User) -> None:
    await user.page("/appointments/slots")


async def book_then_cancel(user: User) -> None:
    """Look at a later week, book one of its times, then cancel it (outside the cancellation cut-off)."""
    html = await user.page("/appointments/slots")
    weeks = sorted(set(WEEK_RE.findall(html)))
    later = weeks[1:] if len(weeks) > 1 else weeks
    if later:
        html = await user.page(f"/appointments/slots?start={user.rng.choice(later)}")
    slots = SLOT_RE.findall(html)
    if not slots:
        raise JourneyError("no free slot offered")
    href, _slot_id, _at = user.rng.choice(slots)
    href = href.replace("&amp;", "&").replace("&#43;", "+")
    response = await user.request("GET", href)
    if response.status_code == 409:
        _conflict(user)
        return
    if response.status_code != 200:
        raise JourneyError(f"GET {href} answered {response.status_code}")
    form = response.text
    data = {
        "csrf_token": _token(form, href),
        "reason": "Benchmark booking",
        "idempotency_key": (IDEMPOTENCY_RE.search(form) or _missing("idempotency_key")).group(1),
        "at": (AT_RE.search(form) or _missing("at")).group(1).replace("&#43;", "+"),
    }
    response = await user.request("POST", href.split("?")[0], data)
    if response.status_code == 409:
        _conflict(user)
        return
    booked = BOOKED_RE.search(response.headers.get("location", ""))
    if response.status_code != 302 or not booked:
        raise JourneyError(f"booking answered {response.status_code}")
    cancel_url = f"/appointments/{booked.group(1)}/cancel"
    html = await user.page(cancel_url)
    response = await user.request("POST", cancel_url, {"csrf_token": _token(html, cancel_url), "reason": ""})
    if response.status_code != 302:
        raise JourneyError(f"cancelling answered {response.status_code}")


def _conflict(user: User) -> None:
    if user.stats is not None and user.stats.open:
        user.stats.conflicts += 1


def _missing(name: str) -> re.Match[str]:
    raise JourneyError(f"no {name} field on the booking form")


async def repeat_template(user: User) -> None:
    await user.page("/prescriptions")


async def order_then_cancel(user: User) -> None:
    """Order one repeat item, then cancel the request so the item can be ordered again."""
    html = await user.page("/prescriptions/order")
    items = ITEM_RE.findall(html)
    if not items:
        raise JourneyError("nothing orderable")
    data = {
        "csrf_token": _token(html, "/prescriptions/order"),
        "idempotency_key": (IDEMPOTENCY_RE.search(html) or _missing("idempotency_key")).group(1),
        "items": user.rng.choice(items),
        "note": "",
    }
    response = await user.request("POST", "/prescriptions/order", data)
    if response.status_code != 302:
        raise JourneyError(f"ordering answered {response.status_code}")
    html = await user.page("/prescriptions/requests")
    for cancel_url in CANCEL_REQUEST_RE.findall(html):
        page = await user.page(cancel_url)
        response = await user.request("POST", cancel_url, {"csrf_token": _token(page, cancel_url)})
        if response.status_code != 302:
            raise JourneyError(f"cancelling the request answered {response.status_code}")


async def record_overview(user: User) -> None:
    await user.page("/record")


async def record_section(user: User) -> None:
    await user.page("/record/medications")


async def floor(user: User) -> None:
    """The least a signed-in page costs: the session, the user loaded, the layout and one sentence."""
    await user.page("/help")


async def mixed(user: User) -> None:
    """What a patient does in one visit: home, the slots, the repeat template, the record, in turn."""
    for url in ("/home", "/appointments/slots", "/prescriptions", "/record"):
        await user.page(url)


Journey = Callable[[User], Awaitable[None]]

JOURNEYS: dict[str, tuple[str, Journey]] = {
    "ceiling": ("minimal endpoint (/healthz)", ceiling),
    "home": ("home", home),
    "slots": ("slot search", slot_search),
    "book": ("book then cancel", book_then_cancel),
    "template": ("repeat template", repeat_template),
    "order": ("order then cancel", order_then_cancel),
    "record": ("record overview", record_overview),
    "section": ("record section", record_section),
    "floor": ("signed-in floor page (/help)", floor),
    "mixed": ("mixed visit (home, slots, template, record)", mixed),
}


# Running ---------------------------------------------------------------------------------------------------
def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run``, on uvloop's event loop when it is installed."""
    with asyncio.Runner(loop_factory=LOOP_FACTORY) as runner:
        return runner.run(main)


async def sign_in_all(users: Sequence[User], concurrency: int = 8) -> Stats:
    """Sign every user in (a few at a time, as people arrive); returns the sign-in requests' figures."""
    stats = Stats()
    gate = asyncio.Semaphore(concurrency)
    started = time.perf_counter()
    cpu = time.process_time()

    async def one(user: User) -> None:
        async with gate:
            user.stats = stats
            await sign_in(user)
            stats.journeys += 1
            user.stats = None

    await asyncio.gather(*(one(u) for u in users))
    stats.seconds = time.perf_counter() - started
    stats.client_cpu = time.process_time() - cpu
    return stats


async def run_journey(
    users: Sequence[User],
    journey: Journey,
    seconds: float,
    warm_up: float,
    window: Callable[[bool], None] | None = None,
    pace: float | None = None,
) -> Stats:
    """Every user repeats the journey for ``warm_up`` seconds (not recorded), then ``seconds`` (recorded).

    Without ``pace`` each user starts again as soon as a journey ends (the most the server can take). With
    ``pace`` (journeys a second, all users together) each user starts a journey every ``len(users) / pace``
    seconds on a schedule of its own, and straight away when it has fallen behind: people who read a page
    before the next, arriving at a steady rate. ``window`` is told when the recorded window opens (True) and
    closes (False), to read the server's CPU.
    """
    stats = Stats(open=False)
    stop = asyncio.Event()
    interval = len(users) / pace if pace else 0.0

    async def loop(user: User) -> None:
        user.stats = stats
        due = time.perf_counter() + user.rng.uniform(0, interval)
        while not stop.is_set():
            if interval:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                due = max(due + interval, time.perf_counter())
                if stop.is_set():
                    break
            try:
                await journey(user)
            except (JourneyError, ClientError, OSError) as exc:
                if stats.open:
                    stats.errors += 1
                    stats.last_error = str(exc) or type(exc).__name__
                await asyncio.sleep(0.05)
            else:
                if stats.open:
                    stats.journeys += 1
        user.stats = None

    tasks = [asyncio.create_task(loop(u)) for u in users]
    await asyncio.sleep(warm_up)
    if window:
        window(True)
    stats.open = True
    started = time.perf_counter()
    cpu = time.process_time()
    await asyncio.sleep(seconds)
    stats.open = False
    stats.seconds = time.perf_counter() - started
    stats.client_cpu = time.process_time() - cpu
    if window:
        window(False)
    stop.set()
    await asyncio.gather(*tasks)
    return stats
