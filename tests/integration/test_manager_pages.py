"""What a practice manager reads: plain words (no "1 patients", no SNOMED CT code without its term, no
technical link states), and the practice switcher for staff who work in more than one practice."""

from __future__ import annotations

import datetime as dt
import html as html_lib
import re
from typing import Any

from sqlalchemy import select

from patient_online.domain.access import Service
from patient_online.domain.reports import SNOMED_TERMS
from patient_online.extensions import db
from patient_online.models import AuditEvent, Practice, StaffMembership, User
from patient_online.services.staff import PRACTICE_SWITCHED

MANAGER = "manager.y02001@example.com"
PAGES = [
    "/manage/",
    "/manage/services",
    *[f"/manage/services/{s.value}" for s in Service],
    "/manage/rules",
    "/manage/reports",
    "/manage/staff",
]
ONE_PLURAL = re.compile(r"(?<![\d.,])\b1 ([a-z]+s)\b")
NOT_PLURAL = {"is", "was", "has", "does"}  # "1 is ..." would be a sentence, not a count
CODE = re.compile(r"\b\d{9,18}\b")
JARGON = ("circuit", "embedded", "half-open", " UTC")


def _text(page: str) -> str:
    main = page.split("<main", 1)[1].split("</main>", 1)[0]
    return html_lib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", main)))


def words_problems(text: str) -> list[str]:
    """Every "1 patients"-style count, SNOMED CT code shown without its term and technical word in ``text``."""
    problems = [f"'{m[0]}'" for m in ONE_PLURAL.finditer(text) if m[1] not in NOT_PLURAL]
    for found in CODE.finditer(text):
        term = SNOMED_TERMS.get(found[0])
        near = text[max(0, found.start() - 200) : found.end() + 200]
        if term is None or term not in near:
            problems.append(f"code {found[0]} without its term")
    problems += [f"jargon '{word.strip()}'" for word in JARGON if word in text]
    return problems


def test_the_checks_find_what_they_look_for() -> None:
    assert words_problems("Repeat requests from 1 patients; oldest 1 days") == ["'1 patients'", "'1 days'"]
    assert words_problems("1 patient, 2 patients, 11 patients, 21 days") == []
    assert words_problems("Patients with code 1364731000000104 in force") == ["code 1364731000000104 without its term"]
    term = SNOMED_TERMS["1364731000000104"]
    assert words_problems(f"Patients with ‘{term}’ (SNOMED CT 1364731000000104)") == []
    assert words_problems("Link: circuit closed; embedded") == ["jargon 'circuit'", "jargon 'embedded'"]


def test_every_manager_page_reads_in_plain_words(app: Any, client: Any, sign_in: Any) -> None:
    sign_in(MANAGER)
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 200, path
        text = _text(response.get_data(as_text=True))
        assert words_problems(text) == [], path


def test_the_report_names_each_snomed_concept_with_its_term(client: Any, sign_in: Any) -> None:
    sign_in(MANAGER)
    text = _text(client.get("/manage/reports").get_data(as_text=True))
    for code, term in SNOMED_TERMS.items():
        assert code in text and term in text


def test_the_home_page_says_how_the_clinical_system_link_is(client: Any, sign_in: Any) -> None:
    sign_in(MANAGER)
    text = _text(client.get("/manage/").get_data(as_text=True))
    assert "Link to your clinical system: Connected" in text


def _add_role(app: Any, email: str, ods: str, role: str = "practice_manager") -> tuple[int, int]:
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        other = db.session.scalar(select(Practice).where(Practice.ods_code == ods))
        assert user is not None and other is not None
        db.session.add(StaffMembership(user_id=user.id, practice_id=other.id, role=role))
        db.session.commit()
        home = next(m.practice_id for m in user.memberships if m.role == role and m.practice_id != other.id)
        return home, other.id


def _switches(app: Any) -> list[AuditEvent]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == PRACTICE_SWITCHED)))


def test_staff_in_one_practice_see_no_switcher(client: Any, sign_in: Any) -> None:
    sign_in(MANAGER)
    assert 'id="practice-switch"' not in client.get("/manage/").get_data(as_text=True)


def test_staff_in_two_practices_switch_in_the_header_and_it_is_audited(app: Any, client: Any, sign_in: Any) -> None:
    home, other = _add_role(app, MANAGER, "Y02002")
    sign_in(MANAGER)
    page = client.get("/manage/services").get_data(as_text=True)
    assert '<label class="nhsuk-label" for="practice-switch">You are working in</label>' in page
    assert f'<option value="{home}" selected>' in page and f'<option value="{other}">' in page
    assert _switches(app) == []

    moved = client.get(f"/manage/?practice={other}").get_data(as_text=True)
    assert f'<option value="{other}" selected>' in moved
    (event,) = _switches(app)
    assert (event.practice_id, event.detail["previous_practice_id"]) == (other, home)
    assert event.actor_role == "practice_manager"

    client.get("/manage/services")  # the choice is kept, and staying is no change
    assert f'<option value="{other}" selected>' in client.get("/manage/rules").get_data(as_text=True)
    assert len(_switches(app)) == 1
    client.get(f"/manage/?practice={home}")
    assert len(_switches(app)) == 2


def test_a_practice_the_person_does_not_work_in_is_ignored(app: Any, client: Any, sign_in: Any) -> None:
    sign_in(MANAGER)
    with app.app_context():
        other = db.session.scalar(select(Practice).where(Practice.ods_code == "Y02002"))
        assert other is not None
        other_id = other.id
    page = client.get(f"/manage/?practice={other_id}")
    assert page.status_code == 200 and _switches(app) == []


def test_a_report_period_of_one_day_says_1_day(client: Any, sign_in: Any) -> None:
    sign_in(MANAGER)
    day = dt.date.today()
    query = f"start-day={day.day}&start-month={day.month}&start-year={day.year}"
    query += f"&end-day={day.day}&end-month={day.month}&end-year={day.year}"
    text = _text(client.get(f"/manage/reports?{query}").get_data(as_text=True))
    assert "(1 day)" in text and words_problems(text) == []
