"""Repeat prescription rules (7, 12, 13): orderability, the status lifecycle, notes and ready-by dates."""

from __future__ import annotations

import datetime as dt

import pytest

from patient_online.domain.geo import Point, miles_between, miles_text, nearest_first
from patient_online.domain.prescriptions import (
    Collection,
    InvalidTransition,
    NotOrderable,
    PrescriptionRules,
    PrescriptionType,
    RepeatItem,
    RepeatRequest,
    RequestStatus,
    add_working_days,
    can_move,
    move,
    note_problem,
    outstanding_item_ids,
    ready_by,
    template_lines,
    why_not_orderable,
)
from patient_online.services.outbox import backoff

TODAY = dt.date(2026, 3, 10)
RULES = PrescriptionRules(turnaround_working_days=2, max_note_length=300, never_online=frozenset({"pregabalin"}))


def item(**kw: object) -> RepeatItem:
    base: dict[str, object] = {
        "id": "M1",
        "name": "Amlodipine 5mg tablets",
        "dosage": "One a day",
        "quantity": "28 tablets",
        "prescription_type": PrescriptionType.REPEAT,
        "code": "319283006",
        "review_date": TODAY + dt.timedelta(days=90),
    }
    base.update(kw)
    return RepeatItem(**base)  # type: ignore[arg-type]


def request(status: RequestStatus, *item_ids: str) -> RepeatRequest:
    return RepeatRequest(
        id=f"R-{status.value}",
        item_ids=item_ids,
        item_names=item_ids,
        status=status,
        requested_at=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
    )


def test_a_current_authorised_repeat_is_orderable() -> None:
    assert why_not_orderable(item(), RULES, [], TODAY) is None


@pytest.mark.parametrize("kind", [PrescriptionType.REPEAT, PrescriptionType.REPEAT_DISPENSING])
def test_repeats_and_repeat_dispensing_are_orderable(kind: PrescriptionType) -> None:
    assert why_not_orderable(item(prescription_type=kind, issues_allowed=6, issues_used=2), RULES, [], TODAY) is None


def test_acute_items_are_not_orderable() -> None:
    assert why_not_orderable(item(prescription_type=PrescriptionType.ACUTE), RULES, [], TODAY) is NotOrderable.ACUTE


def test_items_past_their_review_date_are_not_orderable() -> None:
    assert (
        why_not_orderable(item(review_date=TODAY - dt.timedelta(days=1)), RULES, [], TODAY) is NotOrderable.REVIEW_DUE
    )
    assert why_not_orderable(item(review_date=TODAY), RULES, [], TODAY) is None  # due today is still in date


def test_items_with_issues_used_up_are_not_orderable() -> None:
    used_up = item(issues_allowed=6, issues_used=6)
    assert why_not_orderable(used_up, RULES, [], TODAY) is NotOrderable.ISSUES_USED
    assert why_not_orderable(item(issues_allowed=6, issues_used=5), RULES, [], TODAY) is None


def test_items_already_requested_are_not_orderable() -> None:
    assert why_not_orderable(item(), RULES, ["M1"], TODAY) is NotOrderable.ALREADY_REQUESTED


@pytest.mark.parametrize(
    "never", [frozenset({"pregabalin"}), frozenset({"325427002"}), frozenset({"amlodipine"}), frozenset({"319283006"})]
)
def test_the_practice_never_online_list_matches_names_and_codes(never: frozenset[str]) -> None:
    rules = PrescriptionRules(never_online=never)
    pregabalin = item(name="Pregabalin 75mg capsules", code="325427002")
    hits = [why_not_orderable(i, rules, [], TODAY) for i in (pregabalin, item())]
    assert NotOrderable.NOT_ONLINE in hits


def test_controlled_drugs_are_never_online() -> None:
    morphine = item(name="Morphine sulfate 10mg tablets", controlled_drug=True)
    assert why_not_orderable(morphine, PrescriptionRules(), [], TODAY) is NotOrderable.NOT_ONLINE


def test_every_reason_is_plain_words_for_the_patient() -> None:
    for reason in NotOrderable:
        assert reason.value.endswith(".") and len(reason.value) < 120


def test_outstanding_items_are_those_queued_requested_or_approved() -> None:
    requests = [
        request(RequestStatus.QUEUED, "A"),
        request(RequestStatus.REQUESTED, "B"),
        request(RequestStatus.APPROVED, "C"),
        request(RequestStatus.ISSUED, "D"),
        request(RequestStatus.REJECTED, "E"),
        request(RequestStatus.CANCELLED, "F"),
        request(RequestStatus.FAILED, "G"),
    ]
    assert outstanding_item_ids(requests) == {"A", "B", "C"}


def test_template_lines_put_orderable_items_first_with_reasons_for_the_rest() -> None:
    items = [
        item(id="M1", name="Zopiclone", prescription_type=PrescriptionType.ACUTE),
        item(id="M2", name="Atorvastatin"),
        item(id="M3", name="Amlodipine"),
    ]
    lines = template_lines(items, RULES, [request(RequestStatus.REQUESTED, "M3")], TODAY)
    assert [(line.item.id, line.reason) for line in lines] == [
        ("M2", None),
        ("M3", NotOrderable.ALREADY_REQUESTED),
        ("M1", NotOrderable.ACUTE),
    ]
    assert lines[0].orderable and not lines[1].orderable


