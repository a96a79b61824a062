"""Entry point for `flask --app app ...` and for gunicorn (`gunicorn app:app`)."""

from patient_online import create_app

app = create_app()
