"""axe-core (WCAG 2.0, 2.1 and 2.2, levels A and AA) over every page each audience can reach, and their errors.

Each audience signs in once and crawls the site as a person would: following GET links within the site, one
page at a time, never signing out or following a link that changes something. Pages are grouped by route (ids
and query values set aside) and only a few of each route are checked, so a long list of appointments does not
make the run slow. Then each audience submits its forms empty, where that is safe, to check the error states:
the same axe rules, "Error: " at the start of the title, and error summary links that land on a real field.

axe-core comes from npm (package.json, installed by `make setup`) and is injected into the page; the contexts
bypass the Content-Security-Policy only so that the injected script may run.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urldefrag, urlsplit

import pytest

from tests.conftest import PROJECT_ROOT

from .conftest import SCREENSHOTS, sign_in

pytestmark = pytest.mark.browser

AXE = PROJECT_ROOT / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]
MAX_PAGES = 70  # per audience: far more than any audience has routes
PHONE, DESK = 360, 1280  # viewport widths in CSS pixels
PER_ROUTE = 2  # pages checked per route pattern (e.g. two appointments, two record sections... per slug)
# Links never followed: they sign out, leave the site, download a file, or change something when followed.
SKIP = re.compile(r"^/(logout|login/nhs|assets/|static/|healthz|readyz|favicon)|\.(ics|json|csv|pdf|png|svg)$")

RUN_AXE = """async (tags) => {
  const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.map(n => n.target.join(' ')),
  }));
}"""

# Where each error summary link leads: the element it names, which must be a field a person can type in or choose.
SUMMARY_TARGETS = """() => Array.from(document.querySelectorAll('.nhsuk-error-summary__list a')).map(a => {
  const id = decodeURIComponent(a.getAttribute('href').slice(1));
  const el = document.getElementById(id);
  return {href: a.getAttribute('href'), tag: el ? el.tagName.toLowerCase() : null};
})"""


# The h1's words without its caption (NHS.UK puts a caption such as the practice name inside the h1).
H1_TEXT = """() => {
  const h1 = document.querySelector('main h1');
  if (!h1) return '';
  const copy = h1.cloneNode(true);
  copy.querySelectorAll('[class*="nhsuk-caption"]').forEach(c => c.remove());
  return copy.textContent;
}"""


@dataclass
class Audience:
    name: str
    email: str | None
    start: list[str]
    act_for_someone: bool = False
    width: int = PHONE  # patients first use a phone; staff work at a desk


@dataclass
class Found:
    """Everything wrong on the pages one audience saw."""

    pages: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    titles: dict[str, str] = field(default_factory=dict)  # title -> the first path that had it
    title_problems: list[str] = field(default_factory=list)


AUDIENCES = [
    Audience("anonymous", None, ["/", "/login", "/register", "/reset-password", "/help", "/no-such-page"]),
    Audience("patient", "patient.y02001@example.com", ["/home", "/reception/"]),
    Audience("proxy acting for a child", "parent.y02001@example.com", ["/home", "/proxy"], act_for_someone=True),
    Audience("unlinked patient", "newpatient.y02001@example.com", ["/home", "/link"]),
    Audience("receptionist", "reception.y02001@example.com", ["/reception/", "/reception/patients?q=a"], width=DESK),
    Audience("practice manager", "manager.y02001@example.com", ["/manage/"], width=DESK),
    Audience("system admin", "admin@example.com", ["/admin/practices"], width=DESK),
]


def route_of(url: str) -> str:
    """The route a URL belongs to: path segments holding ids become {}; the query (filters, pages) is set aside."""
    path = urlsplit(url).path
    return "/".join("{}" if any(c.isdigit() for c in seg) else seg for seg in path.split("/"))


def axe_violations(page: Any, where: str) -> list[str]:
    """axe-core's WCAG A/AA violations on the page now shown, one line each: rule, page, element."""
    if not AXE.exists():
        pytest.fail(f"{AXE.relative_to(PROJECT_ROOT)} is missing: `make setup` installs it from package.json")
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(RUN_AXE, WCAG_TAGS)
    return [f"{v['id']} ({v['impact']}) on {where}: {target} – {v['help']}" for v in found for target in v["targets"]]


def check_title(page: Any, where: str, found: Found) -> None:
    """The title says what the h1 says (WCAG 2.4.2), and no two different pages share a title."""
    title = re.sub(r"^Error: | – [^–]+ – NHS$", "", page.title())
    h1 = " ".join(page.evaluate(H1_TEXT).split())
    if title != h1:
        found.title_problems.append(f"title {title!r} is not the h1 {h1!r} on {where}")
    route = route_of(where)
    first = found.titles.setdefault(title, route)
    if first != route:
        found.title_problems.append(f"{where} has the same title as {first}: {title!r}")


def same_site_links(page: Any, base: str) -> list[str]:
    hrefs: list[str] = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    out = []
    for href in hrefs:
        url = urldefrag(href)[0]
        parts = urlsplit(url)
        if url.startswith(base) and not SKIP.search(parts.path):
            out.append(url)
    return out


def crawl(page: Any, base: str, start: list[str]) -> Found:
    """Breadth first from ``start``, checking each page with axe; a few pages per route."""
    found = Found()
    queue = [base + path for path in start]
    seen: set[str] = set()
    per_route: Counter[str] = Counter()
    while queue and len(found.pages) < MAX_PAGES:
        url = queue.pop(0)
        route = route_of(url)
        if url in seen or per_route[route] >= PER_ROUTE:
            continue
        seen.add(url)
        response = page.goto(url)
        landed = page.url
        if response is None or "text/html" not in (response.headers.get("content-type") or ""):
            continue
        if response.status >= 500:
            found.violations.append(f"{url.removeprefix(base)} failed with status {response.status}")
        if not landed.startswith(base) or (landed != url and landed in seen):
            continue  # a redirect to a page already checked
        seen.add(landed)
        per_route[route] += 1
        where = landed.removeprefix(base)
        found.pages.append(where)
        found.violations += axe_violations(page, where)
        check_title(page, where, found)
        queue += [link for link in same_site_links(page, base) if link not in seen]
    return found


