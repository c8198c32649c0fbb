"""Settings for Breakglass, read from the environment (see README "Configuration").

Embedded defaults run on a laptop with nothing installed: SQLite in ./data and
Celery over kombu's filesystem transport. `DATABASE_URL` switches to PostgreSQL,
`REDIS_URL` / `CELERY_BROKER_URL` to Redis. `BREAKGLASS_ENV=production` refuses to
start without real secrets and turns on every transport-security setting.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured
from django.utils.log import DEFAULT_LOGGING

from breakglass.accounts.roles import ALL_ROLES
from breakglass.project.env import (
    database_from_url,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_rate,
    env_str,
    kek_problem,
    sqlite_database,
)
from breakglass.project.files import private_dir_make

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DATA_DIR = Path(env_str("BREAKGLASS_DATA_DIR") or BASE_DIR / "data")
if DATA_DIR.exists():
    private_dir_make(DATA_DIR)  # close a folder an older release left open (0700)

BREAKGLASS_ENV = (env_str("BREAKGLASS_ENV", "development") or "development").lower()
if BREAKGLASS_ENV not in ("development", "production", "test"):
    raise ImproperlyConfigured(
        f"BREAKGLASS_ENV: expected development, production or test, got {BREAKGLASS_ENV!r}"
    )
PRODUCTION = BREAKGLASS_ENV == "production"
DEBUG = env_bool("DEBUG", default=False)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG: must be off when BREAKGLASS_ENV=production")


def _local_secret(name: str, nbytes: int) -> str:
    """A per-checkout random secret kept in DATA_DIR, so development needs no setup
    and nothing secret is ever committed. Production must provide its own."""
    path = DATA_DIR / f".{name}"
    if path.exists():
        return path.read_text().strip()
    private_dir_make(DATA_DIR)
    value = secrets.token_urlsafe(nbytes)
    # Written in full under a private name, then linked into place: of several processes
    # starting at once on a fresh folder, one secret wins and every process reads it.
    temporary = DATA_DIR / f".{name}.{os.getpid()}.{secrets.token_hex(4)}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    try:
        os.link(temporary, path)
    except FileExistsError:
        value = path.read_text().strip()
    finally:
        os.unlink(temporary)
    return value


SECRET_KEY = env_str("SECRET_KEY")
# Key-encryption key for issuer, root and SSH CA private keys at rest (32 bytes, urlsafe base64).
BREAKGLASS_KEK = env_str("BREAKGLASS_KEK")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS")

if PRODUCTION:
    missing = [
        name
        for name, value in (
            ("SECRET_KEY", SECRET_KEY),
            ("BREAKGLASS_KEK", BREAKGLASS_KEK),
            ("ALLOWED_HOSTS", ALLOWED_HOSTS),
        )
        if not value
    ]
    if missing:
        raise ImproperlyConfigured(
            "BREAKGLASS_ENV=production needs " + ", ".join(missing) + " (or their *_FILE variants)"
        )
    if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5:
        raise ImproperlyConfigured("SECRET_KEY: must be at least 50 random characters")
    _kek_problem = kek_problem(BREAKGLASS_KEK)
    if _kek_problem:
        raise ImproperlyConfigured(f"BREAKGLASS_KEK: {_kek_problem}")
else:
    SECRET_KEY = SECRET_KEY or _local_secret("secret_key", 48)
    BREAKGLASS_KEK = BREAKGLASS_KEK or _local_secret("kek", 32)
    ALLOWED_HOSTS = ALLOWED_HOSTS or ["localhost", "127.0.0.1", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "django_otp_webauthn",
    "django_celery_beat",
    "breakglass.accounts",
    "breakglass.audit",
    "breakglass.outbox",
    "breakglass.keys",
    "breakglass.access",
    "drills",
    "comms",
]

MIDDLEWARE = [
    # Outermost: whatever goes wrong below, /api/ answers JSON.
    "breakglass.access.api.ApiJsonErrorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Before WhiteNoise, so static files (SVG can carry script) get the policy too.
    "breakglass.accounts.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # Who is acting, for audit events of writes outside the services (admin, hooks).
    "breakglass.accounts.audit_hooks.AuditActorMiddleware",
    "breakglass.accounts.middleware.RequireVerifiedSessionMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so it sees a view's exception first: a refusal becomes its error page.
    "breakglass.project.errors.DomainErrorMiddleware",
]

ROOT_URLCONF = "breakglass.project.urls"
WSGI_APPLICATION = "breakglass.project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "breakglass.accounts.context_processors.console",
            ],
        },
    },
]

_database_url = env_str("DATABASE_URL")
if _database_url:
    DATABASES = {"default": database_from_url("DATABASE_URL", _database_url)}
else:
    private_dir_make(DATA_DIR)
    DATABASES = {"default": sqlite_database(str(DATA_DIR / "breakglass.sqlite3"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "console:home"
LOGOUT_REDIRECT_URL = "accounts:login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# --- Security -----------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 12 * 3600)
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # The __Host- prefix makes browsers refuse these cookies unless they are Secure,
    # host-only and path=/, so a sibling subdomain cannot plant or overwrite them.
    SESSION_COOKIE_NAME = "__Host-breakglass-session"
    CSRF_COOKIE_NAME = "__Host-breakglass-csrf"
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=True)
    if env_bool("BEHIND_TLS_PROXY", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Content-Security-Policy: everything from this origin, nothing inline, nothing remote.
# The console must work when a CDN is down, so there is nothing to allow from one.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)

# --- OTP ---------------------------------------------------------------------------
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "Breakglass")
# The admin never shows TOTP keys, their QR codes or backup codes: an administrator's own
# OTP must not be enough to become someone else.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
# django-otp back-off: after n consecutive wrong codes a device refuses every code (even
# a correct one) for factor * 2**(n-1) seconds.
OTP_TOTP_THROTTLE_FACTOR = env_int("OTP_TOTP_THROTTLE_FACTOR", 1, minimum=1)
OTP_STATIC_THROTTLE_FACTOR = env_int("OTP_STATIC_THROTTLE_FACTOR", 1, minimum=1)
# Failed password logins, per username (accounts.models.LoginThrottle): the first few are
# free (typos), then each failure doubles the wait, capped so an attacker cannot lock a
# responder out for long during an incident.
BREAKGLASS_LOGIN_FREE_FAILURES = env_int("BREAKGLASS_LOGIN_FREE_FAILURES", 3, minimum=0)
BREAKGLASS_LOGIN_BACKOFF_SECONDS = env_int("BREAKGLASS_LOGIN_BACKOFF_SECONDS", 2, minimum=1)
BREAKGLASS_LOGIN_BACKOFF_MAX_SECONDS = env_int(
    "BREAKGLASS_LOGIN_BACKOFF_MAX_SECONDS", 300, minimum=1
)
# How long a fresh OTP counts for "sudo" (re-authentication for the most sensitive actions).
BREAKGLASS_SUDO_SECONDS = env_int("BREAKGLASS_SUDO_SECONDS", 300)
# Rate limits, COUNT/SECONDS per client address (accounts/ratelimit.py; on the database so
# every web worker shares them). Generous on purpose: a whole on-call team behind one NAT
# logs in during an incident, and per-username and per-device back-off apply besides.
BREAKGLASS_RATELIMIT_LOGIN = env_rate("BREAKGLASS_RATELIMIT_LOGIN", "60/300")
BREAKGLASS_RATELIMIT_OTP = env_rate("BREAKGLASS_RATELIMIT_OTP", "60/300")
# Behind a reverse proxy: the header it appends the client address to (e.g.
# X-Forwarded-For; its last entry is used). Empty: REMOTE_ADDR.
BREAKGLASS_CLIENT_IP_HEADER = env_str("BREAKGLASS_CLIENT_IP_HEADER", "") or ""

# --- Celery ------------------------------------------------------------------------
_broker_dir = DATA_DIR / "broker"
# "localhost": the filesystem transport ignores the host, but kombu warns at every start
# when the URL names none.
CELERY_BROKER_URL = (
    env_str("CELERY_BROKER_URL") or env_str("REDIS_URL") or "filesystem://localhost/"
)
if CELERY_BROKER_URL.startswith("filesystem://"):
    for _sub in ("queue", "processed", "control"):
        private_dir_make(_broker_dir / _sub)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        # Broadcast/control messages (worker pings, revokes); kombu defaults to ./control.
        "control_folder": str(_broker_dir / "control"),
    }
else:
    # Fail fast when the broker is down: the action has committed already, its outbox
    # rows are safe, and the sweep delivers them later. A request must not hang on Redis.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
        # Publishing does not retry the connection (1 retry costs a 2 s sleep per send);
        # workers reconnect on their own (broker_connection_retry).
        "max_retries": 0,
        # An unacknowledged task (its worker died) goes back to the queue after this long.
        # Stated, not kombu's one-hour default; recovery does not wait for it: the outbox
        # sweep and the drill reaper re-send from the database within about 30 s.
        "visibility_timeout": env_int("BREAKGLASS_BROKER_VISIBILITY_TIMEOUT", 900, minimum=60),
    }
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Workers reconnect to the broker forever (kombu's back-off: 2 s, +2 s per try, capped at
# 30 s). Celery's default of 100 tries made them exit for good after ~46 minutes.
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or None
CELERY_TASK_IGNORE_RESULT = CELERY_RESULT_BACKEND is None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_PUBLISH_RETRY = False
CELERY_TASK_SOFT_TIME_LIMIT = 60
CELERY_TASK_TIME_LIMIT = 90
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# Celery's Django fix-up closes the database connection around every task unless this is
# set (then once per 2 x this many tasks): connections are kept and checked before each
# task the way Django checks them per request instead (breakglass/project/celery.py).
CELERY_DB_REUSE_MAX = 1_000_000

# --- E-mail ------------------------------------------------------------------------
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "breakglass@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_HOST = env_str("EMAIL_HOST")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=EMAIL_PORT == 587)
    EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
else:
    # Embedded default: mail lands as files under data/mail so the demo shows it.
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = DATA_DIR / "mail"

# --- Breakglass ------------------------------------------------------------------------
# Public base URL, used in e-mails and links (the status page, drill instructions).
# `scripts/run` records the URL it serves on in DATA_DIR/base-url, so management commands
# typed in another shell afterwards link to the same console without being told.
_RECORDED_BASE_URL = DATA_DIR / "base-url"


def _recorded_base_url() -> str | None:
    try:
        return _RECORDED_BASE_URL.read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


BREAKGLASS_BASE_URL = (
    env_str("BREAKGLASS_BASE_URL") or _recorded_base_url() or "http://127.0.0.1:8000"
).rstrip("/")
# Only the first value matters: `init_keys` stores it with the keys and every process
# signs with the stored issuer from then on (`manage.py set_issuer` changes it).
BREAKGLASS_ISSUER = env_str("BREAKGLASS_ISSUER", BREAKGLASS_BASE_URL)

# --- Passkeys (WebAuthn through django-otp-webauthn) ------------------------------------
# The relying party is the console's host name: BREAKGLASS_BASE_URL's, with a loopback IP
# read as "localhost" (an IP address cannot be a WebAuthn RP ID; open the demo at
# http://localhost:8000/ to use passkeys). Credentials are bound to this ID for good.
_base_url = urlsplit(BREAKGLASS_BASE_URL)
_rp_host = _base_url.hostname or "localhost"
if _rp_host in ("127.0.0.1", "::1"):
    _rp_host = "localhost"
OTP_WEBAUTHN_RP_ID = env_str("BREAKGLASS_WEBAUTHN_RP_ID") or _rp_host
OTP_WEBAUTHN_RP_NAME = env_str("BREAKGLASS_WEBAUTHN_RP_NAME", "Breakglass")
# Origins the browser may run the ceremony on (scheme://host[:port]); anything else is refused.
OTP_WEBAUTHN_ALLOWED_ORIGINS = env_list("BREAKGLASS_WEBAUTHN_ORIGINS") or [
    f"{_base_url.scheme}://{_rp_host}" + (f":{_base_url.port}" if _base_url.port else "")
]
# A passkey is a second factor here, after the password: never a login on its own.
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False
# The library would log every refused ceremony with a traceback; accounts.passkeys logs one
# line with the reason instead.
OTP_WEBAUTHN_EXCEPTION_LOGGER_NAME = ""
# Roles whose members must use a passkey (phishing-resistant) for the fresh-code step, and
# for logging in once they have one: e.g. "approver,administrator". Empty: nobody must.
BREAKGLASS_PASSKEY_REQUIRED_ROLES = env_list("BREAKGLASS_PASSKEY_REQUIRED_ROLES")
_unknown_roles = set(BREAKGLASS_PASSKEY_REQUIRED_ROLES) - set(ALL_ROLES)
if _unknown_roles:
    raise ImproperlyConfigured(
        "BREAKGLASS_PASSKEY_REQUIRED_ROLES: unknown role(s) "
        + ", ".join(sorted(_unknown_roles))
        + "; expected some of "
        + ", ".join(ALL_ROLES)
    )

# Addresses told about every emergency self-issue, besides the path's approvers.
BREAKGLASS_SECURITY_CONTACTS = env_list("BREAKGLASS_SECURITY_CONTACTS", ["security@localhost"])
# API tokens (docs/access.md): every token expires; one with the `credential` scope (the
# only kind the API returns credentials to) is created after a fresh OTP and lives hours.
BREAKGLASS_API_TOKEN_DAYS = env_int("BREAKGLASS_API_TOKEN_DAYS", 90, minimum=1)
BREAKGLASS_API_TOKEN_MAX_DAYS = env_int("BREAKGLASS_API_TOKEN_MAX_DAYS", 365, minimum=1)
BREAKGLASS_API_TOKEN_CREDENTIAL_HOURS = env_int(
    "BREAKGLASS_API_TOKEN_CREDENTIAL_HOURS", 24, minimum=1
)
# Printed on every path's card under "When Breakglass is down": where responders find the
# offline runbook (docs/operations.md, "When Breakglass is down", hosted somewhere that does
# not depend on Breakglass). Empty: the card names the document and section instead.
BREAKGLASS_OFFLINE_RUNBOOK_URL = env_str("BREAKGLASS_OFFLINE_RUNBOOK_URL") or ""
STATUS_SITE_DIR = Path(env_str("STATUS_SITE_DIR") or DATA_DIR / "status-site")
# Where the audit chain's head is recorded every few minutes, outside the database, so
# verify_audit can tell when events were cut off the end (docs/audit.md).
BREAKGLASS_AUDIT_CHECKPOINT_FILE = Path(
    env_str("BREAKGLASS_AUDIT_CHECKPOINT_FILE") or DATA_DIR / "audit-checkpoints.jsonl"
)

# --- Comms (docs/comms.md) -------------------------------------------------------------
COMMS_STATUS_PAGE_NAME = env_str("COMMS_STATUS_PAGE_NAME", "Breakglass status")
# Minutes between external updates, by severity (the cadence hangs off the severity).
COMMS_CADENCE_MINUTES = {
    1: env_int("COMMS_CADENCE_SEV1_MINUTES", 30, minimum=1),
    2: env_int("COMMS_CADENCE_SEV2_MINUTES", 60, minimum=1),
    3: env_int("COMMS_CADENCE_SEV3_MINUTES", 240, minimum=1),
    4: env_int("COMMS_CADENCE_SEV4_MINUTES", 1440, minimum=1),
}
COMMS_WEBHOOK_TIMEOUT_SECONDS = env_int("COMMS_WEBHOOK_TIMEOUT_SECONDS", 5, minimum=1)
COMMS_WEBHOOK_DISABLE_AFTER = env_int("COMMS_WEBHOOK_DISABLE_AFTER", 10, minimum=1)
# Webhooks go to public addresses only (comms/egress.py); comma-separated CIDRs and exact
# host names here admit internal receivers on purpose, e.g. "10.20.0.0/16,chat.internal".
COMMS_WEBHOOK_ALLOW = env_list("COMMS_WEBHOOK_ALLOW", [])
# The public subscribe and confirm links, COUNT/SECONDS per client and per target (the
# address typed in, or the link followed): no flood of confirmation mail to strangers.
COMMS_RATELIMIT_SUBSCRIBE_CLIENT = env_rate("COMMS_RATELIMIT_SUBSCRIBE_CLIENT", "10/3600")
COMMS_RATELIMIT_SUBSCRIBE_ADDRESS = env_rate("COMMS_RATELIMIT_SUBSCRIBE_ADDRESS", "3/3600")
COMMS_RATELIMIT_CONFIRM_CLIENT = env_rate("COMMS_RATELIMIT_CONFIRM_CLIENT", "30/3600")
COMMS_RATELIMIT_CONFIRM_LINK = env_rate("COMMS_RATELIMIT_CONFIRM_LINK", "10/3600")

# --- Drills (docs/drills.md) ------------------------------------------------------------
# Off: drill notify-on-use messages fail permanently instead of landing in the sink.
DRILLS_SINK_ENABLED = env_bool("DRILLS_SINK_ENABLED", default=True)
# A worker silent this long loses its run to another. A live worker renews it at every
# step and from a heartbeat every quarter lease, so it can be short (drills/engine.py).
DRILLS_LEASE_SECONDS = env_int("DRILLS_LEASE_SECONDS", 20, minimum=1)
DRILLS_BUNDLE_MARGIN_HOURS = env_int("DRILLS_BUNDLE_MARGIN_HOURS", 2, minimum=0)
DRILLS_KEY_MARGIN_DAYS = env_int("DRILLS_KEY_MARGIN_DAYS", 14, minimum=0)
# A drill grant's notify-on-use message is left this long to the run's own notify step,
# which delivers it inline through the outbox code; after that (the run died) the outbox
# workers deliver it like any other row.
DRILLS_NOTIFY_HOLD_SECONDS = env_int("DRILLS_NOTIFY_HOLD_SECONDS", 60, minimum=0)
# HTTP drill probes (BackupPath.probe_url): one request's timeout, and how long after the
# re-seal the target may keep accepting the revoked drill token (it must sync the bundle
# within this; keep it well under the run task's 120 s soft time limit).
DRILLS_PROBE_TIMEOUT_SECONDS = env_int("DRILLS_PROBE_TIMEOUT_SECONDS", 5, minimum=1)
DRILLS_PROBE_PROPAGATION_SECONDS = env_int("DRILLS_PROBE_PROPAGATION_SECONDS", 60, minimum=0)
# Demo only (set by scripts/run): the drill probe target seed_demo gives dns-emergency-token.
DRILLS_DEMO_PROBE_URL = env_str("DRILLS_DEMO_PROBE_URL") or ""
# Drill credentials are real credentials issued without approval: they live this long at
# most, and every one a run issued is revoked when the run ends (docs/drills.md). An
# automated run without a probe step holds its credential for seconds: it gets one minute
# (drills.steps.drill_credential_minutes), so its revocation soon leaves the bundle.
DRILLS_CREDENTIAL_MINUTES = env_int("DRILLS_CREDENTIAL_MINUTES", 5, minimum=1)
# Game-day runs per task: a batch's runs share one published bundle for their re-seals
# (drills.engine.drill_runs_execute). A game day keeps about concurrency / batch tasks in
# flight, so with many workers, raise its concurrency or lower this.
DRILLS_GAMEDAY_BATCH = env_int("DRILLS_GAMEDAY_BATCH", 4, minimum=1)
# A human drill nobody finishes is abandoned by the reaper this long after its start time.
DRILLS_HUMAN_RUN_ABANDON_HOURS = env_int("DRILLS_HUMAN_RUN_ABANDON_HOURS", 24, minimum=1)
# SSH drill probes (BackupPath.probe_ssh_*): one login attempt's connect timeout, and how
# long after the re-seal the host may keep accepting the revoked drill certificate (it
# must run `breakglass sync` within this; keep it under the run task's soft time limit).
DRILLS_SSH_PROBE_TIMEOUT_SECONDS = env_int("DRILLS_SSH_PROBE_TIMEOUT_SECONDS", 5, minimum=1)
DRILLS_SSH_PROBE_PROPAGATION_SECONDS = env_int(
    "DRILLS_SSH_PROBE_PROPAGATION_SECONDS", 60, minimum=0
)

LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "django.server": DEFAULT_LOGGING["formatters"]["django.server"],
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "django.server": DEFAULT_LOGGING["handlers"]["django.server"],
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # runserver's request lines, as Django logs them but at LOG_LEVEL: scripts/run's
        # quiet default (WARNING) keeps only the 4xx and 5xx ones.
        "django.server": {**DEFAULT_LOGGING["loggers"]["django.server"], "level": LOG_LEVEL},
    },
}

# Serve app static files straight from the apps in development (no collectstatic step).
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = not PRODUCTION

# --- Alerts in (comms.alerts) ------------------------------------------------------------
# Alertmanager presents this as a bearer token (or in the URL path). Unset: intake refused.
BREAKGLASS_ALERTMANAGER_TOKEN = env_str("BREAKGLASS_ALERTMANAGER_TOKEN") or ""
# PagerDuty v3 webhook signing secrets, comma-separated (two during a rotation). Unset: refused.
BREAKGLASS_PAGERDUTY_WEBHOOK_SECRETS = env_list("BREAKGLASS_PAGERDUTY_WEBHOOK_SECRETS")
# "name-in-alert=service-slug,..." for alerts whose service label or PagerDuty service (id or
# name) is not already a critical service's slug or name.
BREAKGLASS_ALERT_SERVICE_MAP = env_list("BREAKGLASS_ALERT_SERVICE_MAP")
# Severity when an alert names none we know (1-4).
BREAKGLASS_ALERT_DEFAULT_SEVERITY = env_int("BREAKGLASS_ALERT_DEFAULT_SEVERITY", 3, minimum=1)
if BREAKGLASS_ALERT_DEFAULT_SEVERITY > 4:
    raise ImproperlyConfigured("BREAKGLASS_ALERT_DEFAULT_SEVERITY: expected 1 to 4")
# Usernames asked to take the communications lead role when an alert opens a SEV1/SEV2;
# empty: every active communications lead is asked.
BREAKGLASS_COMMS_ON_DUTY = env_list("BREAKGLASS_COMMS_ON_DUTY")

# --- Metrics ---------------------------------------------------------------------------
# Bearer token Prometheus presents to /metrics. Unset: /metrics refuses every request (use
# `manage.py serve_metrics --bind ADDR:PORT` on a monitoring-only address instead).
BREAKGLASS_METRICS_TOKEN = env_str("BREAKGLASS_METRICS_TOKEN") or ""
if PRODUCTION and BREAKGLASS_METRICS_TOKEN and len(BREAKGLASS_METRICS_TOKEN) < 32:
    raise ImproperlyConfigured("BREAKGLASS_METRICS_TOKEN: must be at least 32 characters")

# --- Trust bundle -----------------------------------------------------------------------
# Where the currently published bundle and roots are written (bundle.json, roots.json) for
# distribution to services; drills verify against this file, not the database.
TRUST_PUBLISH_DIR = Path(env_str("TRUST_PUBLISH_DIR") or DATA_DIR / "trust")
BREAKGLASS_BUNDLE_LIFETIME_HOURS = env_int("BREAKGLASS_BUNDLE_LIFETIME_HOURS", 24)
BREAKGLASS_BUNDLE_REFRESH_MARGIN_HOURS = env_int("BREAKGLASS_BUNDLE_REFRESH_MARGIN_HOURS", 8)
BREAKGLASS_MAX_TOKEN_LIFETIME_MINUTES = env_int("BREAKGLASS_MAX_TOKEN_LIFETIME_MINUTES", 24 * 60)
BREAKGLASS_ROOT_THRESHOLD = env_int("BREAKGLASS_ROOT_THRESHOLD", 2)

# --- Policy guards ----------------------------------------------------------------------
# A path that reaches another path's service and scope with fewer approvals (or by
# self-issue) makes the stronger one's approvals pointless. "warn" flags it in check_paths
# and the registry; "error" also refuses a policy change that creates one.
BREAKGLASS_WEAKER_SIBLING = env_choice("BREAKGLASS_WEAKER_SIBLING", "warn", ("warn", "error"))
# --- Reliability ------------------------------------------------------------------------
# A transaction that fails for a transient reason (deadlock victim, serialization failure,
# connection lost before COMMIT) is run again up to this many times in all before the
# person sees an error (breakglass.project.transient).
BREAKGLASS_TRANSIENT_ATTEMPTS = env_int("BREAKGLASS_TRANSIENT_ATTEMPTS", 4, minimum=1)
# How long a web request (or any action) may wait on the broker when it queues its
# outbox rows after commit: one attempt per transaction, then the sweep takes over.
BREAKGLASS_BROKER_PUBLISH_TIMEOUT_MS = env_int(
    "BREAKGLASS_BROKER_PUBLISH_TIMEOUT_MS", 250, minimum=10
)
