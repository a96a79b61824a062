"""The hazard log's evidence is real: every test it names exists, and every hazard names its controls' tests."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOG = ROOT / "docs" / "clinical-safety" / "hazard-log.md"
TEST_REF = re.compile(r"(tests/[\w/]+\.py)::(test_\w+)")
REQUIRED = (
    "Wrong patient linked",
    "withheld or third-party item",
    "proxy sees or does more",
    "repeat prescription request is lost or duplicated",
    "appointment is booked twice or lost",
    "cancelled appointment is still attended",
    "Stale slots",
    "service switch is ignored",
    "Migration mismatch",
    "clinical detail is sent to a shared phone",
)


def _hazards() -> dict[str, str]:
    text = LOG.read_text()
    parts = re.split(r"^## (H-\d+ .+)$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_named_test_exists() -> None:
    missing = []
    for path, name in TEST_REF.findall(LOG.read_text()):
        source = ROOT / path
        if not source.exists() or not re.search(rf"^\s*(async )?def {name}\(", source.read_text(), flags=re.M):
            missing.append(f"{path}::{name}")
    assert missing == [], f"the hazard log names tests that do not exist: {missing}"


def test_each_hazard_has_cause_effect_controls_and_tests() -> None:
    hazards = _hazards()
    assert len(hazards) >= len(REQUIRED)
    for title, body in hazards.items():
        for field in ("**Cause**", "**Effect**", "**Controls**", "**Tests**", "**Residual risk**"):
            assert field in body, f"{title} has no {field}"
        assert TEST_REF.search(body), f"{title} names no test"


def test_the_hazards_the_product_must_answer_for_are_logged() -> None:
    titles = " ".join(_hazards()).lower()
    missing = [h for h in REQUIRED if h.lower() not in titles]
    assert missing == [], f"hazards missing from the log: {missing}"
