"""Small word helpers for what staff and patients read."""

from __future__ import annotations


def plural(count: int, word: str, words: str | None = None) -> str:
    """A count with its noun agreeing: 1 patient, 2 patients, 0 patients ("entry", "entries" for the odd ones)."""
    return f"{count} {word if count == 1 else (words or word + 's')}"
