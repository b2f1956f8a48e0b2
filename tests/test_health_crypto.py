"""Encryption at rest: envelope encryption, blind indexes, loud failures, and no plaintext anywhere."""

from __future__ import annotations

import base64
import json
import logging
import os
import uuid

import pytest
from django.conf import settings

from health_records import blind_index, crypto, fhir, keys, selectors, services
from health_records.models import Archive
from tests.support.archives import DISTINCTIVE, SAMPLE_NATIONAL_ID, URL, dump_database, needles, sample_archive
from tests.support.cast import api_client

OTHER_KEY = base64.b64encode(b"k" * 32).decode()
TEST_KEY = os.environ["HEALTH_KEYS"].split(":", 1)[1]


def _alarms(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == logging.CRITICAL and r.name == "health_records.alarm"]


def test_it_round_trips_an_archive_through_envelope_encryption():
    archive_id = uuid.uuid4()
    plaintext = crypto.encode(sample_archive())
    sealed = crypto.seal(plaintext, archive_id=archive_id, version=1)
    assert b"Zorblaxamine" not in sealed.ciphertext
    assert sealed.kek_id == "t1"
    assert len(sealed.nonce) == 12 and len(sealed.wrapped_key) == crypto.WRAPPED_KEY_BYTES
    opened = crypto.open_sealed(
        ciphertext=sealed.ciphertext, nonce=sealed.nonce, wrapped_key=sealed.wrapped_key,
        kek_id=sealed.kek_id, archive_id=archive_id, version=1,
    )
    assert crypto.decode(opened) == sample_archive()


def test_it_draws_a_fresh_data_key_and_nonce_for_every_write():
    archive_id = uuid.uuid4()
    one = crypto.seal(b"same", archive_id=archive_id, version=1)
    two = crypto.seal(b"same", archive_id=archive_id, version=1)
    assert one.nonce != two.nonce
    assert one.ciphertext != two.ciphertext
    assert one.wrapped_key != two.wrapped_key


def _sealed_kwargs(sealed, archive_id, version=1):
    return dict(
        ciphertext=sealed.ciphertext, nonce=sealed.nonce, wrapped_key=sealed.wrapped_key,
        kek_id=sealed.kek_id, archive_id=archive_id, version=version,
    )


def test_it_refuses_a_ciphertext_moved_to_another_archive(caplog):
    sealed = crypto.seal(b'{"a":1}', archive_id=uuid.uuid4(), version=1)
    with pytest.raises(crypto.ArchiveTampered):
        crypto.open_sealed(**_sealed_kwargs(sealed, uuid.uuid4()))
    assert _alarms(caplog)


def test_it_refuses_a_ciphertext_moved_to_another_version(caplog):
    archive_id = uuid.uuid4()
    sealed = crypto.seal(b'{"a":1}', archive_id=archive_id, version=1)
    with pytest.raises(crypto.ArchiveTampered):
        crypto.open_sealed(**_sealed_kwargs(sealed, archive_id, version=2))
    assert _alarms(caplog)


def test_it_refuses_a_tampered_ciphertext(caplog):
    archive_id = uuid.uuid4()
    sealed = crypto.seal(b'{"a":1}', archive_id=archive_id, version=1)
    flipped = bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:]
    with pytest.raises(crypto.ArchiveTampered):
        crypto.open_sealed(**{**_sealed_kwargs(sealed, archive_id), "ciphertext": flipped})
    assert _alarms(caplog)


def test_it_refuses_a_wrapped_key_relabelled_with_another_key_id(keyring_env, caplog):
    keyring_env(HEALTH_KEYS=f"t1:{TEST_KEY},t2:{OTHER_KEY}", HEALTH_KEY_PRIMARY="t1")
    archive_id = uuid.uuid4()
    sealed = crypto.seal(b'{"a":1}', archive_id=archive_id, version=1)
    with pytest.raises(crypto.ArchiveTampered):
        crypto.open_sealed(**{**_sealed_kwargs(sealed, archive_id), "kek_id": "t2"})


