"""Where the health keys come from: the environment, and nowhere else in production.

``HEALTH_KEYS``             ``id1:base64key,id2:base64key`` - key-encryption keys (KEKs), 32 bytes each.
                            Several may be live at once so that a rotation re-wraps data keys
                            without downtime. The newest is ``HEALTH_KEY_PRIMARY`` or, when that
                            is unset, the last one listed. New data keys are wrapped by it.
``HEALTH_KEY_PRIMARY``      optional: the id (from HEALTH_KEYS) that wraps new data keys.
``HEALTH_BLIND_INDEX_KEY``  base64, 32 bytes: the HMAC key of the lookup indexes (national ID,
                            phone). Its own key, never a KEK: it cannot be rotated by re-wrapping.
``ACCESS_LOG_HMAC_KEY``     base64, 32 bytes: the key of the access log's HMAC chain. Someone who can
                            write to the database but lacks it cannot recompute a rewritten chain.
``ACCESS_LOG_SIGNING_KEY``  base64, the raw 32-byte Ed25519 private key that signs access-log
                            checkpoints (files outside the database; see audit.py).
``ACCESS_LOG_VERIFY_KEY``   optional, base64 raw 32-byte Ed25519 public key: lets an auditor's process
                            verify checkpoints without the signing key (set it alone, without
                            ACCESS_LOG_SIGNING_KEY). When both are set they must be a pair.

Rotation without downtime, on every worker in turn:
1. ``HEALTH_KEYS=old:...,new:...`` with ``HEALTH_KEY_PRIMARY=old`` (every worker can read both);
2. ``HEALTH_KEY_PRIMARY=new`` (new writes are wrapped by the new key);
3. ``manage.py rotate_health_keys`` (re-wraps the rest; resumable; ``--check`` shows what is left);
4. drop ``old`` from ``HEALTH_KEYS``. A row still wrapped by a dropped key is a loud error.

With DEBUG on and a variable unset, a development value is read from (or generated once into)
``<BASE_DIR>/.secrets/health-keys.json`` (the access log's: ``.secrets/access-log-keys.json``), a
git-ignored file. With DEBUG off, an unset variable is refused at start (``HealthRecordsConfig.ready``). A malformed value is always refused, with a
message that names the variable.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PrivateFormat, PublicFormat, NoEncryption
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

KEYS_VAR = "HEALTH_KEYS"
PRIMARY_VAR = "HEALTH_KEY_PRIMARY"
BLIND_VAR = "HEALTH_BLIND_INDEX_KEY"
DEV_FILE_NAME = "health-keys.json"
LOG_HMAC_VAR = "ACCESS_LOG_HMAC_KEY"
LOG_SIGNING_VAR = "ACCESS_LOG_SIGNING_KEY"
LOG_VERIFY_VAR = "ACCESS_LOG_VERIFY_KEY"
LOG_DEV_FILE_NAME = "access-log-keys.json"

KEY_BYTES = 32
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,32}$")


@dataclass(frozen=True)
class Keyring:
    """The live keys of this process. ``keks`` maps a key id to its AES-GCM cipher."""

    keks: dict[str, AESGCM] = field(repr=False)
    primary_id: str
    blind_index_key: bytes = field(repr=False)
    source: str  # "environment" or the path of the development key file

    @property
    def ids(self) -> list[str]:
        return list(self.keks)


def _decode_key(value: str, *, variable: str, what: str, kind: str = "AES-256") -> bytes:
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ImproperlyConfigured(f"{variable}: {what} is not valid base64") from None
    if len(raw) != KEY_BYTES:
        raise ImproperlyConfigured(
            f"{variable}: {what} must decode to {KEY_BYTES} bytes ({kind}), got {len(raw)}; "
            f"make one with: python -c \"import base64,os;print(base64.b64encode(os.urandom(32)).decode())\""
        )
    return raw


def parse_keks(value: str, primary: str | None = None) -> tuple[dict[str, bytes], str]:
    """Parse ``HEALTH_KEYS`` (and ``HEALTH_KEY_PRIMARY``). Raises ImproperlyConfigured naming the variable."""
    keks: dict[str, bytes] = {}
    items = [item.strip() for item in value.split(",") if item.strip()]
    if not items:
        raise ImproperlyConfigured(f"{KEYS_VAR} is set but empty; give 'id:base64key[,id2:base64key]'")
    for position, item in enumerate(items, start=1):
        key_id, sep, encoded = item.partition(":")
        key_id = key_id.strip()
        if not sep or not encoded.strip():
            raise ImproperlyConfigured(f"{KEYS_VAR}: entry {position} is not 'id:base64key'")
        if not _KEY_ID.match(key_id):
            raise ImproperlyConfigured(
                f"{KEYS_VAR}: entry {position} has a bad key id; use 1-32 of A-Z a-z 0-9 . _ -"
            )
        if key_id in keks:
            raise ImproperlyConfigured(f"{KEYS_VAR}: key id {key_id!r} is listed twice")
        keks[key_id] = _decode_key(encoded, variable=KEYS_VAR, what=f"key {key_id!r}")
    if primary is not None and primary.strip():
        primary = primary.strip()
        if primary not in keks:
            raise ImproperlyConfigured(f"{PRIMARY_VAR}={primary!r} is not one of the ids in {KEYS_VAR}")
        return keks, primary
    return keks, list(keks)[-1]


def _dev_file(path: Path, generate) -> dict:
    """A development key file, generated on first use (race-safe: the first writer wins)."""
    if not path.exists():
        path.parent.mkdir(mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(generate(), handle, indent=2)
            os.chmod(tmp, 0o600)
            try:
                os.link(tmp, path)  # fails if another process created it first: then use theirs
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
    try:
        values = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ImproperlyConfigured(f"development key file {path} is unreadable: {exc}") from None
    if not isinstance(values, dict):
        raise ImproperlyConfigured(f"development key file {path} must hold a JSON object")
    return values


def _dev_values(base_dir: Path) -> dict[str, str]:
    """Development keys from the git-ignored file, generated on first use (race-safe)."""
    path = Path(base_dir) / ".secrets" / DEV_FILE_NAME
    values = _dev_file(path, lambda: {
        KEYS_VAR: "dev1:" + base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode(),
        BLIND_VAR: base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode(),
    })
    if not isinstance(values.get(KEYS_VAR), str) or not isinstance(values.get(BLIND_VAR), str):
        raise ImproperlyConfigured(f"development key file {path} must hold {KEYS_VAR} and {BLIND_VAR}")
    return values


def load_keyring(environ=None, *, debug: bool | None = None, base_dir: Path | None = None) -> Keyring:
    """Read and check every key. Raises ImproperlyConfigured naming the variable at fault."""
    environ = os.environ if environ is None else environ
    debug = settings.DEBUG if debug is None else debug
    base_dir = Path(settings.BASE_DIR) if base_dir is None else base_dir
    keks_value = environ.get(KEYS_VAR)
    blind_value = environ.get(BLIND_VAR)
    source = "environment"
    missing = [name for name, value in ((KEYS_VAR, keks_value), (BLIND_VAR, blind_value)) if value is None]
    if missing:
        if not debug:
            raise ImproperlyConfigured(
                f"{' and '.join(missing)} must be set when DEBUG is off: health archives are encrypted with "
                f"keys from the environment (see README: health keys). Development (DEBUG=1) generates them "
                f"into .secrets/{DEV_FILE_NAME}."
            )
        dev = _dev_values(base_dir)
        keks_value = dev[KEYS_VAR] if keks_value is None else keks_value
        blind_value = dev[BLIND_VAR] if blind_value is None else blind_value
        source = str(Path(base_dir) / ".secrets" / DEV_FILE_NAME)
    keks, primary = parse_keks(keks_value, environ.get(PRIMARY_VAR))
    blind = _decode_key(blind_value, variable=BLIND_VAR, what="the key")
    if blind in keks.values():
        raise ImproperlyConfigured(f"{BLIND_VAR} must be its own key, not one of {KEYS_VAR}")
    return Keyring(
        keks={key_id: AESGCM(raw) for key_id, raw in keks.items()},
        primary_id=primary,
        blind_index_key=blind,
        source=source,
    )


class _LoadedOnce:
    """A value read from the environment once per process (the environment does not change under a
    process), with a reset for tests and key rotation."""

    def __init__(self, load):
        self._load = load
        self._value = None
        self._lock = threading.Lock()

    def get(self):
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._load()
                value = self._value
        return value

    def reset(self) -> None:
        with self._lock:
            self._value = None


_keyring = _LoadedOnce(lambda: load_keyring())


def keyring() -> Keyring:
    """The process's keyring, loaded once."""
    return _keyring.get()


