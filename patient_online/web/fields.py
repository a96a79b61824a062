"""Form fields shared by every audience."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from wtforms import Field, RadioField, ValidationError

DAY_OR_MONTH = re.compile(r"[0-9]{1,2}")
YEAR = re.compile(r"[0-9]{4}")
FIRST_YEAR = 1900
LAST_YEAR = 2199  # far enough for any real date, near enough that date arithmetic never overflows
_ASIDE = re.compile(r"\s*\([^()]*\)\s*$")  # a closing "(optional)" or other aside in a label


def label_name(field: Field) -> str:
    """The field's label as the subject of an error message: "Reason", not "Reason (optional)" or "Reason (the
    patient will see this)"."""
    text = _ASIDE.sub("", str(field.label.text or "")).strip()
    return text or "This field"


class DateParts(Field):
    """A date typed as day, month and year boxes (NHS.UK date input), with specific error messages.

    Every part is checked before it becomes a number, so no typed value, however long or odd, can raise: the
    day and month are 1 or 2 digits, the year 4 digits between ``min_year`` and ``max_year``.
    """

    def __init__(
        self,
        label: str = "",
        validators: Any = None,
        required_message: str = "Enter a date",
        min_year: int = FIRST_YEAR,
        max_year: int = LAST_YEAR,
        **kwargs: Any,
    ):
        super().__init__(label, validators, **kwargs)
        self.required_message = required_message
        self.min_year = min_year
        self.max_year = max_year
        self.data: dt.date | None = None

    def process(self, formdata: Any, data: Any = None, extra_filters: Any = None) -> None:
        self.process_errors = []
        self.raw_data = []
        self.data = data if isinstance(data, dt.date) else None
        if formdata is None:
            return
        parts = [self._part(formdata, p) for p in ("day", "month", "year")]
        if not any(parts) and f"{self.name}-day" not in formdata:
            return
        self.raw_data = ["-".join(parts)]
        self.data = None
        problem = self._problem(parts)
        if problem is not None:
            self.process_errors.append(problem)
            return
        day, month, year = (int(p) for p in parts)
        self.data = dt.date(year, month, day)

    def _part(self, formdata: Any, part: str) -> str:
        value = formdata.get(f"{self.name}-{part}", "")
        return value.strip() if isinstance(value, str) else ""

    def _problem(self, parts: list[str]) -> str | None:
        """The NHS.UK date input message for what was typed, or None when it is a real date in range."""
        if not any(parts):
            return self.required_message
        missing = [n for n, v in zip(("day", "month", "year"), parts, strict=True) if not v]
        if missing:
            return f"{label_name(self)} must include a {' and '.join(missing)}"
        day, month, year = parts
        real = f"{label_name(self)} must be a real date"
        if not (DAY_OR_MONTH.fullmatch(day) and DAY_OR_MONTH.fullmatch(month)):
            return real
        if not YEAR.fullmatch(year):
            return "Year must include 4 numbers"
        if int(year) < self.min_year:
            return f"Year must be {self.min_year} or later"
        if int(year) > self.max_year:
            return f"Year must be {self.max_year} or earlier"
        try:
            dt.date(int(year), int(month), int(day))
        except ValueError:
            return real
        return None


class Choice(RadioField):
    """Radio buttons whose 'nothing chosen' error says what to do, not "Not a valid choice"."""

    def __init__(self, label: str = "", validators: Any = None, message: str = "Select an option", **kwargs: Any):
        super().__init__(label, validators, **kwargs)
        self.message = message

    def pre_validate(self, form: Any) -> None:
        if self.data in (None, "", "None") or not any(match for _, _, match, *_ in self.iter_choices()):
            raise ValidationError(self.message)