def test_it_refuses_a_data_key_whose_key_was_revoked(keyring_env, caplog):
    archive_id = uuid.uuid4()
    sealed = crypto.seal(b'{"a":1}', archive_id=archive_id, version=1)
    keyring_env(HEALTH_KEYS=f"t2:{OTHER_KEY}")
    with pytest.raises(crypto.KeyUnavailable, match="'t1'.*not in HEALTH_KEYS"):
        crypto.open_sealed(**_sealed_kwargs(sealed, archive_id))
    assert "key_unavailable" in _alarms(caplog)[0].getMessage()


def test_it_refuses_a_wrong_key_under_a_known_id(keyring_env, caplog):
    archive_id = uuid.uuid4()
    sealed = crypto.seal(b'{"a":1}', archive_id=archive_id, version=1)
    keyring_env(HEALTH_KEYS=f"t1:{OTHER_KEY}")
    with pytest.raises(crypto.ArchiveTampered):
        crypto.open_sealed(**_sealed_kwargs(sealed, archive_id))
    assert _alarms(caplog)


def test_it_stores_the_archive_only_as_ciphertext(citizen):
    services.archive_put(owner=citizen, data=sample_archive())
    row = Archive.objects.get(owner=citizen)
    stored = bytes(row.ciphertext) + bytes(row.wrapped_key) + bytes(row.claimed_national_id_bidx) + bytes(row.claimed_phone_bidx)
    for word in DISTINCTIVE:
        assert word.encode() not in stored


def test_it_finds_an_archive_by_national_id_or_phone_through_the_blind_index_only(citizen, keyring_env):
    # What a citizen typed is a claim (issue 6, item 7): found by an operator's search, never by archive_find.
    services.archive_put(owner=citizen, data=sample_archive())
    row = Archive.objects.get(owner=citizen)
    assert selectors.archives_matching(national_id=SAMPLE_NATIONAL_ID.lower()) == [row]  # normalised
    assert selectors.archives_matching(phone="+86 139-1234-0099") == [row]
    assert selectors.archives_matching(phone="13900000000") == []
    assert len(bytes(row.claimed_national_id_bidx)) == 32
    assert bytes(row.claimed_national_id_bidx) != bytes(row.claimed_phone_bidx)
    # The index is keyed: another blind-index key gives another index, so no one can precompute it.
    keyring_env(HEALTH_BLIND_INDEX_KEY=OTHER_KEY)
    assert blind_index.national_id_index(SAMPLE_NATIONAL_ID) != bytes(row.claimed_national_id_bidx)
    assert selectors.archives_matching(national_id=SAMPLE_NATIONAL_ID) == []


def test_it_refuses_a_row_swapped_to_another_archive_and_shows_the_owner_no_data(
    citizen, other_citizen, as_other_citizen, caplog
):
    services.archive_put(owner=citizen, data=sample_archive())
    services.archive_put(owner=other_citizen, data=sample_archive(name="Other Person", national_id=None, phone=None))
    source = Archive.objects.get(owner=citizen)
    Archive.objects.filter(owner=other_citizen).update(
        ciphertext=source.ciphertext, nonce=source.nonce, wrapped_key=source.wrapped_key, kek_id=source.kek_id
    )
    with pytest.raises(crypto.ArchiveTampered):
        services.archive_get_own(owner=other_citizen)
    response = as_other_citizen.get(URL)
    assert response.status_code == 503
    assert response.json()["code"] == "archive_unavailable"
    assert "Ouyang" not in response.content.decode() and "Zorblaxamine" not in response.content.decode()
    assert _alarms(caplog)


def test_it_refuses_a_tampered_row_instead_of_returning_an_empty_archive(citizen, as_citizen, caplog):
    services.archive_put(owner=citizen, data=sample_archive())
    row = Archive.objects.get(owner=citizen)
    tampered = bytes(row.ciphertext)[:-1] + bytes([bytes(row.ciphertext)[-1] ^ 0x80])
    Archive.objects.filter(pk=row.pk).update(ciphertext=tampered)
    response = as_citizen.get(URL)
    assert response.status_code == 503
    assert "name" not in response.json()
    assert _alarms(caplog)


