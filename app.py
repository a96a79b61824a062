"""Entry point for `flask --app app ...` and for gunicorn (`gunicorn app:app`).

Unsafe production settings stop the start with one line naming the setting (exit code 3), not a traceback.
"""

from patient_online import create_app
from patient_online.settings import UnsafeSettings, exit_on_unsafe

try:
    app = create_app()
except UnsafeSettings as unsafe:
    exit_on_unsafe(unsafe)
