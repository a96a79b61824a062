"""Safe defaults for a developer's machine. Override any of them with PATIENT_ONLINE_<NAME>.

Production: copy config/production.example.py, point PATIENT_ONLINE_SETTINGS at it, and set
PATIENT_ONLINE_ENV=production; the app then refuses to start with any unsafe setting.
"""

ENV = "development"
# The default key only works outside production; production refuses it.
SECRET_KEY = "dev-only-not-secret"  # noqa: S105 (refused in production)
DATABASE_URL = "sqlite:///instance/patient_online.sqlite3"
REDIS_URL = ""
DEMO_DATA_ENABLED = True

SESSION_COOKIE_SECURE = False
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_NAME = "po_session"
REMEMBER_COOKIE_DURATION = 0
SESSION_IDLE_MINUTES = 20
SESSION_ABSOLUTE_HOURS = 12
PREFERRED_URL_SCHEME = "http"

WTF_CSRF_ENABLED = True
WTF_CSRF_TIME_LIMIT = 3600

# Rate limits (Flask-Limiter notation). Storage is memory unless REDIS_URL is set.
RATELIMIT_ENABLED = True
RATELIMIT_SIGN_IN = "10 per 15 minutes"
RATELIMIT_CODE = "10 per 15 minutes"
RATELIMIT_LINKAGE = "5 per hour"
RATELIMIT_REGISTER = "20 per hour"

# Notifier: "outbox" keeps messages in the local table the demo shows; "notify" uses GOV.UK Notify.
NOTIFIER = "outbox"
NOTIFY_API_KEY = ""

# NHS login (OpenID Connect). Empty issuer switches the "Continue with NHS login" button off.
NHS_LOGIN_ISSUER = ""
NHS_LOGIN_CLIENT_ID = ""
NHS_LOGIN_PRIVATE_KEY_PATH = ""
NHS_LOGIN_VTR = '["P9.Cp.Cd", "P9.Cp.Ck", "P9.Cm", "P5.Cp.Cd", "P5.Cp.Ck", "P5.Cm"]'
NHS_LOGIN_SCOPES = "openid profile email phone gp_registration_details"

# Key for encrypting adapter secrets (Fernet). Empty derives one from SECRET_KEY outside production.
ADAPTER_SECRET_KEY = ""

# Clinical-system links.
ADAPTER_CONNECT_TIMEOUT = 2.0
ADAPTER_READ_TIMEOUT = 5.0
# A practice's link opens its circuit after this many failures in a row, and is probed again after the cool-down.
ADAPTER_BREAKER_FAILURES = 5
ADAPTER_BREAKER_COOL_DOWN = 30.0
# The slots page may show a practice's free slots as they were this many seconds ago (per process; booking
# always checks the slot again). 0 searches the clinical system for every page.
SLOT_SEARCH_CACHE_SECONDS = 10.0

LOG_LEVEL = "INFO"

# Behind a load balancer: how many proxies set X-Forwarded-For / X-Forwarded-Proto in front of the app.
# 0 trusts none (direct connections). Rate limits per client address depend on this being right.
TRUSTED_PROXIES = 0
# Benchmarks: report the SQL statements each request ran in an X-Query-Count header (patient_online/instrumentation.py).
QUERY_COUNT_HEADER = False
