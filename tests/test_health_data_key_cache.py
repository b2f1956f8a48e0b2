"""A worker unwraps an archive's data key once, not on every read, and never keeps one past what
makes it valid: a rotation's re-wrap, a key removed from HEALTH_KEYS, an altered row."""

from __future__ import annotations

import base64
import os

import pytest

from health_records import crypto, services
from health_records.models import Archive
from tests.support.archives import sample_archive

OLD = os.environ["HEALTH_KEYS"]  # "t1:..."
NEW_KEY = base64.b64encode(b"n" * 32).decode()


@pytest.fixture
def unwraps(monkeypatch):
    """The KEK ids of every data key unwrapped during the test, in order."""
    crypto.forget_data_keys()
    seen: list[str] = []
    real = crypto.unwrap_key

    def counting(wrapped_key, *, kek_id, archive_id, ring=None):
        seen.append(kek_id)
        return real(wrapped_key, kek_id=kek_id, archive_id=archive_id, ring=ring)

    monkeypatch.setattr(crypto, "unwrap_key", counting)
    yield seen
    crypto.forget_data_keys()


@pytest.fixture
def owner(citizen):
    services.archive_put(owner=citizen, data=sample_archive())
    return citizen


def test_it_unwraps_the_data_key_once_for_repeated_reads(owner, unwraps):
    for _ in range(3):
        assert services.archive_get_own(owner=owner)["name"]
    assert unwraps == ["t1"]


def test_it_unwraps_afresh_once_a_rotation_rewrapped_the_key(owner, unwraps, keyring_env):
    services.archive_get_own(owner=owner)
    keyring_env(HEALTH_KEYS=f"{OLD},t2:{NEW_KEY}")
    services.rotate_keys()
    keyring_env(HEALTH_KEYS=f"t2:{NEW_KEY}")  # the old key retired after the rotation
    assert services.archive_get_own(owner=owner)["name"]
    assert unwraps[0] == "t1" and unwraps[-1] == "t2"


def test_it_refuses_a_key_that_was_cached_once_its_kek_is_removed(owner, unwraps, keyring_env):
    services.archive_get_own(owner=owner)
    keyring_env(HEALTH_KEYS=f"t2:{NEW_KEY}")  # removed without a rotation
    with pytest.raises(crypto.KeyUnavailable):
        services.archive_get_own(owner=owner)


def test_it_caches_nothing_for_an_altered_wrapped_key(owner, unwraps):
    archive = Archive.objects.get(owner=owner)
    wrapped = bytearray(archive.wrapped_key)
    wrapped[-1] ^= 1
    Archive.objects.filter(pk=archive.pk).update(wrapped_key=bytes(wrapped))
    for _ in range(2):
        with pytest.raises(crypto.ArchiveTampered):
            services.archive_get_own(owner=owner)
    assert unwraps == ["t1", "t1"]  # tried, and refused, every time
