"""Form fields shared by every audience."""

from __future__ import annotations

import datetime as dt
from typing import Any

from wtforms import Field, RadioField, ValidationError


class DateParts(Field):
    """A date typed as day, month and year boxes (NHS.UK date input), with specific error messages."""

    def __init__(self, label: str = "", validators: Any = None, required_message: str = "Enter a date", **kwargs: Any):
        super().__init__(label, validators, **kwargs)
        self.required_message = required_message
        self.data: dt.date | None = None

    def process(self, formdata: Any, data: Any = None, extra_filters: Any = None) -> None:
        self.process_errors = []
        self.raw_data = []
        self.data = data if isinstance(data, dt.date) else None
        if formdata is None:
            return
        parts = [formdata.get(f"{self.name}-{p}", "").strip() for p in ("day", "month", "year")]
        if not any(parts) and f"{self.name}-day" not in formdata:
            return
        self.raw_data = ["-".join(parts)]
        day, month, year = parts
        if not any(parts):
            self.process_errors.append(self.required_message)
            return
        missing = [n for n, v in zip(("day", "month", "year"), parts, strict=True) if not v]
        if missing:
            self.process_errors.append(f"{self.label.text} must include a {' and '.join(missing)}")
            return
        try:
            self.data = dt.date(int(year), int(month), int(day))
        except ValueError:
            self.process_errors.append(f"{self.label.text} must be a real date")
            return
        if self.data.year < 1900:
            self.data = None
            self.process_errors.append("Year must include 4 numbers, like 1984")


class Choice(RadioField):
    """Radio buttons whose 'nothing chosen' error says what to do, not "Not a valid choice"."""

    def __init__(self, label: str = "", validators: Any = None, message: str = "Select an option", **kwargs: Any):
        super().__init__(label, validators, **kwargs)
        self.message = message

    def pre_validate(self, form: Any) -> None:
        if self.data in (None, "", "None") or not any(match for _, _, match, *_ in self.iter_choices()):
            raise ValidationError(self.message)
