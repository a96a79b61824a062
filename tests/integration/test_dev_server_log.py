"""`make run` serves with Flask's development server: its log must not carry query strings, which hold what
reception typed into a search (NHS numbers, names) or what a patient typed into a page's address."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.conftest import PROJECT_ROOT

NHS_NUMBER, NAME = "9990010145", "Featherstonehaugh"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as refused:
        return refused.code


def test_the_development_server_logs_no_query_strings(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'dev.sqlite3'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATIENT_ONLINE_")}
    env.update({"FLASK_APP": "app", "PATIENT_ONLINE_DATABASE_URL": database, "PYTHONUNBUFFERED": "1"})
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import app; from patient_online.models import Base; from patient_online.extensions "
            "import make_engine; from tests.conftest import PROJECT_ROOT; "
            f"Base.metadata.create_all(make_engine({database!r}, PROJECT_ROOT))",
        ],
        cwd=PROJECT_ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = _free_port()
    log = tmp_path / "server.log"
    with log.open("w") as out:
        # As the Makefile's `run` target starts it (FLASK_APP=app, flask run --host --port).
        server = subprocess.Popen(
            [sys.executable, "-m", "flask", "run", "--host", "127.0.0.1", "--port", str(port)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while _get_or_none(f"{base}/healthz") is None:
                assert time.monotonic() < deadline and server.poll() is None, log.read_text()
                time.sleep(0.2)
            query = f"q={NHS_NUMBER}+{NAME}&born-day=1&born-month=2&born-year=1980"
            assert _get(f"{base}/reception/patients?{query}") in (200, 302)
            assert _get(f"{base}/login?next=/record&{query}") == 200
            time.sleep(0.5)
        finally:
            server.terminate()
            server.wait(timeout=30)
    output = log.read_text()
    assert '"path": "/reception/patients"' in output and '"path": "/login"' in output, output
    assert NHS_NUMBER not in output and NAME not in output, output


def _get_or_none(url: str) -> int | None:
    try:
        return _get(url)
    except OSError:
        return None
