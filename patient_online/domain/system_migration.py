"""A practice's move from one clinical system to another: the plan's states and the matching rule.

The gateway stands between patients and the practice's system, so a move can be almost invisible to them:
writes pause for the cut-over window, the practice's adapter changes, every linked patient is found again in
the new system by NHS number and date of birth, and only those who cannot be matched safely wait for reception.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import DomainError
from .patients import Demographics


class MigrationState(enum.StrEnum):
    PLANNED = "planned"  # agreed, nothing changed yet
    FREEZING = "freezing"  # the window has started: bookings, cancellations and orders are paused
    CUT_OVER = "cut_over"  # the practice now uses the new system; patients are being matched
    MATCHING = "matching"  # matched patients use the new system; reception checks the rest
    DONE = "done"  # finished: no rollback any more
    ROLLED_BACK = "rolled_back"  # the old system and ids are back

    @property
    def label(self) -> str:
        return {
            "planned": "Planned",
            "freezing": "Changes paused",
            "cut_over": "Cutting over",
            "matching": "Reception checking details",
            "done": "Finished",
            "rolled_back": "Rolled back",
        }[self.value]

    @property
    def open(self) -> bool:
        return self not in (MigrationState.DONE, MigrationState.ROLLED_BACK)


# The steps a plan may take: from each state, the states it may move to.
NEXT: dict[MigrationState, frozenset[MigrationState]] = {
    MigrationState.PLANNED: frozenset({MigrationState.FREEZING, MigrationState.ROLLED_BACK}),
    MigrationState.FREEZING: frozenset({MigrationState.CUT_OVER, MigrationState.ROLLED_BACK}),
    MigrationState.CUT_OVER: frozenset({MigrationState.MATCHING, MigrationState.ROLLED_BACK}),
    MigrationState.MATCHING: frozenset({MigrationState.DONE, MigrationState.ROLLED_BACK}),
    MigrationState.DONE: frozenset(),
    MigrationState.ROLLED_BACK: frozenset(),
}


class MigrationRefused(DomainError):
    """A step the plan cannot take now (wrong state, outside the window)."""

    message = "This step cannot be taken now."


def require_step(current: MigrationState, wanted: MigrationState) -> None:
    """Refuse a step the plan's state does not allow, naming both states in plain words."""
    if wanted not in NEXT[current]:
        raise MigrationRefused(f"The plan is '{current.label}': it cannot move to '{wanted.label}'.")


class MatchOutcome(enum.StrEnum):
    MATCHED = "matched"
    NOT_FOUND = "not_found"
    BIRTH_DATE_DIFFERS = "birth_date_differs"
    FOUND_TWICE = "found_twice"
    NOT_ASKED = "not_asked"  # the new system could not be reached for this patient

    @property
    def reason(self) -> str:
        """Why reception must look, in words a receptionist understands."""
        return {
            "matched": "",
            "not_found": "No patient with this NHS number at the new system",
            "birth_date_differs": "The new system has a different date of birth for this NHS number",
            "found_twice": "The new system has two records with this name and date of birth",
            "not_asked": "The new system could not be reached for this patient",
        }[self.value]


@dataclass(frozen=True)
class Match:
    outcome: MatchOutcome
    new_id: str = ""


def match_patient(
    date_of_birth: dt.date, found: Demographics | None, same_name_and_birth: Sequence[Demographics] = ()
) -> Match:
    """Whether a patient found in the new system by NHS number is safely the same person.

    The NHS number must be found, with the same date of birth; and no second record with the same surname and
    date of birth may exist there (a duplicate registration), or reception decides which one is theirs.
    """
    if found is None:
        return Match(MatchOutcome.NOT_FOUND)
    if found.date_of_birth != date_of_birth:
        return Match(MatchOutcome.BIRTH_DATE_DIFFERS)
    others = {d.ref.clinical_id for d in same_name_and_birth} - {found.ref.clinical_id}
    if others:
        return Match(MatchOutcome.FOUND_TWICE)
    return Match(MatchOutcome.MATCHED, found.ref.clinical_id)


def freeze_message(practice_name: str, until: dt.date | None, phone: str) -> str:
    """What patients read while changes are paused: what still works and how to reach the practice."""
    when = f" until {_day(until)}" if until else ""
    call = f"call {phone}" if phone else "contact the practice"
    return (
        f"{_capital(practice_name)} is changing its clinical system{when}. You can still see your appointments "
        f"and GP record online. To book or cancel an appointment or order a repeat prescription, {call}."
    )


def checking_message(practice_name: str, phone: str) -> str:
    """What a patient reads while reception checks their details after the change, instead of an error."""
    call = f" If you need something urgently, call {phone}." if phone else ""
    return (
        f"We are checking your details after {practice_name}'s system change. You will be able to use your "
        f"online services again soon; you do not need to do anything.{call}"
    )


def _day(at: dt.date) -> str:
    return f"{at.day} {at:%B %Y}"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
