"""NHS numbers: ten digits, the last a modulus 11 check digit."""

from __future__ import annotations

import re

_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)


def normalise(text: str) -> str:
    """Strip the spaces and hyphens people type inside an NHS number."""
    return re.sub(r"[\s-]", "", text or "")


def check_digit(first_nine: str) -> int | None:
    """The check digit for nine digits, or None when no valid number starts with them."""
    total = sum(int(d) * w for d, w in zip(first_nine, _WEIGHTS, strict=True))
    digit = 11 - total % 11
    if digit == 11:
        return 0
    if digit == 10:
        return None
    return digit


def is_valid(text: str) -> bool:
    """True for a ten-digit number whose check digit is right."""
    number = normalise(text)
    if not re.fullmatch(r"\d{10}", number):
        return False
    return check_digit(number[:9]) == int(number[9])


def formatted(number: str) -> str:
    """Shown as 3-3-4 digits, as the NHS writes it."""
    n = normalise(number)
    return f"{n[:3]} {n[3:6]} {n[6:]}" if len(n) == 10 else n


def masked(number: str) -> str:
    """Only the last three digits, for places where the whole number is not needed."""
    n = normalise(number)
    return "*** *** *" + n[-3:] if len(n) == 10 else "***"
