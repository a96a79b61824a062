"""The load generator: signed-in patients driven through the gateway's journeys by a small asyncio client.

Why not locust: on this 2-core machine every CPU cycle the load generator spends is taken from the server
under test. Locust (gevent greenlets, its stats machinery and web UI plumbing even when headless) costs
several times more CPU per request than a plain asyncio loop over httpx, which showed up directly as lower
server throughput. This client does only what a browser does (GET the page, read its CSRF token, POST the
form, follow the one redirect that matters) and records each request's latency, status and the server's
X-Query-Count header. Its own CPU time is measured and reported with the results.

Each virtual user is one benchmark patient with its own cookie jar, so no two clients share a session.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import httpx
import pyotp

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

    def add(self, latency: float, response: httpx.Response) -> None:
        if not self.open:
            return
        if response.status_code >= 500:
            self.errors += 1
        header = response.headers.get("X-Query-Count")
        queries = int(header) if header is not None else None
        self.samples.append(Sample(latency, response.status_code, queries, response.request.method))

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


class User:
    """One signed-in patient and its cookie jar."""

    def __init__(self, base: str, email: str, password: str, secret: str) -> None:
        self.email = email
        self.password = password
        self.secret = secret
        self.client = httpx.AsyncClient(base_url=base, follow_redirects=False, timeout=60)
        self.stats: Stats | None = None
        self.rng = random.Random(email)

    async def request(
        self, method: str, url: str, data: dict[str, str] | list[tuple[str, str]] | None = None
    ) -> httpx.Response:
        started = time.perf_counter()
        response = await self.client.request(method, url, data=data)  # type: ignore[arg-type]
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
        await self.client.aclose()


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
}


# Running ---------------------------------------------------------------------------------------------------
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


async def run_journey(users: Sequence[User], journey: Journey, seconds: float, warm_up: float) -> Stats:
    """Every user repeats the journey for ``warm_up`` seconds (not recorded), then ``seconds`` (recorded)."""
    stats = Stats(open=False)
    stop = asyncio.Event()

    async def loop(user: User) -> None:
        user.stats = stats
        while not stop.is_set():
            try:
                await journey(user)
            except (JourneyError, httpx.HTTPError) as exc:
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
    stats.open = True
    started = time.perf_counter()
    cpu = time.process_time()
    await asyncio.sleep(seconds)
    stats.open = False
    stats.seconds = time.perf_counter() - started
    stats.client_cpu = time.process_time() - cpu
    stop.set()
    await asyncio.gather(*tasks)
    return stats
