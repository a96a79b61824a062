"""The input boundary's rules (issue 19): every form field refuses what the database cannot hold, with its own
message, and date boxes never raise, whatever is typed in them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from flask import Flask
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest
from wtforms import BooleanField, HiddenField, PasswordField, RadioField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from patient_online.domain.passwords import password_problem
from patient_online.web.fields import DateParts
from patient_online.web.input import (
    HIDDEN_MAX,
    MULTI_LINE_MAX,
    SINGLE_LINE_MAX,
    Form,
    guard_request,
    has_unusable_characters,
)


class Sample(Form):
    class Meta:
        csrf = False

    name = StringField("Name")
    reason = TextAreaField("Reason (optional)")
    short = StringField("Nickname", validators=[Length(max=10, message="Nickname must be 10 characters or fewer")])
    secret = PasswordField("Password")
    token = HiddenField()
    kind = RadioField("Kind", choices=[("a", "A")], validate_choice=False)
    agree = BooleanField("I agree")
    born = DateParts("Date of birth", required_message="Enter your date of birth")


class NeedsLookup(Form):
    """A form whose own check would query the database: it must never see a value the boundary refuses."""

    class Meta:
        csrf = False

    email = StringField("Email address", validators=[DataRequired("Enter your email address")])
    looked_up: ClassVar[list[str]] = []

    def validate_email(self, field: StringField) -> None:
        self.looked_up.append(field.data)


@pytest.fixture(autouse=True)
def request_context() -> Iterator[None]:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="unit", WTF_CSRF_ENABLED=False)
    with app.test_request_context():
        yield


def _form(cls: type[Form] = Sample, **values: Any) -> Any:
    form = cls(formdata=MultiDict(values))
    form.validate()
    return form


# Text fields ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["a\x00b", "\x00", "tab\there", "line\nbreak", "\x1b[31m", "\x7f", "\x85", "\u202e"])
def test_single_line_fields_refuse_control_characters_with_a_field_message(bad: str) -> None:
    form = _form(name=bad, secret=bad, token=bad, kind=bad)
    assert form.name.errors == ["Name contains characters that cannot be used. Remove them and try again"]
    assert form.secret.errors == ["Password contains characters that cannot be used. Remove them and try again"]
    assert form.token.errors and form.kind.errors


def test_text_areas_keep_line_breaks_and_tabs_but_refuse_other_controls() -> None:
    assert _form(reason="First line\r\nSecond\tline").reason.errors == []
    refused = _form(reason="First\x00line").reason.errors
    assert refused == ["Reason contains characters that cannot be used. Remove them and try again"]


def test_lone_surrogates_are_refused_not_raised() -> None:
    assert _form(name="\ud800x").name.errors
    assert has_unusable_characters("\udfff")


def test_ordinary_text_of_every_script_is_accepted() -> None:
    form = _form(name="Zoë O'Brien-Łukasz 😀 محمد 李", reason="Café – “quoted” ½", token="abc-123")
    assert form.errors == {}


def test_length_cap_applies_when_the_field_has_no_length_rule_of_its_own() -> None:
    assert _form(name="x" * SINGLE_LINE_MAX).name.errors == []
    assert _form(name="x" * (SINGLE_LINE_MAX + 1)).name.errors == ["Name must be 1,000 characters or fewer"]
    assert _form(reason="x" * MULTI_LINE_MAX).reason.errors == []
    assert _form(reason="x" * (MULTI_LINE_MAX + 1)).reason.errors == ["Reason must be 5,000 characters or fewer"]
    # The field's own Length rule speaks for itself.
    assert _form(short="x" * 11).short.errors == ["Nickname must be 10 characters or fewer"]


def test_a_refused_value_never_reaches_the_forms_own_checks() -> None:
    NeedsLookup.looked_up = []
    form = _form(NeedsLookup, email="someone\x00@example.com")
    assert form.email.errors == ["Email address contains characters that cannot be used. Remove them and try again"]
    assert NeedsLookup.looked_up == []
    _form(NeedsLookup, email="someone@example.com")
    assert NeedsLookup.looked_up == ["someone@example.com"]


def test_checkboxes_and_too_many_values() -> None:
    assert _form(agree="y\x00").agree.errors == []
    many = Sample(formdata=MultiDict([("kind", str(n)) for n in range(101)]))
    many.validate()
    assert many.kind.errors == ["Kind has too many values. Choose up to 100"]


# Date boxes -------------------------------------------------------------------------------------------------------
def _date(day: str, month: str, year: str) -> DateParts:
    return _form(**{"born-day": day, "born-month": month, "born-year": year}).born  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("day", "month", "year", "message"),
    [
        ("", "", "", "Enter your date of birth"),
        ("1", "", "", "Date of birth must include a month and year"),
        ("31", "2", "2000", "Date of birth must be a real date"),
        ("32", "1", "2000", "Date of birth must be a real date"),
        ("0", "1", "2000", "Date of birth must be a real date"),
        ("1", "13", "2000", "Date of birth must be a real date"),
        ("1", "0", "2000", "Date of birth must be a real date"),
        ("-1", "1", "2000", "Date of birth must be a real date"),
        ("1.5", "1", "2000", "Date of birth must be a real date"),
        ("99999999999999999999", "1", "2000", "Date of birth must be a real date"),
        ("١", "١", "٢٠٠٠", "Date of birth must be a real date"),
        ("²", "1", "2000", "Date of birth must be a real date"),
        ("1\x00", "1", "2000", "Date of birth must be a real date"),
        ("1", "1", "84", "Year must include 4 numbers"),
        ("1", "1", "99999999999", "Year must include 4 numbers"),
        ("1", "1", str(2**63), "Year must include 4 numbers"),
        ("1", "1", "-2000", "Year must include 4 numbers"),
        ("1", "1", "1e9", "Year must include 4 numbers"),
        ("1", "1", "1899", "Year must be 1900 or later"),
        ("1", "1", "9999", "Year must be 2199 or earlier"),
    ],
)
def test_date_boxes_give_the_nhs_messages_and_never_raise(day: str, month: str, year: str, message: str) -> None:
    field = _date(day, month, year)
    assert field.errors == [message]
    assert field.data is None


def test_a_real_date_is_read_with_spaces_and_leading_zeros() -> None:
    field = _date(" 07 ", "02", "1984 ")
    assert field.errors == []
    assert field.data == dt.date(1984, 2, 7)


def test_a_date_field_may_narrow_its_years() -> None:
    class Narrow(Form):
        class Meta:
            csrf = False

        when = DateParts("When", min_year=2000, max_year=2030)

    form = Narrow(formdata=MultiDict({"when-day": "1", "when-month": "1", "when-year": "2031"}))
    form.validate()
    assert form.when.errors == ["Year must be 2030 or earlier"]


def test_uploaded_files_are_never_read_as_field_values() -> None:
    from io import BytesIO

    app = Flask(__name__)
    app.config.update(SECRET_KEY="unit", WTF_CSRF_ENABLED=False)
    with app.test_request_context(
        "/", method="POST", data={"name": (BytesIO(b"\x00binary"), "x.bin"), "reason": "Fine"}
    ):
        form = Sample()
        form.validate()
        assert form.name.data is None
        assert form.reason.data == "Fine"


def test_hidden_fields_hold_only_what_the_gateway_made() -> None:
    assert _form(token="k" * HIDDEN_MAX).token.errors == []
    assert _form(token="k" * (HIDDEN_MAX + 1)).token.errors == ["Token must be 80 characters or fewer"]


def test_a_long_passphrase_is_judged_not_raised() -> None:
    """zxcvbn raises past 72 characters; a person may choose a longer passphrase (up to 128)."""
    assert password_problem("correct horse battery staple " * 4) is None
    assert password_problem("a" * 100) is not None


# The request guard -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "kw"),
    [
        ("/admin/practices/%00", {}),
        ("/admin/practices/" + "Y" * 121, {}),
        ("/reception/patients?q=a%00b", {}),
        ("/reception/patients?q=%E2%80%AE", {}),
        ("/reception/patients?q=" + "a" * 2_001, {}),
        ("/reception/patients?" + "&".join(f"f{n}=1" for n in range(101)), {}),
        ("/x", {"method": "POST", "data": {"reason": "a\x00b"}}),
        ("/x", {"method": "POST", "data": {"rea\x01son": "fine"}}),
        ("/x", {"method": "POST", "data": {f"f{n}": "1" for n in range(301)}}),
    ],
)
def test_the_request_guard_refuses_what_no_field_can_show(path: str, kw: dict[str, Any]) -> None:
    app = Flask(__name__)
    with app.test_request_context(path, **kw), pytest.raises(BadRequest):
        guard_request()


def test_the_request_guard_leaves_field_messages_to_the_forms() -> None:
    """A control character other than NUL in a form value is the form's to explain, next to its field."""
    app = Flask(__name__)
    data = {"reason": "Line one\r\nline two \x07 " + "x" * 6_000, "name": "Zoë 😀"}
    for path, kw in (
        ("/admin/practices/Y02001?adapter=demo&q=Zo%C3%AB", {}),
        ("/x", {"method": "POST", "data": data}),
        ("/x", {"method": "POST", "json": {"reason": "\x00"}}),
    ):
        with app.test_request_context(path, **kw):
            guard_request()
