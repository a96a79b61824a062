"""The proxy page leads with the person acted for and what the proxy may do for them, in plain words."""

from __future__ import annotations

import html
import re
from typing import Any

from sqlalchemy import select

from patient_online.models import ProxyLink, User

PARENT = "parent.y02001@example.com"


def _main(response: Any) -> str:
    text = html.unescape(response.get_data(as_text=True)).split('id="maincontent"', 1)[-1]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text))


def test_acting_for_a_child_the_page_names_them_first_then_the_proxys_cap(app: Any, client: Any, sign_in: Any) -> None:
    from patient_online.extensions import db

    with app.app_context():
        parent = db.session.scalar(select(User).where(User.email == PARENT))
        link = db.session.scalar(select(ProxyLink).where(ProxyLink.proxy_user_id == parent.id))
        child_id, child = link.patient_id, link.patient
        name, full_name = child.given_name, child.full_name
    sign_in(PARENT)
    assert client.submit("/proxy/act-for", {"patient_id": str(child_id)}, page="/proxy").status_code == 302
    page = _main(client.get("/proxy"))
    lead = page.index(f"You are acting for {full_name}.")
    assert lead < page.index("Parents and carers can use online services")
    assert f"You can see {name}'s summary record: allergies, adverse reactions and medicines." in page
    assert f"You can book, check and cancel {name}'s appointments online." in page
    assert "full record" not in page, "the child's own level is not the proxy's"
    assert "coded" not in page and "practice default" not in page


def test_the_people_a_parent_acts_for_are_described_in_plain_words(client: Any, sign_in: Any) -> None:
    sign_in(PARENT)
    page = _main(client.get("/proxy"))
    assert (
        "You can: book and cancel appointments; order repeat prescriptions; "
        "see the summary record (allergies, adverse reactions and medicines)." in page
    )
