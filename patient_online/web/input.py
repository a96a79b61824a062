"""The input boundary every audience shares: path ids, and the base form that every form class extends.

A path id is a positive integer that fits a database integer column; anything else is not a page (404),
never a database error.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from werkzeug.routing import IntegerConverter

MAX_ID = 2**31 - 1  # PostgreSQL's integer


class IdConverter(IntegerConverter):
    """`<id:name>`: 1 to 2**31 - 1; out of range does not match, so the request is a 404."""

    def __init__(self, map: object) -> None:
        super().__init__(map, min=1, max=MAX_ID)  # type: ignore[arg-type]


class Form(FlaskForm):
    """The base of every form."""
