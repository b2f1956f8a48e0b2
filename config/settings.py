"""Settings, read only from the environment (see README: Configuration)."""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import tempfile
from datetime import timedelta
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
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "axes",
    "accounts",
    "health_records",
    "dispatch",
    "reports",
    "mobile_api",
]

MIDDLEWARE = [
    "config.middleware.DateHeaderMiddleware",
    "config.metrics.RequestMetricsMiddleware",
    "config.middleware.RequestSizeLimitMiddleware",
    "config.middleware.ApiNotFoundMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # After sessions, before CommonMiddleware (Django's rule): the switcher's choice, kept in a cookie.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
    # The chain is loaded sync (config/http_handler.py): middleware and view run in the request's
    # thread in one go. Every middleware here must therefore be sync-capable, as Django's own are.
    "config.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"  # the landing view sends each role to its own page (accounts.views)
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


# Read whatever the engine, so a typo fails on a laptop's SQLite too, not first in production.
DB_POOL_TIMEOUT_S = env_float("DB_POOL_TIMEOUT_S", 2.0, minimum=0.1, maximum=60.0)
DB_CONNECT_TIMEOUT_S = env_int("DB_CONNECT_TIMEOUT_S", 2, minimum=2, maximum=60)


def _database() -> dict:
    url = env_str("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
    scheme = urlparse(url).scheme
    if scheme not in {"sqlite", "postgres", "postgresql", "pgsql"}:
        raise ImproperlyConfigured(f"DATABASE_URL scheme {scheme!r} is not supported; use sqlite:/// or postgres://")
    try:
        config = dj_database_url.parse(url, conn_max_age=env_int("DB_CONN_MAX_AGE", 0, minimum=0))
    except Exception as exc:  # dj_database_url raises several types for a malformed URL
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
    # Under ASGI each request has database connections of its own (Django keeps them per request
    # context, whichever thread serves it); without a pool every request opens a PostgreSQL
    # connection and a burst of taps exhausts max_connections.
    pool_size = env_int("DB_POOL_MAX_SIZE", 16, minimum=0, maximum=200)
    if pool_size and config["ENGINE"] == "django.db.backends.postgresql":
        # Under ASGI persistent connections leak per request context; a psycopg pool reuses them safely.
        config["CONN_MAX_AGE"] = 0
        # A short wait for a pooled connection: during a database outage a request answers 503
        # (config.middleware) in about this long instead of hanging. Health checks make the pool
        # test a connection before handing it out, so ones an outage broke are replaced, not served.
        config["CONN_HEALTH_CHECKS"] = True
        config.setdefault("OPTIONS", {})["pool"] = {
            "min_size": min(2, pool_size),
            "max_size": pool_size,
            "timeout": DB_POOL_TIMEOUT_S,
        }
    if config["ENGINE"] == "django.db.backends.postgresql":
        # libpq's own limit (whole seconds, at least 2) on opening a connection to an unreachable server.
        config.setdefault("OPTIONS", {})["connect_timeout"] = DB_CONNECT_TIMEOUT_S
        # Parameters travel beside the statement instead of being quoted into it in Python: 4-7 %
        # of a tap's worker CPU (bench/README.md, 2026-12-03), ~100 values a tap. A statement's
        # parameters are then typed by the server, and at most 65,535 per statement (the import
        # updates 100 rows at a time). No automatic prepared statements: Django leaves
        # prepare_threshold unset, so a migration cannot invalidate a running worker's plans.
        config["OPTIONS"]["server_side_binding"] = True
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
# "pubsub": Redis pub/sub, one copy of a group message per subscribed worker, fanned out in-process
# (config/channel_layer.py). "list": channels_redis' list-based layer, one copy per member socket,
# each popped by its worker in a Redis round trip: one event to 1,000 consoles cost each worker
# twice the CPU and a p99 five times longer (bench/fanout.py, bench/README.md).
CHANNEL_LAYER = env_str("CHANNEL_LAYER", "pubsub")
if CHANNEL_LAYER not in {"list", "pubsub"}:
    raise ImproperlyConfigured(f"CHANNEL_LAYER={CHANNEL_LAYER!r}: use list or pubsub")
if REDIS_URL and CHANNEL_LAYER == "pubsub":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "config.channel_layer.PubSubChannelLayer",
            "CONFIG": {
                # No blocking pop here (the subscriber polls every 0.1 s), but a Redis that hangs
                # must not hang a publish either.
                "hosts": [{"address": REDIS_URL, "socket_timeout": 30}],
                "prefix": env_str("CHANNEL_LAYER_PREFIX", "onekey120"),
            },
        }
    }
