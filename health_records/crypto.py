"""Envelope encryption of health archives (AES-256-GCM, ``cryptography``).

Every write of an archive draws a fresh random 256-bit data key (DEK) and a 96-bit nonce and
encrypts the canonical JSON of the archive with AES-256-GCM. The associated data binds the
ciphertext to its row: the archive id and the version number. A ciphertext copied into another
row (another archive, or another version of the same one) fails authentication.

The DEK is stored wrapped: AES-256-GCM under a key-encryption key (KEK) named by id, with the
archive id and the KEK id as associated data, so a wrapped key moved to another row, or relabelled
with another key id, fails too. ``wrapped_key`` = 12-byte nonce || 32-byte encrypted DEK || tag.
Rotation re-wraps the DEK under the newest KEK without touching the ciphertext.

Failures are loud: an unknown (missing or revoked) KEK id, a wrong key, an altered or moved row
raise an ``ArchiveCryptoError`` and log a CRITICAL alarm that names the archive and key id and
carries no health data. Nothing here ever returns ciphertext or an empty archive in place of the
real one.
"""

from __future__ import annotations

import functools
import logging
import os
import time
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from health_records import keys

alarm = logging.getLogger("health_records.alarm")

NONCE_BYTES = 12
WRAPPED_KEY_BYTES = NONCE_BYTES + keys.KEY_BYTES + 16
MAX_PLAINTEXT_BYTES = 256 * 1024

_DATA_AAD = b"onekey120/archive/v1|"
_KEY_AAD = b"onekey120/dek/v1|"


class ArchiveCryptoError(Exception):
    """A health archive could not be decrypted. Never shown to a user as data."""

    code = "archive_crypto_error"

    def __init__(self, message: str, *, archive_id=None, kek_id: str | None = None):
        super().__init__(message)
        self.archive_id = archive_id
        self.kek_id = kek_id


class KeyUnavailable(ArchiveCryptoError):
    """The row names a KEK id this process does not have: missing from HEALTH_KEYS, or revoked."""

    code = "key_unavailable"


class ArchiveTampered(ArchiveCryptoError):
    """Authentication failed: a wrong key under a known id, an altered row, or a row moved elsewhere."""

    code = "archive_tampered"


@dataclass(frozen=True)
class Sealed:
    ciphertext: bytes
    nonce: bytes
    wrapped_key: bytes
    kek_id: str


