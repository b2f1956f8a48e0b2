"""Settings, read only from the environment (see README: Configuration)."""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_float, env_int, env_list, env_log_level, env_rate, env_str, redis_url

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)


def _secret_key() -> str:
    key = env_str("SECRET_KEY")
    if key:
        if len(key) < 32:
            raise ImproperlyConfigured("SECRET_KEY is too short: use at least 32 random characters")
        return key
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (make run sets DEBUG=1 for you)")
    # Development only: a key kept in a git-ignored file so sessions survive a restart.
    path = BASE_DIR / ".secrets" / "dev-secret-key"
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Browser origins allowed to open websockets with a session cookie; empty means "the ALLOWED_HOSTS".
WS_ALLOWED_ORIGINS = env_list("WS_ALLOWED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "accounts",
    "health_records",
    "dispatch",
    "mobile_api",
]

MIDDLEWARE = [
    "config.middleware.RequestSizeLimitMiddleware",
    "config.middleware.ApiNotFoundMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/console/dispatch/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

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
            ],
        },
    },
]


def _database() -> dict:
    url = env_str("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
    scheme = urlparse(url).scheme
    if scheme not in {"sqlite", "postgres", "postgresql", "pgsql"}:
        raise ImproperlyConfigured(f"DATABASE_URL scheme {scheme!r} is not supported; use sqlite:/// or postgres://")
    try:
        config = dj_database_url.parse(url, conn_max_age=env_int("DB_CONN_MAX_AGE", 0, minimum=0))
    except Exception as exc:  # dj_database_url raises several types for a malformed URL
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
    # daphne runs each sync request in a thread of its own; without a pool every one opens a
    # PostgreSQL connection and a burst of taps exhausts max_connections.
    pool_size = env_int("DB_POOL_MAX_SIZE", 16, minimum=0, maximum=200)
    if pool_size and config["ENGINE"] == "django.db.backends.postgresql":
        # Under ASGI persistent connections leak per thread; a psycopg pool reuses them safely.
        config["CONN_MAX_AGE"] = 0
        config.setdefault("OPTIONS", {})["pool"] = {"min_size": min(2, pool_size), "max_size": pool_size, "timeout": 10}
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # IMMEDIATE takes the write lock at BEGIN, so two racing transactions serialize
        # instead of failing late with "database is locked" on upgrade.
        config["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"}
        # The test database is a file, one per test process: an in-memory shared-cache database
        # answers two concurrent writers with "database table is locked" at once instead of
        # waiting, so threaded tests could not prove what a real (file) database does.
        default_test_name = Path(tempfile.gettempdir()) / f"onekey120-test-{os.getpid()}.sqlite3"
        config["TEST"] = {"NAME": env_str("TEST_SQLITE_NAME") or str(default_test_name)}
    return config


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = redis_url("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 times sockets out after 5 s by default, exactly the length of
                # channels_redis' blocking receive: idle consoles were dropped with 1011
                # (django/channels_redis#422). The read timeout must outlast that wait.
                "hosts": [{"address": REDIS_URL, "socket_timeout": 30}],
                "prefix": env_str("CHANNEL_LAYER_PREFIX", "onekey120"),
                "capacity": env_int("CHANNEL_LAYER_CAPACITY", 1000, minimum=10),
                "expiry": 30,
            },
        }
    }
    # Throttle counters must be shared by every worker, or each worker grants its own quota.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CHANNEL_LAYER_PREFIX", "onekey120"),
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
TIME_ZONE = "UTC"  # storage and wire are UTC; pages render local time
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# Request bodies: nothing in the API needs more than a few kilobytes.
MAX_REQUEST_BYTES = env_int("MAX_REQUEST_BYTES", 64 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BYTES

AUTH_RATE_LIMIT = env_rate("AUTH_RATE_LIMIT", "20/min")
SOS_RATE_LIMIT = env_rate("SOS_RATE_LIMIT", "10/min")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["config.api.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer", "rest_framework.renderers.BrowsableAPIRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "One-key 120 API",
    "DESCRIPTION": "One tap SOS to the 120 dispatcher, the ambulance crew and the hospital (一键急救).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a field named "status"; give each choice set its own schema name.
    "ENUM_NAME_OVERRIDES": {
        "CaseStatusEnum": "dispatch.models.CaseStatus",
        "UnitStatusEnum": "dispatch.models.UnitStatus",
        "AdmissionStatusEnum": "dispatch.models.AdmissionStatus",
        "CrewStatusEnum": "dispatch.services.CREW_STATUSES",
    },
}

# Dispatch tuning: ETA without a road network is distance x road factor / speed.
ETA_ROAD_FACTOR = env_float("ETA_ROAD_FACTOR", 1.4, minimum=1.0, maximum=5.0)
ETA_SPEED_KMH = env_float("ETA_SPEED_KMH", 36.0, minimum=5.0, maximum=200.0)
RECOMMENDATION_COUNT = env_int("RECOMMENDATION_COUNT", 5, minimum=1, maximum=50)

# Event log: resumes older than this are answered with "resync".
EVENT_RETENTION_HOURS = env_int("EVENT_RETENTION_HOURS", 72, minimum=1)
WS_AUTH_TIMEOUT_S = env_float("WS_AUTH_TIMEOUT_S", 10.0, minimum=0.5, maximum=120.0)
# Each socket re-joins its group and catches up from the log this often (0 = never): a lost
# last doorbell, or a group membership Redis expired, cannot leave a console silently stale.
WS_CATCHUP_S = env_float("WS_CATCHUP_S", 30.0, minimum=0.0, maximum=3600.0)
# A console further behind than this is told to resync from a snapshot instead of replaying.
WS_MAX_REPLAY = env_int("WS_MAX_REPLAY", 5000, minimum=1)

# Health archives: keys are read by health_records.keys (HEALTH_KEYS, HEALTH_BLIND_INDEX_KEY).
# A grant normally ends with its case; this is the safety net for a case that never closes.
HEALTH_GRANT_MAX_HOURS = env_int("HEALTH_GRANT_MAX_HOURS", 24, minimum=1, maximum=168)

DEMO_PASSWORD = "onekey120-demo"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_log_level("LOG_LEVEL", "INFO")},
    "loggers": {"django.channels.server": {"level": "WARNING"}, "daphne": {"level": "WARNING"}},
}

if not DEBUG:
    SESSION_COOKIE_HTTPONLY = True
    CSRF_COOKIE_HTTPONLY = False
