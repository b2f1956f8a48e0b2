"""Reading configuration from the environment, failing loudly on bad values.

Every reader names the variable in its error, so a typo in a deployment is a one-line fix
instead of a silent default.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_RATE = re.compile(r"^\d+/(s|sec|second|m|min|minute|h|hour|d|day)$")


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None else value


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean; use 1/0, true/false, yes/no or on/off")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number") from None
    if minimum is not None and number < minimum or maximum is not None and number > maximum:
        raise ImproperlyConfigured(f"{name}={number} is out of range [{minimum}, {maximum}]")
    return number


def env_float(name: str, default: float, *, minimum: float, maximum: float) -> float:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number") from None
    if not (minimum <= number <= maximum):
        raise ImproperlyConfigured(f"{name}={number} is out of range [{minimum}, {maximum}]")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    items = [item.strip() for item in value.split(",") if item.strip()]
    if not items:
        raise ImproperlyConfigured(f"{name} is set but empty; give a comma-separated list")
    return items


def env_rate(name: str, default: str) -> str:
    """A DRF throttle rate such as ``20/min``."""
    value = os.environ.get(name, default).strip()
    if not _RATE.match(value):
        raise ImproperlyConfigured(f"{name}={value!r} is not a rate like '20/min' (number/s|min|hour|day)")
    if int(value.split("/", 1)[0]) < 1:
        raise ImproperlyConfigured(f"{name}={value!r} would refuse every request; allow at least 1")
    return value


_LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


def env_log_level(name: str, default: str) -> str:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    level = value.strip().upper()
    if level not in _LOG_LEVELS:
        raise ImproperlyConfigured(f"{name}={value!r} is not a log level; use one of {', '.join(_LOG_LEVELS)}")
    return level


def redis_url(name: str) -> str | None:
    """A Redis URL, checked now rather than at the first connection. Errors never echo the URL:
    it may carry a password."""
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    parsed = urlparse(value.strip())
    if parsed.scheme not in {"redis", "rediss", "unix"}:
        raise ImproperlyConfigured(f"{name} must start with redis://, rediss:// or unix:// (got scheme {parsed.scheme!r})")
    try:
        parsed.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise ImproperlyConfigured(f"{name} has a port that is not a number") from None
    if parsed.scheme == "unix":
        if not parsed.path:
            raise ImproperlyConfigured(f"{name} names no socket path (unix:///path/to/redis.sock)")
    else:
        if not parsed.hostname:
            raise ImproperlyConfigured(f"{name} names no host (redis://host:6379/0)")
        database = parsed.path.strip("/")
        if database and not database.isdigit():
            raise ImproperlyConfigured(f"{name} database must be a number (redis://host:6379/0)")
    return value.strip()
