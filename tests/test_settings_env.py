"""Settings come from the environment; a bad value stops the process at start with a message that
names the variable (and never echoes a password it was given).

Each case starts a real Python process doing what every entry point does first: django.setup()
with DJANGO_SETTINGS_MODULE=config.settings. They run side by side to keep the file fast."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Variables the cases below control; anything else (e.g. keys other apps need) is inherited.
CONTROLLED = {
    "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "AUTH_RATE_LIMIT", "SOS_RATE_LIMIT",
    "MAX_REQUEST_BYTES", "ETA_SPEED_KMH", "ETA_ROAD_FACTOR", "RECOMMENDATION_COUNT", "LOG_LEVEL",
    "DB_CONN_MAX_AGE", "DB_POOL_MAX_SIZE", "CHANNEL_LAYER_CAPACITY", "CSRF_TRUSTED_ORIGINS", "WS_ALLOWED_ORIGINS",
    "DJANGO_SETTINGS_MODULE", "TEST_SQLITE_NAME",
    "HTTPS", "HSTS_SECONDS", "HSTS_INCLUDE_SUBDOMAINS", "HSTS_PRELOAD", "LOG_FORMAT", "METRICS_TOKEN",
    "DB_POOL_TIMEOUT_S", "DB_CONNECT_TIMEOUT_S", "DB_UNAVAILABLE_RETRY_AFTER_S", "STATIC_ROOT",
}
GOOD = {
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "SECRET_KEY": "settings-env-test-only-" + "z" * 40,
    "DEBUG": "0",
}
PASSWORD = "pw-never-echo-Xq7"  # not a secret; the test checks it is never printed

CASES = {
    # id: (overrides, variable the error must name); None as a value removes the variable.
    "database-url-unsupported-scheme": ({"DATABASE_URL": "mysql://app@db.example/onekey"}, "DATABASE_URL"),
    "database-url-not-a-url": ({"DATABASE_URL": "just some words"}, "DATABASE_URL"),
    "database-url-bad-port": ({"DATABASE_URL": f"postgres://app:{PASSWORD}@db.example:fivefour/onekey"}, "DATABASE_URL"),
    "redis-url-wrong-scheme": ({"REDIS_URL": f"http://:{PASSWORD}@cache.example:6379/0"}, "REDIS_URL"),
    "redis-url-bad-port": ({"REDIS_URL": f"redis://:{PASSWORD}@cache.example:sixthree/0"}, "REDIS_URL"),
    "redis-url-no-host": ({"REDIS_URL": "redis:///0"}, "REDIS_URL"),
    "redis-url-bad-db-number": ({"REDIS_URL": "redis://cache.example:6379/zero"}, "REDIS_URL"),
    "debug-not-a-boolean": ({"DEBUG": "maybe"}, "DEBUG"),
    "secret-key-missing-with-debug-off": ({"SECRET_KEY": None, "DEBUG": "0"}, "SECRET_KEY"),
    "secret-key-too-short": ({"SECRET_KEY": "short"}, "SECRET_KEY"),
    "allowed-hosts-empty": ({"ALLOWED_HOSTS": " , "}, "ALLOWED_HOSTS"),
    "auth-rate-limit-words": ({"AUTH_RATE_LIMIT": "lots"}, "AUTH_RATE_LIMIT"),
    "auth-rate-limit-zero": ({"AUTH_RATE_LIMIT": "0/min"}, "AUTH_RATE_LIMIT"),
    "sos-rate-limit-zero": ({"SOS_RATE_LIMIT": "0/hour"}, "SOS_RATE_LIMIT"),
    "max-request-bytes-text": ({"MAX_REQUEST_BYTES": "64k"}, "MAX_REQUEST_BYTES"),
    "eta-speed-zero": ({"ETA_SPEED_KMH": "0"}, "ETA_SPEED_KMH"),
    "recommendation-count-text": ({"RECOMMENDATION_COUNT": "five"}, "RECOMMENDATION_COUNT"),
    "log-level-unknown": ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
    "https-not-a-boolean": ({"HTTPS": "sometimes"}, "HTTPS"),
    "hsts-seconds-negative": ({"HSTS_SECONDS": "-1"}, "HSTS_SECONDS"),
    "log-format-unknown": ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
    "metrics-token-too-short": ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN"),
    "db-pool-timeout-text": ({"DB_POOL_TIMEOUT_S": "soon"}, "DB_POOL_TIMEOUT_S"),
    "db-connect-timeout-below-libpq-minimum": ({"DB_CONNECT_TIMEOUT_S": "1"}, "DB_CONNECT_TIMEOUT_S"),
    "db-retry-after-zero": ({"DB_UNAVAILABLE_RETRY_AFTER_S": "0"}, "DB_UNAVAILABLE_RETRY_AFTER_S"),
}
GOOD_CASES = {
    "defaults": {},
    "every-variable-well-formed": {
        "DATABASE_URL": "postgres://app@db.example:5432/onekey",
        "REDIS_URL": "redis://cache.example:6379/3",
        "AUTH_RATE_LIMIT": "5/minute",
        "SOS_RATE_LIMIT": "30/hour",
        "ALLOWED_HOSTS": "one.example, two.example",
        "LOG_LEVEL": "warning",
        "ETA_SPEED_KMH": "40.5",
    },
    "debug-on": {"DEBUG": "1"},
    "plain-http-and-operations": {
        "HTTPS": "0",
        "LOG_FORMAT": "plain",
        "METRICS_TOKEN": "m" * 32,
        "DB_POOL_TIMEOUT_S": "1.5",
        "DB_CONNECT_TIMEOUT_S": "3",
        "STATIC_ROOT": "static-files-somewhere",
    },
}


def start(overrides: dict[str, str | None]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in CONTROLLED}
    env.update(GOOD)
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    code = "import django; django.setup(); from django.conf import settings; print('ok', settings.DEBUG)"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def results() -> dict[str, subprocess.CompletedProcess]:
    jobs = {**{k: v for k, (v, _) in CASES.items()}, **{f"good:{k}": v for k, v in GOOD_CASES.items()}}
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = {name: pool.submit(start, overrides) for name, overrides in jobs.items()}
        return {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("case", list(CASES))
def test_it_refuses_to_start_on_a_bad_value_naming_the_variable(results, case):
    _, variable = CASES[case]
    result = results[case]
    assert result.returncode != 0, result.stdout
    assert "ok" not in result.stdout
    assert variable in result.stderr, result.stderr[-2000:]
    assert "ImproperlyConfigured" in result.stderr
    assert PASSWORD not in result.stderr + result.stdout


@pytest.mark.parametrize("case", list(GOOD_CASES))
def test_it_starts_on_good_values(results, case):
    result = results[f"good:{case}"]
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("ok")


def test_it_turns_debug_on_only_when_asked(results):
    assert results["good:defaults"].stdout.strip() == "ok False"
    assert results["good:debug-on"].stdout.strip() == "ok True"


@pytest.mark.parametrize(
    "value, expected",
    [("1", True), ("true", True), ("Yes", True), ("on", True), ("0", False), ("false", False), ("off", False), ("", False)],
)
def test_it_reads_the_usual_spellings_of_a_boolean(monkeypatch, value, expected):
    from config.env import env_bool

    monkeypatch.setenv("ONEKEY_TEST_FLAG", value)
    assert env_bool("ONEKEY_TEST_FLAG", not expected) is expected


def test_it_reads_a_comma_separated_list_without_blanks(monkeypatch):
    from config.env import env_list

    monkeypatch.setenv("ONEKEY_TEST_LIST", " a.example ,b.example,, ")
    assert env_list("ONEKEY_TEST_LIST", []) == ["a.example", "b.example"]
