"""SQL statements per patient page (benchmark target 4): a small fixed number, whoever the patient is.

Counted at the engine, as the benchmark's ``X-Query-Count`` does, leaving out the savepoints the tests'
rolled-back connection adds around each commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event

PATIENT = "patient.y02001@example.com"
PARENT = "parent.y02001@example.com"

# The most statements each page may run for a patient who acts for nobody, the user loader's included.
PAGES = {"/home": 1, "/appointments/slots": 3, "/prescriptions": 7, "/record": 3, "/record/medications": 3}


@pytest.fixture
def statements(seeded_engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "SAVEPOINT" not in statement.upper():
            seen.append(statement)

    event.listen(seeded_engine, "before_cursor_execute", note)
    yield seen
    event.remove(seeded_engine, "before_cursor_execute", note)


def _count(client: Any, statements: list[str], url: str) -> int:
    statements.clear()
    response = client.get(url)
    assert response.status_code == 200, url
    return len(statements)


def test_patient_pages_run_a_few_statements(client: Any, sign_in: Any, statements: list[str]) -> None:
    sign_in(PATIENT)
    for url in PAGES:
        client.get(url)  # once first: a page's first visit may fill a cache the others then use
    counts = {url: _count(client, statements, url) for url in PAGES}
    assert counts == {url: min(counts[url], most) for url, most in PAGES.items()}, counts


def test_the_proxy_links_are_read_only_for_someone_who_acts_for_others(
    client: Any, sign_in: Any, statements: list[str]
) -> None:
    sign_in(PATIENT)
    alone = _count(client, statements, "/home")
    client.submit("/logout", page="/home")
    sign_in(PARENT)
    with_child = _count(client, statements, "/home")
    assert with_child == alone + 1
    assert "app-acting-switch" in client.get("/home").get_data(as_text=True), "the header offers the child"
