"""Example production settings. Copy, fill in, and point PATIENT_ONLINE_SETTINGS at the copy.

Secrets are better given as environment variables (PATIENT_ONLINE_SECRET_KEY, ...) than written here.
"""

ENV = "production"
DATABASE_URL = "postgresql+psycopg://patient_online@db.internal:5432/patient_online"
REDIS_URL = "redis://redis.internal:6379/0"
DEMO_DATA_ENABLED = False
SESSION_COOKIE_SECURE = True
PREFERRED_URL_SCHEME = "https"
NOTIFIER = "notify"
# SECRET_KEY, ADAPTER_SECRET_KEY and NOTIFY_API_KEY: set through the environment.
