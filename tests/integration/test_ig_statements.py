"""The privacy notice, cookies page and accessibility statement: public, linked from every page, and true."""

from __future__ import annotations

import re
from typing import Any

PATIENT = "patient.y02001@example.com"


def test_the_statements_are_public_and_linked_from_the_footer(client: Any) -> None:
    home = client.get("/").get_data(as_text=True)
    for url, heading in (
        ("/privacy", "Privacy notice"),
        ("/cookies", "Cookies"),
        ("/accessibility", "Accessibility statement"),
    ):
        assert f'href="{url}"' in home, f"the footer links to {url}"
        page = client.get(url)
        assert page.status_code == 200
        assert f"<h1>{heading}</h1>" in page.get_data(as_text=True)


def test_the_privacy_notice_names_the_controller_and_the_operator(client: Any) -> None:
    page = client.get("/privacy").get_data(as_text=True)
    assert "Your GP practice</strong> is responsible" in page and "data controller" in page
    assert "data processor" in page
    assert "8 years" in page and "2 years" in page, "the retention policy, from the settings"


def test_the_cookie_page_lists_exactly_the_cookies_a_signed_in_journey_receives(
    app: Any, client: Any, sign_in: Any
) -> None:
    received: set[str] = set()
    opened = client.raw.open

    def noting(*args: Any, **kwargs: Any) -> Any:
        response = opened(*args, **kwargs)
        for header in response.headers.getlist("Set-Cookie"):
            if "Max-Age=0" in header or "01 Jan 1970" in header:
                continue  # a cookie being removed (signing out clears any "remember me" cookie): none is set
            received.add(header.split("=", 1)[0])
        return response

    client.raw.open = noting  # every response of the journey, as the browser receives it

    listed = set(re.findall(r'data-cookie-name="([^"]+)"', client.get("/cookies").get_data(as_text=True)))
    sign_in(PATIENT)
    for url in ("/home", "/appointments", "/prescriptions/order", "/account", "/account/my-data", "/proxy"):
        client.get(url)
    client.submit("/logout", page="/home")
    assert received, "the journey set at least the session cookie"
    assert received == listed, f"cookies set {sorted(received)}, cookie page lists {sorted(listed)}"