elif REDIS_URL:
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
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

if REDIS_URL:
    # Throttle counters must be shared by every worker, or each worker grants its own quota:
    # whichever channel layer carries the events (tests/test_cluster_quota.py).
    CACHES = {
        "default": {
            # Fails open when Redis is down (config/cache.py): a cache outage must not refuse taps.
            "BACKEND": "config.cache.FailOpenRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CHANNEL_LAYER_PREFIX", "onekey120"),
            # A Redis that hangs instead of refusing must not hang the request either.
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# The language when neither the switcher's cookie nor Accept-Language names one we have (LocaleMiddleware).
LANGUAGE_CODE = env_str("LANGUAGE_CODE") or "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
TIME_ZONE = "UTC"  # storage and wire are UTC; pages render local time
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
# Where collectstatic gathers the files nginx serves (deploy/): anywhere the web server can read.
STATIC_ROOT = Path(env_str("STATIC_ROOT") or BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# Request bodies: nothing in the API needs more than a few kilobytes.
MAX_REQUEST_BYTES = env_int("MAX_REQUEST_BYTES", 64 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BYTES

AUTH_RATE_LIMIT = env_rate("AUTH_RATE_LIMIT", "20/min")

# --- Client address, login lockout, API tokens (README: Configuration) ---------------------------
# X-Forwarded-For is believed only from these peers (IPs or CIDRs, e.g. the nginx in front); empty
# trusts nobody and the socket peer is the client (config.client_ip).
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", [])
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"TRUSTED_PROXIES entry {_proxy!r} is not an IP address or CIDR") from None
# Failed sign-ins on /api/v1/auth/token, /accounts/login/ and /admin/login/ (accounts.lockout
# explains the three counters and why the per-account one is high and spares known addresses).
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10, minimum=3, maximum=1000)  # one account at one address
LOGIN_ADDRESS_FAILURE_LIMIT = env_int("LOGIN_ADDRESS_FAILURE_LIMIT", 30, minimum=3, maximum=100_000)  # any account
LOGIN_ACCOUNT_FAILURE_LIMIT = env_int("LOGIN_ACCOUNT_FAILURE_LIMIT", 100, minimum=3, maximum=100_000)  # any address
LOGIN_KNOWN_ADDRESS_DAYS = env_int("LOGIN_KNOWN_ADDRESS_DAYS", 30, minimum=0, maximum=3650)
LOGIN_COOLOFF_MINUTES = env_int("LOGIN_COOLOFF_MINUTES", 15, minimum=1, maximum=24 * 60)
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_HANDLER = "accounts.lockout.LockoutHandler"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address", "username"]  # order used by LockoutHandler
AXES_FAILURE_LIMIT = "accounts.lockout.failure_limit"  # = LOGIN_FAILURE_LIMIT, read per call
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_COOLOFF_MINUTES)
# Attempts while locked are not counted, so the lock ends one cool-off after the last counted guess.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "config.client_ip.request_client_ip"
AXES_USERNAME_CALLABLE = "accounts.lockout.axes_username"
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "password", "csrfmiddlewaretoken"]
REGISTER_PHONE_RATE_LIMIT = env_rate("REGISTER_PHONE_RATE_LIMIT", "5/hour")
# Token lifetimes: staff a 12-hour shift plus handover; citizens weeks (the SOS button must work).
TOKEN_TTL_STAFF_HOURS = env_int("TOKEN_TTL_STAFF_HOURS", 14, minimum=1, maximum=24 * 31)
TOKEN_TTL_CITIZEN_DAYS = env_int("TOKEN_TTL_CITIZEN_DAYS", 30, minimum=1, maximum=365)
SOS_RATE_LIMIT = env_rate("SOS_RATE_LIMIT", "10/min")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["config.api.JSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "config.api.ContentNegotiation",
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
        # "source" is both a fix's sensor (gps, wifi, ...) and a case's origin (tap, phone).
        "LocationSourceEnum": "dispatch.models.LocationSource",
        "CaseSourceEnum": "dispatch.models.CaseSource",
    },
}

