"""Settings the test suite starts from."""

ENV = "test"
SECRET_KEY = "test-only-not-secret"  # noqa: S105
DEMO_DATA_ENABLED = True
RATELIMIT_ENABLED = True