def test_note_limit_comes_from_the_practice_rules() -> None:
    rules = PrescriptionRules(max_note_length=10)
    assert note_problem("x" * 10, rules) is None
    assert note_problem("x" * 11, rules) == "Enter a note of 10 characters or fewer"


@pytest.mark.parametrize(
    ("submitted", "days", "expected"),
    [
        (dt.date(2026, 3, 10), 2, dt.date(2026, 3, 12)),  # Tuesday -> Thursday
        (dt.date(2026, 3, 12), 2, dt.date(2026, 3, 16)),  # Thursday -> Monday, weekend skipped
        (dt.date(2026, 3, 14), 2, dt.date(2026, 3, 17)),  # ordered on a Saturday
        (dt.date(2025, 12, 24), 2, dt.date(2025, 12, 30)),  # Christmas and Boxing Day skipped
        (dt.date(2026, 4, 2), 1, dt.date(2026, 4, 7)),  # Good Friday and Easter Monday skipped
        (dt.date(2026, 5, 1), 1, dt.date(2026, 5, 5)),  # early May bank holiday skipped
        (dt.date(2026, 3, 10), 0, dt.date(2026, 3, 10)),
    ],
)
def test_ready_by_counts_working_days_only(submitted: dt.date, days: int, expected: dt.date) -> None:
    assert add_working_days(submitted, days) == expected
    assert ready_by(submitted, PrescriptionRules(turnaround_working_days=days)) == expected


ALLOWED = {
    (RequestStatus.QUEUED, RequestStatus.REQUESTED),
    (RequestStatus.QUEUED, RequestStatus.FAILED),
    (RequestStatus.QUEUED, RequestStatus.CANCELLED),  # withdrawn before it was sent
    (RequestStatus.REQUESTED, RequestStatus.APPROVED),
    (RequestStatus.REQUESTED, RequestStatus.REJECTED),
    (RequestStatus.REQUESTED, RequestStatus.CANCELLED),
    (RequestStatus.APPROVED, RequestStatus.ISSUED),
}


@pytest.mark.parametrize("current", list(RequestStatus))
@pytest.mark.parametrize("new", list(RequestStatus))
def test_status_lifecycle(current: RequestStatus, new: RequestStatus) -> None:
    allowed = (current, new) in ALLOWED
    assert can_move(current, new) is allowed
    if allowed:
        assert move(current, new) is new
    else:
        with pytest.raises(InvalidTransition):
            move(current, new)


def test_only_queued_and_requested_requests_can_be_cancelled_by_the_patient() -> None:
    assert [s for s in RequestStatus if s.cancellable] == [RequestStatus.QUEUED, RequestStatus.REQUESTED]


def test_every_status_has_words_and_a_colour() -> None:
    for status in RequestStatus:
        assert status.label and status.tag_colour


def test_outbox_backoff_doubles_up_to_a_cap() -> None:
    waits = [backoff(n, base=5, cap=60).total_seconds() for n in range(1, 7)]
    assert waits == [5, 10, 20, 40, 60, 60]


# Where to collect it, and how far away the pharmacies are ---------------------------------------------------
def test_collection_is_said_in_the_patients_words() -> None:
    assert Collection.SURGERY.label(practice_name="Riverside Medical Centre") == (
        "Paper prescription to collect from Riverside Medical Centre"
    )
    assert Collection.PHARMACY.label(pharmacy_name="Kingsbridge Pharmacy") == (
        "Sent electronically to Kingsbridge Pharmacy"
    )
    assert (
        RepeatRequest("R1", (), (), RequestStatus.REQUESTED, dt.datetime(2026, 3, 1, tzinfo=dt.UTC)).collection
        is Collection.PHARMACY
    )


def test_haversine_distance_in_miles() -> None:
    london, paris = Point(51.5074, -0.1278), Point(48.8566, 2.3522)
    assert miles_between(london, paris) == pytest.approx(213.5, abs=0.5)
    assert miles_between(london, london) == 0
    # A tenth of a degree of latitude is about 6.9 miles anywhere.
    assert miles_between(Point(50.0, -3.0), Point(50.1, -3.0)) == pytest.approx(6.91, abs=0.01)


@pytest.mark.parametrize(
    ("miles", "text"),
    [(0.01, "less than 0.1 miles"), (0.44, "0.4 miles"), (1.0, "1 mile"), (2.96, "3 miles"), (12.4, "12 miles")],
)
def test_a_distance_is_shown_in_miles(miles: float, text: str) -> None:
    assert miles_text(miles) == text


def test_places_are_nearest_first_then_unknown_ones_alphabetically() -> None:
    origin = Point(50.284, -3.777)
    places = {
        "Far": Point(50.60, -3.55),
        "Zed (no location)": None,
        "Near": Point(50.2832, -3.7765),
        "Middle": Point(50.29, -3.785),
        "Abbey (no location)": None,
    }
    ordered = nearest_first(places, origin, places.get, str)
    assert [name for name, _ in ordered] == ["Near", "Middle", "Far", "Abbey (no location)", "Zed (no location)"]
    distances = [miles for _, miles in ordered]
    assert distances[3:] == [None, None] and distances[0] is not None and distances[0] < 0.1
    # With no origin (a practice whose location is unknown) every place is listed alphabetically.
    assert [name for name, miles in nearest_first(places, None, places.get, str)] == sorted(places, key=str.lower)