# Dispatch tuning: ETA without a road network is distance x road factor / speed.
ETA_ROAD_FACTOR = env_float("ETA_ROAD_FACTOR", 1.4, minimum=1.0, maximum=5.0)
ETA_SPEED_KMH = env_float("ETA_SPEED_KMH", 36.0, minimum=5.0, maximum=200.0)
# A unit's GPS fixes reach the dispatch stream at most once per this many seconds per unit (its
# crew, its caller and its hospital get every fix): 171 units every 5 s must not swamp a console.
UNIT_POSITION_PUSH_S = env_float("UNIT_POSITION_PUSH_S", 5.0, minimum=0.0, maximum=3600.0)
RECOMMENDATION_COUNT = env_int("RECOMMENDATION_COUNT", 5, minimum=1, maximum=50)
# Surge (issue 8). A tap within this distance and time of another active case (or by the same
# caller) is flagged as a possible duplicate for the dispatcher to merge.
DUPLICATE_RADIUS_M = env_float("DUPLICATE_RADIUS_M", 200.0, minimum=0.0, maximum=5000.0)
DUPLICATE_WINDOW_S = env_float("DUPLICATE_WINDOW_S", 600.0, minimum=0.0, maximum=86400.0)
# Surge is proposed (an alert for the supervisor) once this many priority-1/2 cases wait unassigned.
SURGE_PROPOSE_UNASSIGNED = env_int("SURGE_PROPOSE_UNASSIGNED", 10, minimum=1, maximum=10000)
# How long a crew usually needs at the hospital after arrival (handover, cleaning, restocking):
# in surge a unit at the hospital is offered as "free in" this much after its arrival.
HANDOVER_S = env_float("HANDOVER_S", 600.0, minimum=0.0, maximum=7200.0)
# The last this many available units are held for priority SURGE_RESERVE_PRIORITY and better:
# recommendations for other cases flag them reserved (0 = no reserve). When every unit is busy the
# next priority-1 call would otherwise wait for one to come free (replay, bench/README.md).
SURGE_RESERVE_UNITS = env_int("SURGE_RESERVE_UNITS", 2, minimum=0, maximum=1000)
SURGE_RESERVE_PRIORITY = env_int("SURGE_RESERVE_PRIORITY", 1, minimum=1, maximum=4)
# Whether the reserve holds whenever the fleet is down to it (default) or only in declared surge.
# The 7·20 replay lost its priority-1 calls in the half hour BEFORE the queue grew long enough to
# propose surge: the units ran out first (bench/README.md, Replay).
SURGE_RESERVE_ALWAYS = env_bool("SURGE_RESERVE_ALWAYS", True)

# Event log: resumes older than this are answered with "resync".
EVENT_RETENTION_HOURS = env_int("EVENT_RETENTION_HOURS", 72, minimum=1)
WS_AUTH_TIMEOUT_S = env_float("WS_AUTH_TIMEOUT_S", 10.0, minimum=0.5, maximum=120.0)
# Each socket re-joins its group and catches up from the log this often (0 = never): a lost
# last doorbell, or a group membership Redis expired, cannot leave a console silently stale.
WS_CATCHUP_S = env_float("WS_CATCHUP_S", 30.0, minimum=0.0, maximum=3600.0)
# Each authenticated socket re-validates its user, token or session and stream binding this often
# (0 = never): the close message on deactivation/revocation is at most once, this is the backstop.
WS_AUTH_RECHECK_S = env_float("WS_AUTH_RECHECK_S", 15.0, minimum=0.0, maximum=3600.0)
# A console further behind than this is told to resync from a snapshot instead of replaying.
WS_MAX_REPLAY = env_int("WS_MAX_REPLAY", 5000, minimum=1)

