"""Warden's one settings module. Every knob is an environment variable (see README.md)."""

from __future__ import annotations

import base64
import hashlib
import sys
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_secret, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("WARDEN_DATA_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)


def _required_secret(name: str, dev_value: str) -> str:
    """Secrets have no silent production default: with DEBUG off a missing one stops start-up."""
    value = env_secret(name)
    if value:
        return value
    if DEBUG:
        return dev_value
    raise ImproperlyConfigured(
        f"{name} is not set. Set it (or {name}_FILE) to a long random value, "
        f"or set DEBUG=1 for a development run with insecure built-in keys."
    )


def _dev_fernet_key(label: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(label.encode()).digest()).decode()


SECRET_KEY = _required_secret("SECRET_KEY", "insecure-dev-only-secret-key-do-not-use-in-production")
# Keys the fingerprints of never-persist values, and verifies the HMAC chain of events written
# before the Merkle log (0009). Separate from SECRET_KEY so that rotating one never breaks the other.
WARDEN_AUDIT_KEY = _required_secret("WARDEN_AUDIT_KEY", "insecure-dev-only-audit-key")

# The audit log (audit/, docs/decisions/0009). Checkpoints are C2SP signed notes; only the
# audit_sequencer process needs the Ed25519 private key, everything else the public key.
WARDEN_CHECKPOINT_ORIGIN = env_str("WARDEN_CHECKPOINT_ORIGIN", "warden.local/audit")
WARDEN_CHECKPOINT_KEY = env_secret("WARDEN_CHECKPOINT_KEY") or (
    base64.b64encode(hashlib.sha256(b"warden-dev-checkpoint-key").digest()).decode() if DEBUG else ""
)


def _checkpoint_public_key(private: str) -> str:
    """The public half of a private key given in settings, so one process may be given only that."""
    if not private:
        return ""
    from audit.notes import load_private_key, raw_public

    return base64.b64encode(raw_public(load_private_key(private).public_key())).decode()


WARDEN_CHECKPOINT_PUBLIC_KEY = env_str("WARDEN_CHECKPOINT_PUBLIC_KEY") or _checkpoint_public_key(WARDEN_CHECKPOINT_KEY)
if not WARDEN_CHECKPOINT_PUBLIC_KEY:
    raise ImproperlyConfigured(
        "WARDEN_CHECKPOINT_PUBLIC_KEY is not set. Set it to the public key of the audit sequencer's "
        "WARDEN_CHECKPOINT_KEY (manage.py audit_sequencer --public-key prints it), or set DEBUG=1."
    )
# Checkpoints are also written here, outside the database, and POSTed to these witnesses.
WARDEN_CHECKPOINT_DIR = env_str("WARDEN_CHECKPOINT_DIR", str(DATA_DIR / "checkpoints"))
WARDEN_WITNESS_URLS = env_list("WARDEN_WITNESS_URLS")
WARDEN_WITNESS_TIMEOUT = float(env_int("WARDEN_WITNESS_TIMEOUT_MS", 2000)) / 1000
WARDEN_SEQUENCER_BATCH = env_int("WARDEN_SEQUENCER_BATCH", 2000)
WARDEN_SEQUENCER_POLL_MS = env_int("WARDEN_SEQUENCER_POLL_MS", 5)
# Readiness and metrics report the sequencer as lagging past this many seconds.
WARDEN_AUDIT_MAX_LAG_SECONDS = env_int("WARDEN_AUDIT_MAX_LAG_SECONDS", 30)
# Fernet keys for ServiceCredential secrets, newest first, comma-separated (MultiFernet).
WARDEN_SECRET_KEYS = [
    key.strip()
    for key in _required_secret("WARDEN_SECRET_KEYS", _dev_fernet_key("warden-dev-secret-key")).split(",")
    if key.strip()
]

# Where ServiceCredential secrets are kept (see governance/secrets.py).
WARDEN_SECRETS_BACKEND = env_str("WARDEN_SECRETS_BACKEND", "governance.secrets.FernetBackend")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "mozilla_django_oidc",
    "auditlog",
    "audit",
    "governance",
    "agents",
    "approvals",
    "console",
    "demo_systems",
    "web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "web.middleware.SecurityHeadersMiddleware",
    "web.middleware.RejectNulMiddleware",
    "web.middleware.SessionLifetimeMiddleware",
    # Records the logged-in user as the actor of django-auditlog entries.
    "auditlog.middleware.AuditlogMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "web.context_processors.navigation",
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{DATA_DIR / 'warden.sqlite3'}")
# The owner role that runs migrations (the Procfile's release step); the app itself runs as
# DATABASE_URL's role, which owns nothing (see config/db_roles.py and `manage.py db_roles`).
MIGRATE_DATABASE_URL = env_secret("MIGRATE_DATABASE_URL")
# Set only for the release step's `migrate` and `db_roles`: connect as the owner role.
WARDEN_DB_AS_OWNER = env_bool("WARDEN_DB_AS_OWNER", False)
# The audit sequencer's role, the only one that may number audit events (the Procfile's
# sequencer sets WARDEN_DB_AS_SEQUENCER=1 to connect as it).
WARDEN_SEQUENCER_DATABASE_URL = env_secret("WARDEN_SEQUENCER_DATABASE_URL")
WARDEN_DB_AS_SEQUENCER = env_bool("WARDEN_DB_AS_SEQUENCER", False)
if WARDEN_DB_AS_OWNER and MIGRATE_DATABASE_URL:
    _CONNECT_URL = MIGRATE_DATABASE_URL
elif WARDEN_DB_AS_SEQUENCER and WARDEN_SEQUENCER_DATABASE_URL:
    _CONNECT_URL = WARDEN_SEQUENCER_DATABASE_URL
else:
    _CONNECT_URL = DATABASE_URL
try:
    DATABASES = {"default": dj_database_url.parse(_CONNECT_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))}
