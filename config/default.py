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
# Signed-in pages warn this many seconds before the idle limit, with "Stay signed in" (WCAG 2.2.1).
SESSION_WARNING_SECONDS = 120
SESSION_ABSOLUTE_HOURS = 12
PREFERRED_URL_SCHEME = "http"

WTF_CSRF_ENABLED = True
WTF_CSRF_TIME_LIMIT = 3600

# Rate limits (Flask-Limiter notation). Storage is memory unless REDIS_URL is set.
RATELIMIT_ENABLED = True
RATELIMIT_SIGN_IN = "10 per 15 minutes"
RATELIMIT_CODE = "10 per 15 minutes"
# Linking attempts (a wrong linkage letter, a request sent): per account, and per address with a higher
# ceiling, higher still from TRUSTED_NETWORKS (a front desk or care home: many people behind one address).
RATELIMIT_LINKAGE = "5 per hour"
RATELIMIT_LINKAGE_ADDRESS = "30 per hour"
RATELIMIT_LINKAGE_ADDRESS_TRUSTED = "500 per hour"
RATELIMIT_REGISTER = "20 per hour"
# Failed sign-ins on one account from one address: the wait grows with each failure (for that address only).
RATELIMIT_SIGN_IN_ACCOUNT = "3 per minute; 6 per 10 minutes; 10 per hour"
# After this many failures on one account from anywhere, the account is guarded instead of locked: only the right
# password with the right security code signs in, and the password step no longer says whether it was right.
SIGN_IN_GUARD_AFTER = "10 per 15 minutes"
# Shared addresses with many people behind them (a practice's front desk, a care home), as comma-separated CIDRs,
# e.g. "203.0.113.0/28, 2001:db8::/64"; they get the higher per-address limits below.
TRUSTED_NETWORKS = ""
RATELIMIT_SIGN_IN_TRUSTED = "200 per 15 minutes"
RATELIMIT_CODE_TRUSTED = "200 per 15 minutes"

# Notifier: "outbox" keeps messages in the local table the demo shows; "notify" uses GOV.UK Notify.
NOTIFIER = "outbox"
NOTIFY_API_KEY = ""

# NHS login (OpenID Connect). Empty issuer switches the "Continue with NHS login" button off.
NHS_LOGIN_ISSUER = ""
NHS_LOGIN_CLIENT_ID = ""
NHS_LOGIN_PRIVATE_KEY_PATH = ""
NHS_LOGIN_VTR = '["P9.Cp.Cd", "P9.Cp.Ck", "P9.Cm", "P5.Cp.Cd", "P5.Cp.Ck", "P5.Cm"]'
NHS_LOGIN_SCOPES = "openid profile profile_extended email phone gp_registration_details"

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