# Health archives: keys are read by health_records.keys (HEALTH_KEYS, HEALTH_BLIND_INDEX_KEY).
# A grant normally ends with its case; this is the safety net for a case that never closes.
HEALTH_GRANT_MAX_HOURS = env_int("HEALTH_GRANT_MAX_HOURS", 24, minimum=1, maximum=168)
# Which accounts may hold which health-archive grant role: health_records knows only its grant
# roles, dispatch maps its account roles onto them. Unset, nobody may read another's archive.
HEALTH_GRANT_ROLES_OF = "dispatch.permissions.health_grant_roles"
# Signed checkpoints of the access log (health_records.audit): files in a directory the database
# user cannot rewrite. Required when DEBUG is off and appends write checkpoints (EVERY > 0).
ACCESS_LOG_CHECKPOINT_DIR = env_str(
    "ACCESS_LOG_CHECKPOINT_DIR", str(BASE_DIR / ".secrets" / "access-log-checkpoints") if DEBUG else None
) or None
# The append that lands on a multiple of this writes a checkpoint after commit (0 = only the command).
ACCESS_LOG_CHECKPOINT_EVERY = env_int("ACCESS_LOG_CHECKPOINT_EVERY", 1000, minimum=0, maximum=10_000_000)

DEMO_PASSWORD = "onekey120-demo"

# --- Logs: one JSON object a line in production (LOG_FORMAT=json), plain text in development.
LOG_FORMAT = (env_str("LOG_FORMAT") or ("plain" if DEBUG else "json")).strip().lower()
if LOG_FORMAT not in {"json", "plain"}:
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r} is not a log format; use json or plain")
_ROOT_LOG_LEVEL = env_log_level("LOG_LEVEL", "INFO")
# The loggers below may never go under INFO, but must not go under the root's level either: a
# logger set to INFO under LOG_LEVEL=WARNING still writes its INFO lines.
_AT_LEAST_INFO = _ROOT_LOG_LEVEL if logging.getLevelName(_ROOT_LOG_LEVEL) > logging.INFO else "INFO"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "config.logging.RedactSecretsFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "config.logging.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["redact"]}},
    "root": {"handlers": ["console"], "level": _ROOT_LOG_LEVEL},
    "loggers": {
        "django.channels.server": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        # At DEBUG these print every SQL statement with its parameters (token keys, password
        # hashes, sealed archives) and every websocket frame: never, whatever LOG_LEVEL says.
        "django.db.backends": {"level": _AT_LEAST_INFO},
        "psycopg": {"level": _AT_LEAST_INFO},
        # The pool writes four INFO lines per checkout (requested, given, returning, returned):
        # noise, and JSON-formatting them cost CPU on every request and every socket's re-check.
        "psycopg.pool": {"level": "WARNING"},
        "channels_redis": {"level": _AT_LEAST_INFO},
        "asyncio": {"level": "WARNING"},
        "django.template": {"level": "INFO"},
    },
}

# Python warnings become log records, so they come out formatted (and redacted) like the rest.
logging.captureWarnings(True)

