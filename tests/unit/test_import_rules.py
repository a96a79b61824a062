"""The architecture's arrows (docs/architecture.md), checked on every import statement in the package.

Allowed: web -> services -> domain; adapters -> domain; services -> models. Never: domain importing Flask,
SQLAlchemy, models, adapters, services or web; services importing Flask, web or auth; web (and auth, the
sign-in blueprints) importing adapters; adapters importing services, web or auth. Imports inside functions
and under ``TYPE_CHECKING`` count as much as any other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "patient_online"

# (the room, what it may never import); rooms and targets are dotted prefixes under patient_online, or
# top-level libraries.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "patient_online.domain": (
        "flask",
        "flask_login",
        "flask_wtf",
        "sqlalchemy",
        "patient_online.models",
        "patient_online.adapters",
        "patient_online.services",
        "patient_online.web",
        "patient_online.auth",
        "patient_online.wiring",
        "patient_online.extensions",
    ),
    "patient_online.services": (
        "flask",
        "flask_login",
        "flask_wtf",
        "patient_online.web",
        "patient_online.auth",
        "patient_online.wiring",
    ),
    "patient_online.web": ("patient_online.adapters",),
    "patient_online.auth": ("patient_online.adapters",),
    "patient_online.adapters": (
        "patient_online.web",
        "patient_online.auth",
        "patient_online.services",
        "patient_online.wiring",
    ),
    "patient_online.models": ("patient_online.web", "patient_online.auth", "patient_online.services"),
}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    """Every module the file imports, made absolute, with its line."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            # "from patient_online import web" imports a module named by the alias
            found.extend((node.lineno, f"{target}.{alias.name}") for alias in node.names)
    return found


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(root: Path = PACKAGE) -> list[str]:
    """Each forbidden import as "file:line: room imports target"."""
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        module = _module_name(path, root)
        for room, targets in FORBIDDEN.items():
            if not _within(module, room):
                continue
            for line, target in _imports(path, module):
                for banned in targets:
                    if _within(target, banned):
                        found.append(f"{path.relative_to(root.parent)}:{line}: {room} imports {target}")
    return sorted(set(found))


def test_no_room_imports_what_its_arrows_forbid() -> None:
    assert violations() == []


def test_nothing_imports_the_web_layer_but_the_web_layer_and_the_app_factory() -> None:
    allowed = ("patient_online.web", "patient_online.auth")
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path, PACKAGE)
        if module == "patient_online" or any(_within(module, room) for room in allowed):
            continue
        offenders += [
            f"{module}:{line} imports {target}"
            for line, target in _imports(path, module)
            if _within(target, "patient_online.web")
        ]
    assert offenders == []


@pytest.mark.parametrize(
    ("room", "source", "expected"),
    [
        ("domain", "import flask\n", "patient_online.domain imports flask"),
        ("domain", "from sqlalchemy.orm import Session\n", "patient_online.domain imports sqlalchemy.orm"),
        ("domain", "from ..models import User\n", "patient_online.domain imports patient_online.models"),
        ("services", "from flask import current_app\n", "patient_online.services imports flask"),
        ("services", "def f():\n    from patient_online.web import bp\n", "imports patient_online.web"),
        ("web", "from patient_online.adapters import registry\n", "patient_online.web imports patient_online.adapters"),
        ("adapters", "from patient_online import web\n", "patient_online.adapters imports patient_online.web"),
    ],
)
def test_the_check_catches_a_forbidden_import(tmp_path: Path, room: str, source: str, expected: str) -> None:
    """The rule is not vacuous: a copy of the package with one forbidden import added fails it."""
    package = tmp_path / "patient_online"
    for path in PACKAGE.rglob("*.py"):
        target = package / path.relative_to(PACKAGE)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    (package / room / "added_for_the_check.py").write_text(source)
    found = violations(package)
    assert any(expected in v and "added_for_the_check.py" in v for v in found), found