def reset_keyring() -> None:
    """Forget the loaded keys (the access log's too) so the next use reads the environment again."""
    _keyring.reset()
    _log_keys.reset()
    from health_records import blind_index, crypto

    blind_index.reset_cache()
    crypto.forget_data_keys()


# --- the access log's keys ---------------------------------------------------------------------


@dataclass(frozen=True)
class AccessLogKeys:
    """``hmac_key`` chains the entries; ``signing_key`` (None in a verify-only process) signs
    checkpoints, ``verify_key`` checks them."""

    hmac_key: bytes = field(repr=False)
    signing_key: Ed25519PrivateKey | None = field(repr=False)
    verify_key: Ed25519PublicKey = field(repr=False)
    source: str


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_key_text(key: Ed25519PublicKey) -> str:
    """The base64 form of ACCESS_LOG_VERIFY_KEY for this public key."""
    return base64.b64encode(_raw_public(key)).decode()


def _dev_log_values(base_dir: Path) -> dict[str, str]:
    path = Path(base_dir) / ".secrets" / LOG_DEV_FILE_NAME
    values = _dev_file(path, lambda: {
        LOG_HMAC_VAR: base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode(),
        LOG_SIGNING_VAR: base64.b64encode(
            Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        ).decode(),
    })
    if not isinstance(values.get(LOG_HMAC_VAR), str) or not isinstance(values.get(LOG_SIGNING_VAR), str):
        raise ImproperlyConfigured(f"development key file {path} must hold {LOG_HMAC_VAR} and {LOG_SIGNING_VAR}")
    return values


