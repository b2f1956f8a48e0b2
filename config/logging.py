"""Log formatting for operators: one JSON object a line in production, plain text in development.

Logs leave the application (journald, a collector, a support ticket), so they must never carry
health data, tokens or passwords. Two guards: the settings keep the loggers that would print
request bodies or SQL parameters (``django.db.backends``) quiet, and ``RedactSecretsFilter``
scrubs anything shaped like a credential from every record before it is formatted.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timezone

# "Token abc...", "Bearer abc...", token=..., password=..., and the same keys inside JSON.
_SECRET_PATTERNS = [
    # A credential-shaped word (16+ token characters with a digit) after "Token"/"Bearer"; plain
    # words ("Token authentication failed") are left alone.
    re.compile(r"(?i)\b(token|bearer)(\s+)(?=[A-Za-z0-9._~+/=-]*\d)[A-Za-z0-9._~+/=-]{16,}"),
    re.compile(r"(?i)([\"']?(?:password|passwd|token|secret|authorization|api_key)[\"']?\s*[:=]\s*[\"']?)[^\"'\s,&}]+"),
]

# LogRecord attributes that are plumbing, not content; anything else a caller passed with
# ``extra=`` is carried into the JSON object.
_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def redact(text: str) -> str:
    text = _SECRET_PATTERNS[0].sub(lambda m: f"{m.group(1)}{m.group(2)}[redacted]", text)
    return _SECRET_PATTERNS[1].sub(lambda m: f"{m.group(1)}[redacted]", text)


class RedactSecretsFilter(logging.Filter):
    """Render the message once, scrub it, and freeze it, so no formatter can re-render the raw args."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call must not lose the record
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                if isinstance(value, (int, float, bool, type(None))):
                    entry[key] = value
                else:
                    entry[key] = redact(str(value))
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)