# --- HTTPS and browser security. Secure is the default; an operator opts OUT with HTTPS=0 (a
# plain-HTTP test run or a private network), which `make run` and the tests do.
HTTPS = env_bool("HTTPS", True)
SECURE_SSL_REDIRECT = HTTPS
# The health probe is answered on plain HTTP too: systemd, the load balancer and the test helpers
# ask daphne directly on loopback, where there is no TLS.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SESSION_COOKIE_HTTPONLY = True
# The console's script reads the CSRF token from this cookie; HttpOnly would protect nothing
# (the token is in every form of the page anyway).
CSRF_COOKIE_HTTPONLY = False
if HTTPS:
    # TLS ends at nginx, which sets X-Forwarded-Proto itself (deploy/nginx.conf.template,
    # overwriting whatever the client sent). Trusting the header is safe ONLY because daphne
    # listens on loopback behind nginx: no client can reach daphne to forge it. Bind daphne to a
    # public address and this header becomes a lie anyone can tell.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# HSTS: one year. Subdomains are included and the preload token is sent by default, because a
# 120 service has no business on plain HTTP anywhere under its domain; the token alone changes
# nothing until an operator submits the domain to the browsers' preload list (hstspreload.org),
# which is a deliberate, hard-to-undo step. An operator who serves plain-HTTP subdomains sets
# HSTS_INCLUDE_SUBDOMAINS=0 / HSTS_PRELOAD=0 (check --deploy then warns, as it should).
SECURE_HSTS_SECONDS = env_int("HSTS_SECONDS", 31536000 if HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- Dispatcher console ------------------------------------------------------------------------
# The older name of the priority-1 value of ALERT_UNASSIGNED_S (below), kept so existing
# deployments that set it still get the threshold they chose.
UNASSIGNED_ALERT_S = env_int("UNASSIGNED_ALERT_S", 30, minimum=5, maximum=3600)

# --- Escalation alerts (dispatch.alerts; README: Configuration) ---------------------------------
# Seconds a case may wait for a unit, by priority 1..4 (Chinese practice: a priority-1 call is
# dispatched within 30 s). UNASSIGNED_ALERT_S, when set, stays the priority-1 value.
def _alert_unassigned_s() -> tuple[int, int, int, int]:
    raw = env_str("ALERT_UNASSIGNED_S")
    if raw is None or not raw.strip():
        values = [30, 120, 300, 600]
    else:
        try:
            values = [int(part) for part in raw.split(",")]
        except ValueError:
            raise ImproperlyConfigured(f"ALERT_UNASSIGNED_S={raw!r} is not four whole numbers like '30,120,300,600'") from None
        if len(values) != 4 or not all(1 <= v <= 86400 for v in values):
            raise ImproperlyConfigured(f"ALERT_UNASSIGNED_S={raw!r}: give four seconds (priority 1..4), each in [1, 86400]")
    if os.environ.get("UNASSIGNED_ALERT_S", "").strip():
        values[0] = UNASSIGNED_ALERT_S
    return tuple(values)


ALERT_UNASSIGNED_S = _alert_unassigned_s()
# A crew not en route this long after being sent (China's target: rolling within 3 min for 95 %).
ALERT_NOT_ROLLING_S = env_int("ALERT_NOT_ROLLING_S", 60, minimum=1, maximum=3600)
# A hospital that has not acknowledged an incoming patient: asked again every this many seconds.
ALERT_ADMISSION_ACK_S = env_int("ALERT_ADMISSION_ACK_S", 120, minimum=1, maximum=3600)
# A unit on a case whose GPS has been silent this long.
ALERT_GPS_SILENT_S = env_int("ALERT_GPS_SILENT_S", 120, minimum=1, maximum=3600)
# How often each worker looks for due alerts (and trailing unit fixes); 0 turns the ticker off.
ALERT_TICK_S = env_float("ALERT_TICK_S", 1.0, minimum=0.0, maximum=60.0)
# A raised alert that does not repeat is re-checked this often: if the condition went away by a
# path that did not clear it, the tick clears it.
ALERT_RECHECK_S = env_int("ALERT_RECHECK_S", 30, minimum=1, maximum=3600)

# --- Priority (dispatch.triage) -----------------------------------------------------------------
# The centre's policy, complaint=priority (1 most urgent … 4), e.g. "child=2,other=4"; entries
# override the defaults (1: cardiac_arrest, unconscious, chest_pain, stroke; 2: breathing, trauma,
# pregnancy, newborn, burns, unknown; 3: child, other). A bad entry stops the start.
from dispatch.triage import parse_priority_policy  # noqa: E402  (pure: no models imported)

PRIORITY_BY_COMPLAINT = parse_priority_policy(env_str("PRIORITY_BY_COMPLAINT"))
# Silent calls: texts per case and sender (caller / dispatchers) in a minute, over all workers.
CASE_MESSAGE_RATE_LIMIT = env_rate("CASE_MESSAGE_RATE_LIMIT", "20/min")

# --- Maps and addresses (README: Configuration) -------------------------------------------------
# Optional tile server for the consoles' maps, a {z}/{x}/{y} template such as a centre's own
# https://tiles.example.org/{z}/{x}/{y}.png; unset, the maps show the served district layer only.
MAP_TILE_URL = env_str("MAP_TILE_URL") or None
# The tile provider's credit line, shown in the map's attribution control when tiles are on (plain text).
MAP_TILE_ATTRIBUTION = env_str("MAP_TILE_ATTRIBUTION") or ""
MAP_TILE_ORIGIN = None
if MAP_TILE_URL is not None:
    _tiles = urlparse(MAP_TILE_URL)
    # CSP img-src names the tile origin exactly, so a {s} subdomain pattern is refused: name one host.
    if (
        _tiles.scheme not in ("http", "https")
        or not _tiles.hostname
        or "{s}" in MAP_TILE_URL
        or not all(part in MAP_TILE_URL for part in ("{z}", "{x}", "{y}"))
    ):
        raise ImproperlyConfigured(
            f"MAP_TILE_URL={MAP_TILE_URL!r} is not an http(s) URL template on one host with {{z}}, {{x}} and {{y}}"
        )
    # Host and port only: credentials in the URL (if any) must not end up in a response header.
    MAP_TILE_ORIGIN = f"{_tiles.scheme}://{_tiles.hostname}" + (f":{_tiles.port}" if _tiles.port else "")
# Addresses: "offline" (district + nearest known place, no network) or "nominatim:https://host[/path]"
# for a self-hosted Nominatim (never the public one: its usage policy forbids this kind of load).
# Who we are in an EIDO incident document sent to a neighbouring 110/119/120 centre (NENA's
# agency identifier: a domain name the centre controls).
EIDO_AGENCY_ID = env_str("EIDO_AGENCY_ID", "120.zhengzhou.example.cn").strip() or "120.zhengzhou.example.cn"
GEOCODER = env_str("GEOCODER", "offline").strip() or "offline"
if GEOCODER != "offline" and not (
    GEOCODER.startswith(("nominatim:http://", "nominatim:https://")) and urlparse(GEOCODER[len("nominatim:") :]).hostname
):
    raise ImproperlyConfigured(f"GEOCODER={GEOCODER!r}: use 'offline' or 'nominatim:https://your-nominatim-host'")

# Content-Security-Policy (django-csp 4): only our own scripts, styles and connections, no inline
# script anywhere. The console passes data by json_script (a JSON island, not script) and data-*
# attributes; the API docs use drf-spectacular's split Swagger view for the same reason.
# 'self' in connect-src covers the console's ws:/wss: socket to the same host (CSP level 3).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", *([MAP_TILE_ORIGIN] if MAP_TILE_ORIGIN else [])],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- Metrics (/metrics, Prometheus format): staff sessions, or this bearer token for the scraper.
METRICS_TOKEN = env_str("METRICS_TOKEN") or None
if METRICS_TOKEN is not None and len(METRICS_TOKEN) < 24:
    raise ImproperlyConfigured("METRICS_TOKEN is too short: use at least 24 random characters")
# What a 503 for a database outage tells the client to wait before retrying.
DB_UNAVAILABLE_RETRY_AFTER_S = env_int("DB_UNAVAILABLE_RETRY_AFTER_S", 5, minimum=1, maximum=3600)
