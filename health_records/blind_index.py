"""Lookup without plaintext: keyed HMAC-SHA256 "blind indexes" of the national ID and the phone.

An archive is found by ``national_id_bidx = HMAC(K, "nid:" + id)`` or ``phone_bidx = HMAC(K,
"phone:" + phone)``, never by a plaintext column. ``K`` is ``HEALTH_BLIND_INDEX_KEY``, its own key:
without it the indexes cannot be brute-forced from the (small) space of phone numbers or IDs.

A third value, the content MAC, is an HMAC of the canonical plaintext under a key derived from K.
It lets an import tell "same archive again" from "changed" without decrypting, which is what
makes a re-run idempotent and cheap.
"""

from __future__ import annotations

import hashlib
import hmac

from config.phones import strip_mobile_prefix
from health_records import keys

_NID_DOMAIN = b"onekey120/bidx/nid/v1:"
_PHONE_DOMAIN = b"onekey120/bidx/phone/v1:"
_CONTENT_INFO = b"onekey120/content-mac/v1"

_cache: dict[str, bytes] = {}


def reset_cache() -> None:
    _cache.clear()


def _key() -> bytes:
    key = _cache.get("bidx")
    if key is None:
        key = _cache["bidx"] = keys.keyring().blind_index_key
    return key


def _content_key() -> bytes:
    key = _cache.get("content")
    if key is None:
        # HKDF-Expand with a single block is HMAC(K, info || 0x01).
        key = _cache["content"] = hmac.digest(_key(), _CONTENT_INFO + b"\x01", "sha256")
    return key


def _mac(name: str, key, message: bytes) -> bytes:
    # A keyed HMAC state, copied per message: the key schedule is done once, not per call.
    state = _cache.get(name)
    if state is None:
        state = _cache[name] = hmac.new(key(), digestmod=hashlib.sha256)
    copy = state.copy()
    copy.update(message)
    return copy.digest()


def normalize_national_id(value: str) -> str:
    return value.strip().upper()


def normalize_phone(value: str) -> str:
    """Digits only, without the +86 / 0086 country prefix of a mainland mobile."""
    return strip_mobile_prefix(value)


def national_id_index(national_id: str | None) -> bytes | None:
    if not national_id:
        return None
    return _mac("nid", _key, _NID_DOMAIN + normalize_national_id(national_id).encode())


def phone_index(phone: str | None) -> bytes | None:
    if not phone:
        return None
    return _mac("phone", _key, _PHONE_DOMAIN + normalize_phone(phone).encode())


def content_mac(plaintext: bytes) -> bytes:
    return _mac("content_state", _content_key, plaintext)