def load_access_log_keys(environ=None, *, debug: bool | None = None, base_dir: Path | None = None) -> AccessLogKeys:
    """Read and check the access log's keys. Raises ImproperlyConfigured naming the variable at fault."""
    environ = os.environ if environ is None else environ
    debug = settings.DEBUG if debug is None else debug
    base_dir = Path(settings.BASE_DIR) if base_dir is None else base_dir
    hmac_value = environ.get(LOG_HMAC_VAR)
    signing_value = environ.get(LOG_SIGNING_VAR)
    verify_value = environ.get(LOG_VERIFY_VAR)
    source = "environment"
    missing = [LOG_HMAC_VAR] if hmac_value is None else []
    if signing_value is None and verify_value is None:
        missing.append(LOG_SIGNING_VAR)
    if missing:
        if not debug:
            raise ImproperlyConfigured(
                f"{' and '.join(missing)} must be set when DEBUG is off: the access log is chained and its "
                f"checkpoints signed with keys from the environment (a verify-only auditor sets "
                f"{LOG_VERIFY_VAR} instead of {LOG_SIGNING_VAR}). Development (DEBUG=1) generates them into "
                f".secrets/{LOG_DEV_FILE_NAME}."
            )
        dev = _dev_log_values(base_dir)
        hmac_value = dev[LOG_HMAC_VAR] if hmac_value is None else hmac_value
        if signing_value is None and verify_value is None:
            signing_value = dev[LOG_SIGNING_VAR]
        source = str(Path(base_dir) / ".secrets" / LOG_DEV_FILE_NAME)
    hmac_key = _decode_key(hmac_value, variable=LOG_HMAC_VAR, what="the key", kind="HMAC-SHA256")
    signing_key = None
    if signing_value is not None:
        signing_key = Ed25519PrivateKey.from_private_bytes(
            _decode_key(signing_value, variable=LOG_SIGNING_VAR, what="the key", kind="raw Ed25519 private key")
        )
    verify_key = signing_key.public_key() if signing_key is not None else None
    if verify_value is not None:
        raw = _decode_key(verify_value, variable=LOG_VERIFY_VAR, what="the key", kind="raw Ed25519 public key")
        if verify_key is not None and _raw_public(verify_key) != raw:
            raise ImproperlyConfigured(f"{LOG_VERIFY_VAR} is not the public half of {LOG_SIGNING_VAR}")
        try:
            verify_key = Ed25519PublicKey.from_public_bytes(raw)
        except ValueError:
            raise ImproperlyConfigured(f"{LOG_VERIFY_VAR} is not a valid Ed25519 public key") from None
    return AccessLogKeys(hmac_key=hmac_key, signing_key=signing_key, verify_key=verify_key, source=source)


_log_keys = _LoadedOnce(lambda: load_access_log_keys())


def access_log_keys() -> AccessLogKeys:
    """The process's access-log keys, loaded once."""
    return _log_keys.get()


def access_log_hmac_key() -> bytes:
    return access_log_keys().hmac_key


def reset_access_log_keys() -> None:
    _log_keys.reset()
