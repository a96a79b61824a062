"""The input boundary every audience shares: path ids, the request guard, and the base form of every form class.

What a person can type is checked field by field, so that the page can say which field is wrong: every form
class extends ``Form``, whose fields refuse control characters and over-long text before any other check runs.
What no field can show (query strings, path segments, field names, the shape of a form body) is checked once
per request by ``guard_request``, which answers 400 with the standard error page. Between them no value a
person can send reaches the database as something it cannot store: a NUL character, an out-of-range number.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from flask import request
from flask_wtf import FlaskForm
from flask_wtf.form import _Auto
from werkzeug.exceptions import BadRequest
from werkzeug.routing import IntegerConverter
from wtforms import BooleanField, Field, HiddenField, TextAreaField
from wtforms.validators import Length, StopValidation

from .fields import DateParts, label_name

MAX_ID = 2**31 - 1  # PostgreSQL's integer

SINGLE_LINE_MAX = 1_000  # a text field with no Length validator of its own
MULTI_LINE_MAX = 5_000  # a text area with no Length validator of its own
HIDDEN_MAX = 80  # a hidden field carries what the gateway made (a key, an id, a time); its columns hold 80
MAX_CHOICES = 100  # values one field may carry (a list of checkboxes)

MAX_QUERY_VALUE = 2_000
MAX_QUERY_PARAMS = 100
MAX_PATH_SEGMENT = 120  # the longest identifier the gateway keeps (slot ids, appointment references)
MAX_FIELD_NAME = 200
MAX_FORM_VALUES = 300

# C0 and C1 controls, UTF-16 surrogates, and the bidirectional embeddings, overrides and isolates that can
# make text read differently from what it is. Tab, line feed and carriage return are allowed in text areas.
_UNUSABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
_UNUSABLE_IN_TEXT_AREA = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")


def has_unusable_characters(text: str, multi_line: bool = False) -> bool:
    """True when ``text`` holds a character no field accepts (NUL, other controls, lone surrogates, bidi overrides)."""
    return (_UNUSABLE_IN_TEXT_AREA if multi_line else _UNUSABLE).search(text) is not None


class IdConverter(IntegerConverter):
    """`<id:name>`: 1 to 2**31 - 1; out of range does not match, so the request is a 404."""

    def __init__(self, map: object) -> None:
        super().__init__(map, min=1, max=MAX_ID)  # type: ignore[arg-type]


# Forms ---------------------------------------------------------------------------------------------------------
def text_problem(field: Field) -> str | None:
    """The message for a value no field of this kind accepts, or None.

    Date boxes and checkboxes check their own values; every other field's submitted values are text that must
    be free of control characters and within a length (the field's own Length validator, when it has one, says
    how long, with its own message).
    """
    if isinstance(field, DateParts | BooleanField):
        return None
    values = [v for v in (field.raw_data or []) if isinstance(v, str)]
    if not values:
        return None
    name = label_name(field)
    multi_line = isinstance(field, TextAreaField)
    if len(values) > MAX_CHOICES:
        return f"{name} has too many values. Choose up to {MAX_CHOICES}"
    if any(has_unusable_characters(v, multi_line) for v in values):
        return f"{name} contains characters that cannot be used. Remove them and try again"
    if not any(isinstance(v, Length) and v.max >= 0 for v in field.validators):
        limit = MULTI_LINE_MAX if multi_line else HIDDEN_MAX if isinstance(field, HiddenField) else SINGLE_LINE_MAX
        if any(len(v) > limit for v in values):
            return f"{name} must be {limit:,} characters or fewer"
    return None


def _guard_field(field: Field) -> None:
    """Put the boundary check in front of the field's own checks, so a bad value is never validated further.

    The field's validators and the form's ``validate_<name>`` methods may look the value up in the database; a
    value the database cannot hold stops at this check, with its message, before they run.
    """
    own = field.pre_validate

    def pre_validate(form: Any) -> None:
        problem = text_problem(field)
        if problem is not None:
            raise StopValidation(problem)
        own(form)

    field.pre_validate = pre_validate


class Form(FlaskForm):
    """The base of every form: every field refuses control characters and over-long text with its own message."""

    class Meta(FlaskForm.Meta):
        def bind_field(self, form: Any, unbound_field: Any, options: dict[str, Any]) -> Field:
            field = super().bind_field(form, unbound_field, options)
            if field.type != "CSRFTokenField":
                _guard_field(field)
            return field

        def wrap_formdata(self, form: Any, formdata: Any) -> Any:
            """A submitted form reads the form body only: never uploaded files or a JSON body as field values."""
            if formdata is _Auto:
                return request.form if request.method in ("POST", "PUT", "PATCH", "DELETE") else None
            return super().wrap_formdata(form, formdata)


# The request guard -----------------------------------------------------------------------------------------------
def _check_names(names: Iterable[str], what: str) -> None:
    if any(len(name) > MAX_FIELD_NAME or has_unusable_characters(name) for name in names):
        raise BadRequest(f"The {what} has a name that cannot be used. Go back and try again.")


def guard_request() -> None:
    """Refuse what no form field could show, with a 400 page: the web address and the shape of a form body.

    - path segments: no control characters, at most 120 characters each;
    - query string: at most 100 values, each free of control characters and at most 2,000 characters;
    - form body: at most 300 values, field names free of control characters, and no NUL anywhere. A NUL
      cannot be typed, and values some pages read without a form class would carry it to the database. Every
      other character in a value is left to the form, whose field says what is wrong.
    """
    for segment in request.path.split("/"):
        if len(segment) > MAX_PATH_SEGMENT or has_unusable_characters(segment):
            raise BadRequest("The web address is not valid. Check it and try again.")
    args = list(request.args.items(multi=True))
    if len(args) > MAX_QUERY_PARAMS or any(len(value) > MAX_QUERY_VALUE for _, value in args):
        raise BadRequest("The web address is too long. Check it and try again.")
    _check_names((name for name, _ in args), "web address")
    if any(has_unusable_characters(value) for _, value in args):
        raise BadRequest("The web address contains characters that cannot be used. Remove them and try again.")
    if request.method in ("POST", "PUT", "PATCH", "DELETE") and request.mimetype in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        fields = list(request.form.items(multi=True))
        if len(fields) + len(request.files) > MAX_FORM_VALUES:
            raise BadRequest("The form has too many values. Go back and try again.")
        _check_names([name for name, _ in fields] + list(request.files), "form")
        if any("\x00" in value for _, value in fields):
            raise BadRequest("The form contains characters that cannot be used. Remove them and try again.")
