"""Practice manager pages: rules."""

from __future__ import annotations

from . import bp  # noqa: F401
