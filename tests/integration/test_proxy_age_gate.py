"""Rule 18 holds at request time too: a parent's access to a child who has reached 16 (or the review age
without a recorded competence assessment and consent) gives nothing, even before the daily review runs."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from patient_online.domain.errors import NotAllowed
from patient_online.models import User
from patient_online.services.access import acting_for, active_proxy_links, today


def years_ago(years: int, days: int = 0) -> dt.date:
    now = today()
    return now.replace(year=now.year - years) - dt.timedelta(days=days)


@pytest.mark.parametrize(
    ("born", "agreed", "allowed"),
    [
        (years_ago(10, 1), False, True),  # 10: fine
        (years_ago(11, 0), False, False),  # 11 today, no competence assessment: paused
        (years_ago(11, 0), True, True),  # 11 with competence and consent recorded
        (years_ago(15, 300), True, True),
        (years_ago(16, 0), True, False),  # 16: always paused
    ],
)
def test_parental_access_is_held_at_the_age_boundaries(
    app_ctx: Any, session: Any, born: dt.date, agreed: bool, allowed: bool
) -> None:
    parent = session.scalar(select(User).where(User.email == "parent.y02001@example.com"))
    link = active_proxy_links(session, parent)[0]
    link.patient.date_of_birth = born
    link.competence_assessed = link.child_consent = agreed
    session.flush()
    if allowed:
        assert acting_for(session, parent, link.patient_id) is not None
    else:
        with pytest.raises(NotAllowed, match="paused"):
            acting_for(session, parent, link.patient_id)
