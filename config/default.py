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
# Linking attempts on one record (an NHS number, or a letter's Account ID) from one address: people behind a
# shared address each have their own count; one record tried again and again from one address is slowed down.
RATELIMIT_LINKAGE_TARGET = "5 per hour"
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
# Every email and text goes through the durable outbox (`flask outbox run` sends them). GOV.UK Notify: one
# template per message type (e.g. {"confirm_email": "<template id>", "appointment_reminder": "..."}), each given
# the personalisation fields subject and body; a type with no template of its own uses NOTIFY_TEMPLATE_ID.
NOTIFY_TEMPLATES: dict[str, str] = {}
NOTIFY_TEMPLATE_ID = ""
NOTIFY_BASE_URL = ""  # empty: GOV.UK Notify's own address
NOTIFY_TIMEOUT = 10.0
# A web request that queued a security code tries to send it at once, after its transaction has committed
# (the worker sends it otherwise).
MESSAGES_SEND_NOW = True
# Appointment reminders (`flask reminders run`, and the outbox worker): hours before the appointment.
REMINDER_HOURS = (24, 2)
# The address people reach the service at (e.g. "https://online.example-practice.nhs.uk"): messages link to it.
# Empty: messages say "sign in to Patient Online" instead of giving a link.
SERVICE_URL = ""

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
# The pages for finding a time may show the patient's own appointments (left out of the times offered, and counted
# for the maximum) as read this many seconds ago: per process, per patient, forgotten when the gateway books,
# cancels or amends for them (in every process, through Redis); booking always reads them afresh. Needs
# REDIS_URL: without it nothing is kept, as the worker processes could not tell each other of a change. 0 reads
# them for every page.
FINDING_APPOINTMENTS_MEMORY_SECONDS = 30.0
# One time budget per request (and per call made outside a request) for everything it asks of clinical systems:
# timeouts shrink to the time left, retries stop when it is spent, then the patient is told the practice's system
# is slow and nothing was changed. With REDIS_URL set, circuit breakers are shared by every worker and node.
CLINICAL_PAGE_BUDGET_SECONDS = 8.0
# At most this many calls at once to one practice's system per worker process (0: no limit), so that a slow
# practice cannot take every thread: under a third of a worker's threads (config/gunicorn.conf.py, 20).
ADAPTER_MAX_CALLS_PER_PRACTICE = 6
# A call that finds every place taken waits its turn while the practice's calls are quick (a busy practice on a
# healthy link frees a place every fraction of a second). Once one of its calls has run ADAPTER_SLOW_CALL_SECONDS,
# or they have been taking that long, a call that finds no place within ADAPTER_PLACE_WAIT_SECONDS gets "slow or
# unavailable": short, as a request waiting for a place holds a thread too.
ADAPTER_SLOW_CALL_SECONDS = 2.0
ADAPTER_PLACE_WAIT_SECONDS = 0.5

# GP Connect: who this gateway is in every request's token (GP Connect's audit rules forbid default user names).
# Production must set every one of the identity settings (the adapter refuses to be built otherwise); elsewhere an
# empty one gets a development stand-in (never "UNK").
GPCONNECT_CONSUMER_SYSTEM_URL = ""  # the JWT's iss, e.g. https://patient-online.example.nhs.uk
GPCONNECT_ORGANISATION_ODS = ""  # the consumer organisation's ODS code
GPCONNECT_ORGANISATION_NAME = ""
GPCONNECT_PRACTITIONER_ID = ""  # the local id of the user the gateway acts as (the JWT's sub)
GPCONNECT_SDS_USER_ID = ""  # that user's SDS user id
GPCONNECT_SDS_ROLE_PROFILE_ID = ""  # and SDS role profile id
GPCONNECT_PRACTITIONER_FAMILY_NAME = ""
GPCONNECT_PRACTITIONER_GIVEN_NAME = ""
GPCONNECT_DEVICE_SYSTEM = ""  # the requesting device's identifier system and value, model and version
GPCONNECT_DEVICE_ID = ""
GPCONNECT_DEVICE_MODEL = ""
GPCONNECT_DEVICE_VERSION = ""
# This gateway's Spine ASID (12 digits), used when a practice's options do not give one.
GPCONNECT_CONSUMER_ASID = ""
# Through the Spine Secure Proxy: its address; requests then go to <proxy>/<provider base URL>/<path>.
GPCONNECT_SSP_URL = ""
# Mutual TLS: this gateway's client certificate and key (PEM file paths) and the CA bundle to trust.
GPCONNECT_CLIENT_CERT = ""
GPCONNECT_CLIENT_KEY = ""
GPCONNECT_CA_BUNDLE = ""
# Endpoint lookup: {"A12345": {"base_url": "https://...", "asid": "918999198738"}} (JSON in the environment), used
# for a practice whose options leave base_url or provider_asid empty.
GPCONNECT_ENDPOINTS: dict[str, dict[str, str]] = {}

LOG_LEVEL = "INFO"

# Behind a load balancer: how many proxies set X-Forwarded-For / X-Forwarded-Proto in front of the app.
# 0 trusts none (direct connections). Rate limits per client address depend on this being right.
TRUSTED_PROXIES = 0
# Benchmarks: report the SQL statements each request ran in an X-Query-Count header (patient_online/instrumentation.py).
QUERY_COUNT_HEADER = False

# Information governance. Who runs this deployment: the data processor named on the privacy notice (each
# GP practice is the controller of its patients' data).
OPERATOR_NAME = "The organisation running this service for your GP practice"
OPERATOR_CONTACT = "Contact your GP practice, who will pass your question on"
# How long each kind of personal data is kept (``flask retention run``, daily; services/retention.py).
RETENTION = {
    "audit_events_years": 8,  # the audit trail (views and changes of records); sign-in history has its own
    "sign_in_history_years": 2,  # sign-ins, failed sign-ins and sign-outs
    "closed_account_months": 6,  # then a closed account's name, email, phone and sign-in details are removed
    "messages_days": 365,  # messages sent (emails and texts kept by the local notifier)
    "delivered_outbox_days": 30,  # a delivered clinical-system write's payload
    "one_time_codes_days": 7,  # expired or used sign-in and confirmation codes
    "link_requests_days": 365,  # decided requests to link an account to a GP record
    "booking_intents_days": 30,  # booking intents after their check is done
    "gateway_requests_years": 2,  # repeat prescription requests and booking records made here
    "held_values_expired": True,  # short-lived values kept for a page, once expired
    "batch": 1000,  # rows removed per transaction
}
