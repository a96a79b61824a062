"""Values kept on the server for a page (services/held_values.py): only the owner reads them, they expire,
what is taken is gone, and the table alone does not reveal them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from patient_online.models import HeldValue
from patient_online.services import held_values
from tests.fakes import FakeUnitOfWork
from tests.unit.conftest import user

HOUR = dt.timedelta(hours=1)


def test_the_owner_reads_what_was_held_and_nobody_else_does(uow: FakeUnitOfWork) -> None:
    owner, other = user(uow), user(uow)
    token = held_values.hold(uow, owner.id, "rx_offered", {"items": {"1": "Amlodipine 5mg tablets"}}, HOUR)
    assert held_values.read(uow, owner.id, "rx_offered", token) == {"items": {"1": "Amlodipine 5mg tablets"}}
    assert held_values.read(uow, other.id, "rx_offered", token) is None
    assert held_values.read(uow, owner.id, "letter_key", token) is None
    assert held_values.read(uow, owner.id, "rx_offered", token + "x") is None


def test_the_table_holds_neither_the_token_nor_the_value(uow: FakeUnitOfWork) -> None:
    owner = user(uow)
    token = held_values.hold(uow, owner.id, "letter_key", {"key": "ABCD-EFGH-JKLM"}, HOUR)
    row = uow.session.scalars(select(HeldValue)).one()
    assert token not in row.id and "ABCD" not in row.sealed and "EFGH" not in row.sealed


def test_what_is_taken_is_gone(uow: FakeUnitOfWork) -> None:
    owner = user(uow)
    token = held_values.hold(uow, owner.id, "letter_key", {"key": "ABCD-EFGH-JKLM"}, HOUR)
    assert held_values.take(uow, owner.id, "letter_key", token) == {"key": "ABCD-EFGH-JKLM"}
    assert held_values.take(uow, owner.id, "letter_key", token) is None
    assert uow.session.scalars(select(HeldValue)).all() == []


def test_values_expire_and_are_swept(uow: FakeUnitOfWork) -> None:
    owner = user(uow)
    old = held_values.hold(uow, owner.id, "rx_offered", [1], HOUR)
    uow.clock.advance(hours=2)  # type: ignore[attr-defined]
    assert held_values.read(uow, owner.id, "rx_offered", old) is None
    held_values.hold(uow, owner.id, "rx_offered", [2], HOUR)
    assert len(uow.session.scalars(select(HeldValue)).all()) == 1


def test_holding_again_replaces_the_earlier_value(uow: FakeUnitOfWork) -> None:
    owner = user(uow)
    first = held_values.hold(uow, owner.id, "rx_offered", [1], HOUR)
    second = held_values.hold(uow, owner.id, "rx_offered", [2], HOUR, replacing=first)
    assert held_values.read(uow, owner.id, "rx_offered", first) is None
    assert held_values.read(uow, owner.id, "rx_offered", second) == [2]
