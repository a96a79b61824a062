"""Password strength: length, and not a known common or breached password (checked offline)."""

from __future__ import annotations

from zxcvbn import zxcvbn

MIN_LENGTH = 10
MAX_LENGTH = 128


def password_problem(password: str, user_inputs: list[str] | None = None) -> str | None:
    """A message saying what is wrong with the password, or None when it is strong enough."""
    if len(password) < MIN_LENGTH:
        return f"Password must be {MIN_LENGTH} characters or more"
    if len(password) > MAX_LENGTH:
        return f"Password must be {MAX_LENGTH} characters or fewer"
    # zxcvbn refuses (raises) past 72 characters; a long passphrase is judged on its first 72.
    result = zxcvbn(password[:72], user_inputs=[u for u in (user_inputs or []) if u])
    if result["score"] < 3:
        return (
            "This password is too easy to guess, or is on a list of common passwords. "
            "Try three random words, like 'purple-kettle-orbit'"
        )
    return None