@pytest.fixture(scope="module")
def audience_pages(browser: Any, live_server: str) -> Iterator[Callable[[Audience], Any]]:
    """One signed-in tab per audience, shared by the crawl and the error states (each sign-in is rate limited)."""
    contexts: dict[str, Any] = {}

    def tab_for(audience: Audience) -> Any:
        if audience.name not in contexts:
            context = browser.new_context(
                base_url=live_server, viewport={"width": audience.width, "height": 800}, bypass_csp=True
            )
            tab = context.new_page()
            if audience.email:
                sign_in(tab, audience.email)
                tab.wait_for_url("**/*")
            if audience.act_for_someone:
                tab.goto("/proxy")
                tab.locator("button:has-text('Act for ')").first.click()
                tab.wait_for_url("**/home")
                assert tab.locator(".app-acting-banner").count() == 1, "the proxy should now act for their child"
            contexts[audience.name] = context
        return contexts[audience.name].pages[0]

    yield tab_for
    for context in contexts.values():
        context.close()


@pytest.mark.parametrize("audience", AUDIENCES, ids=[a.name.replace(" ", "-") for a in AUDIENCES])
def test_every_page_an_audience_reaches_passes_axe(
    audience: Audience, audience_pages: Callable[[Audience], Any], live_server: str
) -> None:
    page = audience_pages(audience)
    found = crawl(page, live_server, audience.start)
    summary = f"{audience.name}: {len(found.pages)} pages crawled, {len(found.violations)} axe violations"
    print(summary)
    _record(summary, found.pages)
    assert len(found.pages) >= 3, f"the crawl found too little for {audience.name}: {found.pages}"
    problems = found.violations + found.title_problems
    if problems:
        pytest.fail("\n".join([summary, *problems]), pytrace=False)


# Error states: (audience, page, a field of the form to submit empty). A page with a query string is a GET form
# already submitted with nothing in it. Forms whose empty submission would change something (cancel, approve,
# save settings) are left out.
ERROR_STATES = [
    ("anonymous", "/login", "email"),
    ("anonymous", "/register", "email"),
    ("anonymous", "/reset-password", "email"),
    ("patient", "/prescriptions/order", "note"),
    ("patient", "/proxy/request", "nhs_number"),
    ("patient", "/account", "pw-current_password"),
    ("patient", "slot", "reason"),
    ("unlinked patient", "/link", "account_id"),
    ("unlinked patient", "/link", "nhs_number"),
    ("receptionist", "/reception/patients?q=&born-day=1&born-month=&born-year=", ""),
    ("receptionist", "letter", "check-notes"),
    ("practice manager", "/manage/staff", "email"),
    ("practice manager", "/manage/reports?start-day=&start-month=&start-year=&end-day=&end-month=&end-year=", ""),
    ("system admin", "/admin/practices", "ods_code"),
]


def _open_error_page(page: Any, where: str) -> None:
    """Go to ``where``; "slot" and "letter" stand for the first bookable time and a letter's identity check."""
    if where == "slot":
        page.goto("/appointments/slots")
        page.locator("main a[href*='/appointments/slots/']").first.click()
    elif where == "letter":
        page.goto("/reception/patients?q=a")
        page.locator("main a[href*='/reception/patients/']").first.click()
        page.locator("main a[href$='/letter/new']").first.click()
    else:
        page.goto(where)
    page.wait_for_load_state()


@pytest.mark.parametrize(("who", "where", "name"), ERROR_STATES, ids=[f"{w}-{p}-{n}" for w, p, n in ERROR_STATES])
def test_error_states_pass_axe_and_say_error(
    who: str, where: str, name: str, audience_pages: Callable[[Audience], Any], live_server: str
) -> None:
    audience = next(a for a in AUDIENCES if a.name == who)
    page = audience_pages(audience)
    _open_error_page(page, where)
    if name:
        form = page.locator(f"main form:has([name$='{name}'])").first
        form.locator("[name]:is(input[type=text], input[type=email], input[type=password], textarea)").evaluate_all(
            "els => els.forEach(e => { e.value = '' })"
        )
        form.locator("button[type=submit], button:not([type])").last.click()
        page.wait_for_load_state()
    shown = page.url.removeprefix(live_server)
    assert page.locator(".nhsuk-error-summary").count() == 1, f"no error summary on {shown} ({where}, {name})"
    problems = axe_violations(page, f"{shown} with errors")
    if not page.title().startswith("Error: "):
        problems.append(f"title of {shown} with errors does not start 'Error: ': {page.title()!r}")
    for link in page.evaluate(SUMMARY_TARGETS):
        if link["tag"] not in ("input", "select", "textarea"):
            problems.append(f"error summary link {link['href']} on {shown} leads to {link['tag']}, not a field")
    assert not problems, "\n".join(problems)


def _record(summary: str, pages: list[str]) -> None:
    """Keep what was crawled next to the screenshots, for a person to read after the run."""
    SCREENSHOTS.parent.mkdir(parents=True, exist_ok=True)
    with (SCREENSHOTS.parent / "accessibility-pages.txt").open("a", encoding="utf-8") as out:
        out.write(summary + "\n" + "".join(f"  {p}\n" for p in pages))