def test_it_refuses_to_read_an_archive_whose_key_is_missing(citizen, as_citizen, keyring_env, caplog):
    services.archive_put(owner=citizen, data=sample_archive())
    keyring_env(HEALTH_KEYS=f"t9:{OTHER_KEY}")
    with pytest.raises(crypto.KeyUnavailable):
        services.archive_get_own(owner=citizen)
    assert as_citizen.get(URL).status_code == 503


# --- nothing in plaintext, anywhere ----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_it_leaves_no_archive_word_in_a_database_dump_or_the_logs(
    citizen, other_citizen, dispatcher, crew, caplog, capfd, tmp_path
):
    caplog.set_level(logging.DEBUG)
    as_citizen = api_client(citizen)
    assert as_citizen.put(URL, sample_archive(), format="json").status_code == 201
    assert as_citizen.put(URL, sample_archive(consent_share_with_120=True, notes="Flowerpot-Marigold again"), format="json").status_code == 200
    assert as_citizen.get(URL).json()["name"].endswith("Ouyang Qingfeng")
    services.grant_open(case_ref="case:42", grantee=dispatcher, role="dispatcher", patient=citizen, purpose="triage")
    services.grant_open(case_ref="case:42", grantee=crew, role="crew", patient=citizen, purpose="treatment")
    summary = services.archive_read_for_grant(patient=citizen, reader=dispatcher, case_ref="case:42", purpose="triage")
    assert summary["allergies"][0]["substance"] == "Zorblaxamine"
    services.archive_read_for_grant(patient=citizen, reader=crew, case_ref="case:42", purpose="treatment")
    assert "Zorblaxamine" in json.dumps(fhir.bundle_for_summary(summary))
    with pytest.raises(services.AccessDenied):
        services.archive_read_for_grant(patient=citizen, reader=crew, case_ref="case:43", purpose="treatment")
    assert as_citizen.get("/api/v1/me/health-archive/access-log").json()["entries"]
    services.grants_close(case_ref="case:42")

    dump = dump_database(tmp_path)
    assert b"case:42" in dump and b"dispatcher1" in dump  # the dump is real: it holds the log entries
    out, err = capfd.readouterr()
    logs = (caplog.text + out + err).encode()
    assert b"health archive" in logs  # and the logs were captured
    for needle in needles():
        assert needle not in dump, f"{needle!r} found in the database dump"
        assert needle not in logs, f"{needle!r} found in the log output"


def test_it_uses_the_test_keys_from_tests_settings():
    # Guard for the suite itself: the keys come from the environment, never from a dev file.
    assert keys.keyring().source == "environment"
    assert settings.DEBUG is False


def test_it_lets_an_operator_find_an_archive_in_the_admin_without_seeing_its_contents(admin_client, citizen):
    # By POST, so the identifier never enters a URL (issue 6, item 12; see tests/test_archive_claims.py).
    services.archive_put(owner=citizen, data=sample_archive())
    archive = Archive.objects.get(owner=citizen)
    for term in (SAMPLE_NATIONAL_ID, "139 1234 0099"):
        response = admin_client.post("/admin/health_records/archive/find/", {"identifier": term})
        assert response["Location"] == f"/admin/health_records/archive/{archive.pk}/change/", term
    assert str(archive.pk) in admin_client.get("/admin/health_records/archive/", {"q": str(archive.pk)}).content.decode()
    assert str(archive.pk) not in admin_client.get("/admin/health_records/archive/", {"q": SAMPLE_NATIONAL_ID}).content.decode()
    assert admin_client.get("/admin/health_records/archive/", {"q": "not an id"}).status_code == 200
    detail = admin_client.get(f"/admin/health_records/archive/{archive.pk}/change/").content.decode()
    assert detail.count(str(archive.pk)) and not any(word in detail for word in DISTINCTIVE)


def test_it_gives_new_archives_unguessable_time_ordered_ids():
    ids = [crypto.new_archive_id() for _ in range(2000)]
    assert len(set(ids)) == 2000
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert [i.int >> 80 for i in ids] == sorted(i.int >> 80 for i in ids)  # millisecond prefix never goes back