except ValueError as exc:
    raise ImproperlyConfigured(
        f"DATABASE_URL, MIGRATE_DATABASE_URL or WARDEN_SEQUENCER_DATABASE_URL is not a valid database URL: {exc}"
    ) from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # BEGIN IMMEDIATE makes SQLite writers queue for the lock instead of failing with
    # "database is locked" halfway through a transaction; WAL lets readers run beside them.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"].setdefault("TEST", {})
    if "NAME" in DATABASES["default"] and DATABASES["default"]["NAME"] not in ("", ":memory:"):
        Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)

# The decision path's few statements are prepared on the server (agents/prepared.py, decision
# 0021); 0 for a transaction-mode pooler that does not keep prepared statements.
WARDEN_DB_PREPARED_STATEMENTS = env_bool("WARDEN_DB_PREPARED_STATEMENTS", True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]

# Cookies: never the names the OIDC provider uses (`_session`, `_interaction`).
SESSION_COOKIE_NAME = "warden_sessionid"
CSRF_COOKIE_NAME = "warden_csrftoken"
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True  # templates read the token from the form, never from the cookie
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# The REST API (agents/api): problem details for every error, throttles per agent and session.
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "agents.api.problems.handler",
    "DEFAULT_PARSER_CLASSES": ["agents.api.problems.BoundedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "UNAUTHENTICATED_USER": None,
    # How many proxies in front of Warden append to X-Forwarded-For. 0 (the default): the
    # header is ignored and the client address is the connection's, so a caller cannot pick
    # the address its rate limit is counted under. (DRF's own default, None, trusts the header.)
    "NUM_PROXIES": env_int("WARDEN_TRUSTED_PROXIES", 0),
    "DEFAULT_THROTTLE_RATES": {
        "agent": env_str("WARDEN_API_RATE_AGENT", "1200/min"),
        "session": env_str("WARDEN_API_RATE_SESSION", "600/min"),
        "person": env_str("WARDEN_API_RATE_PERSON", "120/min"),
        "address": env_str("WARDEN_API_RATE_ADDRESS", "6000/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Warden API",
    "DESCRIPTION": "The decision API for agent runtimes, and audit reads for compliance.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",  # served from Warden itself: no CDN
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "agents.api.schema.add_problem_responses",
        "agents.api.schema.merge_blank_strings",
    ],
}
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("WARDEN_MAX_BODY_BYTES", 1024 * 1024)
# Throttle counters (and nothing else) live in the cache: Redis in production, shared by every worker.
CACHE_URL = env_str("WARDEN_CACHE_URL")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
    if CACHE_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

# Human login: OpenID Connect (mozilla-django-oidc), plus a password login for development only.
WARDEN_DEV_LOGIN = env_bool("WARDEN_DEV_LOGIN", False)
AUTHENTICATION_BACKENDS = ["governance.oidc.WardenOIDCBackend"]
if WARDEN_DEV_LOGIN:
    AUTHENTICATION_BACKENDS.append("django.contrib.auth.backends.ModelBackend")
LOGIN_URL = "/accounts/login/"
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("WARDEN_BEHIND_TLS_PROXY", False) else None
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"
OIDC_OP_ISSUER = env_str("OIDC_OP_ISSUER")
OIDC_RP_CLIENT_ID = env_str("OIDC_RP_CLIENT_ID")
OIDC_RP_CLIENT_SECRET = env_secret("OIDC_RP_CLIENT_SECRET")
OIDC_OP_AUTHORIZATION_ENDPOINT = env_str("OIDC_OP_AUTHORIZATION_ENDPOINT")
OIDC_OP_TOKEN_ENDPOINT = env_str("OIDC_OP_TOKEN_ENDPOINT")
OIDC_OP_USER_ENDPOINT = env_str("OIDC_OP_USER_ENDPOINT")
OIDC_OP_JWKS_ENDPOINT = env_str("OIDC_OP_JWKS_ENDPOINT")
OIDC_OP_END_SESSION_ENDPOINT = env_str("OIDC_OP_END_SESSION_ENDPOINT")
OIDC_RP_SIGN_ALGO = env_str("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = env_str("OIDC_RP_SCOPES", "openid email profile groups")
OIDC_USE_NONCE = True
OIDC_USE_PKCE = True
OIDC_PKCE_CODE_CHALLENGE_METHOD = "S256"
OIDC_STORE_ID_TOKEN = True
OIDC_CREATE_USER = True
OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS = 15 * 60
LOGIN_REDIRECT_URL_FAILURE = "/accounts/login/?failed=1"
WARDEN_OIDC_AUDIENCE = env_str("WARDEN_OIDC_AUDIENCE", OIDC_RP_CLIENT_ID)
# The audience an OIDC access token must name (`aud`, or `azp`) to read the audit API.
WARDEN_API_AUDIENCE = env_str("WARDEN_API_AUDIENCE", OIDC_RP_CLIENT_ID)
WARDEN_OIDC_GROUPS_CLAIM = env_str("WARDEN_OIDC_GROUPS_CLAIM", "groups")
WARDEN_ROLE_GROUPS = {
    "reviewer": env_str("WARDEN_ROLE_GROUP_REVIEWER", "warden-reviewers"),
    "admin": env_str("WARDEN_ROLE_GROUP_ADMIN", "warden-admins"),
    "compliance": env_str("WARDEN_ROLE_GROUP_COMPLIANCE", "warden-compliance"),
    "security": env_str("WARDEN_ROLE_GROUP_SECURITY", "warden-security"),
}
WARDEN_SESSION_IDLE_SECONDS = env_int("WARDEN_SESSION_IDLE_SECONDS", 30 * 60)
WARDEN_SESSION_MAX_SECONDS = env_int("WARDEN_SESSION_MAX_SECONDS", 12 * 3600)
SESSION_COOKIE_AGE = WARDEN_SESSION_MAX_SECONDS
WARDEN_APPROVAL_MAX_AUTH_AGE = env_int("WARDEN_APPROVAL_MAX_AUTH_AGE", 0)  # seconds; 0 = off
WARDEN_APPROVAL_RECENT_AUTH_TIERS = [int(t) for t in env_list("WARDEN_APPROVAL_RECENT_AUTH_TIERS", "")]
WARDEN_STEPUP_MAX_AGE = env_int("WARDEN_STEPUP_MAX_AGE", 900)
WARDEN_STEPUP_ACR = env_str("WARDEN_STEPUP_ACR")  # an acr that counts as MFA, also sent as acr_values

# Approval on the reviewer's own device through the IdP: OpenID Connect CIBA, poll mode
# (approvals/ciba.py, docs/decisions/0019). Off unless enabled; the IdP and client default to
# the login's.
WARDEN_CIBA_ENABLED = env_bool("WARDEN_CIBA_ENABLED", False)
WARDEN_CIBA_ISSUER = env_str("WARDEN_CIBA_ISSUER", OIDC_OP_ISSUER).rstrip("/")
WARDEN_CIBA_CLIENT_ID = env_str("WARDEN_CIBA_CLIENT_ID", OIDC_RP_CLIENT_ID)
WARDEN_CIBA_CLIENT_SECRET = env_secret("WARDEN_CIBA_CLIENT_SECRET") or OIDC_RP_CLIENT_SECRET
WARDEN_CIBA_CLIENT_AUTH = env_str("WARDEN_CIBA_CLIENT_AUTH", "client_secret_post")  # or client_secret_basic
WARDEN_CIBA_LOGIN_HINT = env_str("WARDEN_CIBA_LOGIN_HINT", "sub")  # sub (ExternalIdentity) or email
WARDEN_CIBA_EXPIRES_SECONDS = env_int("WARDEN_CIBA_EXPIRES_SECONDS", 300)  # the polling deadline
WARDEN_CIBA_DEFAULT_INTERVAL = env_int("WARDEN_CIBA_DEFAULT_INTERVAL", 5)  # when the IdP names none (spec: 5)
WARDEN_CIBA_BINDING_MESSAGE_MAX = env_int("WARDEN_CIBA_BINDING_MESSAGE_MAX", 20)  # oidc-provider's default limit
WARDEN_CIBA_HTTP_TIMEOUT = env_int("WARDEN_CIBA_HTTP_TIMEOUT", 5)
if WARDEN_CIBA_ENABLED and not (WARDEN_CIBA_ISSUER and WARDEN_CIBA_CLIENT_ID and WARDEN_CIBA_CLIENT_SECRET):
    raise ImproperlyConfigured(
        "WARDEN_CIBA_ENABLED is set but the IdP is not: set WARDEN_CIBA_ISSUER, WARDEN_CIBA_CLIENT_ID and "
        "WARDEN_CIBA_CLIENT_SECRET (or the OIDC_* login settings they default to)"
    )
if WARDEN_CIBA_LOGIN_HINT not in ("sub", "email"):
    raise ImproperlyConfigured("WARDEN_CIBA_LOGIN_HINT must be sub or email")
if WARDEN_CIBA_CLIENT_AUTH not in ("client_secret_post", "client_secret_basic"):
    raise ImproperlyConfigured("WARDEN_CIBA_CLIENT_AUTH must be client_secret_post or client_secret_basic")

# Notifications: email to the people concerned, and signed webhooks.
WARDEN_BASE_URL = env_str("WARDEN_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
WARDEN_WEBHOOK_URLS = env_list("WARDEN_WEBHOOK_URLS")
WARDEN_WEBHOOK_SECRET = env_secret("WARDEN_WEBHOOK_SECRET")
WARDEN_WEBHOOK_TIMEOUT = env_int("WARDEN_WEBHOOK_TIMEOUT", 5)
if WARDEN_WEBHOOK_URLS and not WARDEN_WEBHOOK_SECRET:
    raise ImproperlyConfigured("WARDEN_WEBHOOK_URLS is set but WARDEN_WEBHOOK_SECRET is not: webhooks must be signed")

# Celery. Without a broker URL the quickstart uses kombu's filesystem transport, which needs no server.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://localhost/")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = DATA_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_queue_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir / "queue"),
        "data_folder_out": str(_queue_dir / "queue"),
        "processed_folder": str(_queue_dir / "processed"),
        # Without it kombu writes its exchange table to ./control, wherever the process started.
        "control_folder": str(_queue_dir / "control"),
    }
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
if CELERY_BROKER_URL.startswith("redis"):
    # Redis hands an unacknowledged task to another worker after this many seconds, even one
    # that is still running: keep it above the longest task (a session runs in one task until
    # it pauses or ends: the longest max_session_seconds plus a model call; credential
    # rotation retries wait up to 1800 s). Recovery from dead workers does not wait for it:
    # the sweep restarts stranded sessions by their state (agents.tasks.restart_stranded).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)}
CELERY_BEAT_SCHEDULE = {
    "sweep-sessions": {"task": "agents.tasks.sweep", "schedule": float(env_int("WARDEN_SWEEP_SECONDS", 30))},
    "enforce-access-reviews": {
        "task": "agents.tasks.enforce_access_reviews",
        "schedule": float(env_int("WARDEN_REVIEW_CHECK_SECONDS", 3600)),
    },
    "enforce-campaign-deadlines": {
        "task": "approvals.tasks.enforce_campaign_deadlines",
        "schedule": float(env_int("WARDEN_REVIEW_CHECK_SECONDS", 3600)),
    },
    "poll-stranded-ciba-requests": {
        # Picks up device approvals whose polling chain was lost with a worker (approvals/ciba.py).
        "task": "approvals.tasks.ciba_request_sweep",
        "schedule": float(env_int("WARDEN_SWEEP_SECONDS", 30)),
    },
    "rotate-credentials": {
        "task": "agents.tasks.rotate_due_credentials",
        "schedule": float(env_int("WARDEN_ROTATION_CHECK_SECONDS", 3600)),
    },
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The quickstart has no audit_sequencer process: beat has the worker sequence the log.
    CELERY_BEAT_SCHEDULE["sequence-audit-log"] = {
        "task": "audit.tasks.sequence",
        "schedule": float(env_int("WARDEN_SEQUENCER_BEAT_SECONDS", 1)),
    }
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")

# The model. With ANTHROPIC_API_KEY and no base URL the runner talks to Claude; the demo and
# the tests point ANTHROPIC_BASE_URL at the offline model server (manage.py model_server).
ANTHROPIC_API_KEY = env_secret("ANTHROPIC_API_KEY")
ANTHROPIC_BASE_URL = env_str("ANTHROPIC_BASE_URL")
WARDEN_MODEL = env_str("WARDEN_MODEL", "claude-opus-4-6")
WARDEN_MAX_TOKENS = env_int("WARDEN_MAX_TOKENS", 2048)
WARDEN_MODEL_TIMEOUT = float(env_int("WARDEN_MODEL_TIMEOUT", 60))
WARDEN_MODEL_MAX_RETRIES = env_int("WARDEN_MODEL_MAX_RETRIES", 2)

# The runtime.
WARDEN_MAX_STEPS = env_int("WARDEN_MAX_STEPS", 25)
WARDEN_MAX_CONSECUTIVE_FAILURES = env_int("WARDEN_MAX_CONSECUTIVE_FAILURES", 3)
WARDEN_RUNNER_LEASE_SECONDS = env_int("WARDEN_RUNNER_LEASE_SECONDS", 120)
WARDEN_APPROVAL_TTL_SECONDS = env_int("WARDEN_APPROVAL_TTL_SECONDS", 3600)
WARDEN_ACCESS_REVIEW_DAYS = env_int("WARDEN_ACCESS_REVIEW_DAYS", 7)

EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(DATA_DIR / "mail"))  # for the file-based backend
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
WARDEN_MAIL_FROM = env_str("WARDEN_MAIL_FROM", "warden@localhost")
DEFAULT_FROM_EMAIL = WARDEN_MAIL_FROM

LOG_FORMAT = env_str("WARDEN_LOG_FORMAT", "plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "web.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": sys.stderr,
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

if DEBUG and not env_secret("WARDEN_AUDIT_KEY"):
    print("warden: DEBUG is on and built-in development keys are in use; never do this in production", file=sys.stderr)