def new_archive_id() -> uuid.UUID:
    """A time-ordered random id (the layout of RFC 9562 UUIDv7: 48-bit Unix milliseconds, then
    74 random bits). New rows land at the right edge of the primary-key index instead of on a
    random page, which keeps bulk imports of millions of archives fast; the id is still
    unguessable."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return uuid.UUID(int=value)


def _uuid(archive_id) -> uuid.UUID:
    return archive_id if isinstance(archive_id, uuid.UUID) else uuid.UUID(str(archive_id))


def _id_bytes(archive_id) -> bytes:
    return _uuid(archive_id).bytes


def data_aad(archive_id, version: int) -> bytes:
    return _DATA_AAD + _id_bytes(archive_id) + int(version).to_bytes(8, "big")


def key_aad(archive_id, kek_id: str) -> bytes:
    return _KEY_AAD + kek_id.encode() + b"|" + _id_bytes(archive_id)


def encode(data: dict[str, Any]) -> bytes:
    """Canonical JSON (UTF-8, sorted keys, no spaces): the same archive always gives the same
    bytes, which the content MAC relies on."""
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


def decode(plaintext: bytes) -> dict[str, Any]:
    return orjson.loads(plaintext)


def _raise(exc: ArchiveCryptoError) -> None:
    alarm.critical(
        "HEALTH ARCHIVE ALARM %s: %s (archive=%s kek=%s)", exc.code, exc, exc.archive_id, exc.kek_id
    )
    raise exc


def _kek(ring: keys.Keyring, kek_id: str, archive_id) -> AESGCM:
    kek = ring.keks.get(kek_id)
    if kek is None:
        _raise(
            KeyUnavailable(
                f"the data key is wrapped by key {kek_id!r}, which is not in HEALTH_KEYS "
                f"(missing or revoked); live keys: {', '.join(ring.ids)}",
                archive_id=archive_id,
                kek_id=kek_id,
            )
        )
    return kek


def wrap_key(
    dek: bytes, *, archive_id, ring: keys.Keyring | None = None, nonce: bytes | None = None
) -> tuple[bytes, str]:
    ring = ring or keys.keyring()
    kek_id = ring.primary_id
    nonce = nonce or os.urandom(NONCE_BYTES)
    return nonce + ring.keks[kek_id].encrypt(nonce, dek, key_aad(archive_id, kek_id)), kek_id


def unwrap_key(wrapped_key: bytes, *, kek_id: str, archive_id, ring: keys.Keyring | None = None) -> bytes:
    ring = ring or keys.keyring()
    kek = _kek(ring, kek_id, archive_id)
    wrapped_key = bytes(wrapped_key)
    if len(wrapped_key) != WRAPPED_KEY_BYTES:
        _raise(ArchiveTampered("the wrapped data key has the wrong length", archive_id=archive_id, kek_id=kek_id))
    try:
        return kek.decrypt(wrapped_key[:NONCE_BYTES], wrapped_key[NONCE_BYTES:], key_aad(archive_id, kek_id))
    except InvalidTag:
        _raise(
            ArchiveTampered(
                f"the data key does not unwrap under key {kek_id!r}: a wrong key under that id, "
                "or the row was altered or moved from another archive",
                archive_id=archive_id,
                kek_id=kek_id,
            )
        )


def seal(plaintext: bytes, *, archive_id, version: int, ring: keys.Keyring | None = None) -> Sealed:
    """Encrypt one version of an archive under a fresh data key."""
    if len(plaintext) > MAX_PLAINTEXT_BYTES:
        raise ValueError(f"archive plaintext is {len(plaintext)} bytes; the limit is {MAX_PLAINTEXT_BYTES}")
    # One read of the OS random source: a 256-bit data key and two 96-bit nonces.
    fresh = os.urandom(keys.KEY_BYTES + 2 * NONCE_BYTES)
    dek, nonce, key_nonce = fresh[: keys.KEY_BYTES], fresh[keys.KEY_BYTES : -NONCE_BYTES], fresh[-NONCE_BYTES:]
    ciphertext = AESGCM(dek).encrypt(nonce, plaintext, data_aad(archive_id, version))
    wrapped, kek_id = wrap_key(dek, archive_id=archive_id, ring=ring, nonce=key_nonce)
    return Sealed(ciphertext=ciphertext, nonce=nonce, wrapped_key=wrapped, kek_id=kek_id)


# Unwrapped data keys of this process's keyring, ready to decrypt. Safe to keep because a hit is
# only ever the exact input that already unwrapped (authenticated) under that keyring: the key of
# the cache is the KEK id, the archive id and the wrapped bytes, so a re-wrap (rotation) or an
# altered row misses and is unwrapped (and checked) afresh; the archive's own ciphertext is still
# authenticated on every read. A KEK dropped from HEALTH_KEYS ends its entries: the live ids are
# checked before the cache, and keys.reset_keyring() (a reload of the keys) empties it. Bounded,
# and no more exposure than the KEKs the same memory holds. Only the process keyring's: a
# keyring passed in (rotation, tests) always unwraps.
_DATA_CIPHERS_MAX = 4096


@functools.lru_cache(maxsize=_DATA_CIPHERS_MAX)
def _data_cipher(kek_id: str, archive_id: uuid.UUID, wrapped_key: bytes) -> AESGCM:
    return AESGCM(unwrap_key(wrapped_key, kek_id=kek_id, archive_id=archive_id, ring=keys.keyring()))


def forget_data_keys() -> None:
    """Empty the cache of unwrapped data keys (called whenever the keyring is reloaded)."""
    _data_cipher.cache_clear()


def open_sealed(
    *, ciphertext: bytes, nonce: bytes, wrapped_key: bytes, kek_id: str, archive_id, version: int,
    ring: keys.Keyring | None = None,
) -> bytes:
    """Decrypt one version of an archive, or raise ArchiveCryptoError (and log the alarm)."""
    if ring is None:
        _kek(keys.keyring(), kek_id, archive_id)  # a revoked key refuses, cached or not
        cipher = _data_cipher(kek_id, _uuid(archive_id), bytes(wrapped_key))
    else:
        cipher = AESGCM(unwrap_key(wrapped_key, kek_id=kek_id, archive_id=archive_id, ring=ring))
    try:
        return cipher.decrypt(bytes(nonce), bytes(ciphertext), data_aad(archive_id, version))
    except (InvalidTag, ValueError):
        _raise(
            ArchiveTampered(
                f"version {version} fails authentication: the ciphertext was altered, "
                "or moved here from another archive or version",
                archive_id=archive_id,
                kek_id=kek_id,
            )
        )


def rewrap(wrapped_key: bytes, *, kek_id: str, archive_id, ring: keys.Keyring | None = None) -> tuple[bytes, str]:
    """The same data key, wrapped under the primary KEK. The ciphertext does not change."""
    ring = ring or keys.keyring()
    dek = unwrap_key(wrapped_key, kek_id=kek_id, archive_id=archive_id, ring=ring)
    return wrap_key(dek, archive_id=archive_id, ring=ring)
