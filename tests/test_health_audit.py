"""The access log: hash-chained, verifiable, linear under concurrent writers, kept >= 6 months.

(Attacks by someone with write access to the database: tests/test_access_log_tamper.py.)"""

from __future__ import annotations

import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.utils import timezone

from health_records import audit, services
from health_records.models import AccessLogEntry, AccessLogHead, Archive
from tests.support.archives import DISTINCTIVE, sample_archive

CASE = "case:42"


@pytest.fixture(autouse=True)
def checkpoint_dir(settings, tmp_path):
    """Each test its own checkpoint directory: the database is rolled back between tests, files are not."""
    settings.ACCESS_LOG_CHECKPOINT_DIR = str(tmp_path / "checkpoints")
    (tmp_path / "checkpoints").mkdir()
    return tmp_path / "checkpoints"


@pytest.fixture
def readable(citizen, dispatcher):
    services.archive_put(owner=citizen, data=sample_archive(consent_share_with_120=True))
    services.grant_open(case_ref=CASE, grantee=dispatcher, role="dispatcher", patient=citizen, purpose="triage")
    reads = iter(range(1, 1_000_000))

    def read(times: int = 1):
        # A new purpose each time: the same read delivered again is logged only once.
        for _ in range(times):
            number = next(reads)
            purpose = "triage" if number == 1 else f"triage {number}"
            services.archive_read_for_grant(patient=citizen, reader=dispatcher, case_ref=CASE, purpose=purpose)

    return read


def _verify() -> tuple[int, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("verify_access_log", stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, str(exc)
    return 0, out.getvalue()


def _raw(sql: str, params=()):
    # Straight to the table, as an attacker with database access would (the ORM guards refuse).
    with connection.cursor() as cursor:
        cursor.execute(sql.replace("{t}", AccessLogEntry._meta.db_table), params)


def test_it_chains_each_entry_to_the_previous_one(readable):
    readable(3)
    entries = list(AccessLogEntry.objects.order_by("seq"))
    assert [e.seq for e in entries] == [1, 2, 3]
    assert entries[0].prev_hash == "0" * 64
    assert entries[1].prev_hash == entries[0].hash and entries[2].prev_hash == entries[1].hash
    head = AccessLogHead.objects.get()
    assert (head.last_seq, head.last_hash) == (3, entries[2].hash)


def test_it_verifies_an_intact_log(readable):
    readable(5)
    code, output = _verify()
    assert code == 0
    assert "intact: 5 entries" in output


def test_it_verifies_an_empty_log(db):
    assert _verify()[0] == 0


def test_it_names_an_edited_entry(readable):
    readable(4)
    _raw("UPDATE {t} SET purpose = %s WHERE seq = 3", ["curiosity"])
    code, output = _verify()
    assert code == 1
    assert "entry #3" in output and "edited" in output


def test_it_names_an_entry_whose_hash_was_recomputed_after_an_edit(readable):
    readable(4)
    entry = AccessLogEntry.objects.get(seq=2)
    fields = {f: getattr(entry, f) for f in ("seq", "at", "reader_id", "reader_username", "role", "case_ref",
                                            "purpose", "archive_id", "patient_id", "override", "prev_hash")}
    fields["reader_username"] = "someone-else"
    _raw("UPDATE {t} SET reader_username = %s, hash = %s WHERE seq = 2", ["someone-else", audit.entry_hash(**fields)])
    code, output = _verify()
    assert code == 1 and "entry #3" in output and "prev_hash" in output


def test_it_names_the_entry_after_a_deleted_one(readable):
    readable(5)
    _raw("DELETE FROM {t} WHERE seq = 2")
    code, output = _verify()
    assert code == 1
    assert "entry #3" in output and "missing" in output


def test_it_detects_entries_cut_from_the_end(readable):
    readable(5)
    _raw("DELETE FROM {t} WHERE seq >= 4")
    code, output = _verify()
    assert code == 1
    assert "deleted from the end" in output


def test_it_refuses_to_delete_entries_younger_than_six_months(readable):
    readable(2)
    with pytest.raises(PermissionError):
        AccessLogEntry.objects.all().delete()
    with pytest.raises(PermissionError):
        AccessLogEntry.objects.first().delete()
    with pytest.raises(ValueError):
        audit.prune_access_log(before=timezone.now() - timedelta(days=100))
    assert AccessLogEntry.objects.count() == 2


def test_it_prunes_entries_older_than_six_months_and_the_chain_still_verifies(readable, monkeypatch):
    long_ago = timezone.now() - timedelta(days=200)
    real_now = timezone.now
    monkeypatch.setattr(audit.timezone, "now", lambda: long_ago)
    readable(3)
    monkeypatch.setattr(audit.timezone, "now", real_now)
    readable(2)
    assert audit.prune_access_log(before=timezone.now() - timedelta(days=190)) == 3
    assert list(AccessLogEntry.objects.order_by("seq").values_list("seq", flat=True)) == [4, 5]
    assert _verify()[0] == 0
    # An edit after pruning is still caught.
    _raw("UPDATE {t} SET case_ref = %s WHERE seq = 4", ["case:1"])
    assert _verify()[0] == 1


def test_it_records_who_and_why_but_no_health_data(readable, dispatcher, citizen):
    readable()
    entry = AccessLogEntry.objects.get()
    assert (entry.reader_username, entry.role, entry.case_ref, entry.purpose, entry.patient_id) == (
        "dispatcher1", "dispatcher", CASE, "triage", citizen.pk,
    )
    text = " ".join(str(getattr(entry, f.attname)) for f in AccessLogEntry._meta.fields)
    for word in DISTINCTIVE:
        assert word not in text


def test_it_keeps_the_log_when_the_reader_account_is_deleted(readable, dispatcher):
    readable(2)
    dispatcher.delete()
    assert AccessLogEntry.objects.count() == 2
    assert _verify()[0] == 0


def test_it_writes_no_entry_and_moves_no_head_when_the_grant_closed_before_the_append(readable, citizen, dispatcher):
    readable(1)
    grant = services.grant_open(case_ref=CASE, grantee=dispatcher, role="dispatcher", patient=citizen, purpose="triage")
    services.grants_close(case_ref=CASE)
    archive_id = Archive.objects.get(owner=citizen).pk
    appended = audit.append_entry(reader=dispatcher, role="dispatcher", case_ref=CASE, purpose="x",
                                  archive_id=archive_id, patient_id=citizen.pk, override=False, grant_id=grant.pk)
    assert appended is None
    assert AccessLogEntry.objects.count() == 1 and AccessLogHead.objects.get().last_seq == 1


def test_it_refuses_the_read_when_the_grant_closes_between_the_check_and_the_log(readable, citizen, dispatcher, monkeypatch):
    real_decrypt = services._decrypt

    def decrypt_then_close(archive):
        data = real_decrypt(archive)
        services.grants_close(case_ref=CASE)  # the case closes while the archive is being opened
        return data

    monkeypatch.setattr(services, "_decrypt", decrypt_then_close)
    with pytest.raises(services.AccessDenied) as caught:
        readable(1)
    assert caught.value.code == "grant_closed"
    assert not AccessLogEntry.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_it_keeps_the_chain_linear_under_concurrent_writers(citizen, dispatcher, settings, checkpoint_dir):
    # Every 5th append also writes a signed checkpoint once it commits, from whichever writer lands on it.
    settings.ACCESS_LOG_CHECKPOINT_EVERY = 5
    services.archive_put(owner=citizen, data=sample_archive(consent_share_with_120=True))
    services.grant_open(case_ref=CASE, grantee=dispatcher, role="dispatcher", patient=citizen, purpose="triage")
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def writer(number: int):
        try:
            start.wait()
            for read in range(10):
                # Distinct purposes: the same read delivered again is logged only once.
                services.archive_read_for_grant(patient=citizen, reader=dispatcher, case_ref=CASE,
                                                purpose=f"triage {number}.{read}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(number,)) for number in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert list(AccessLogEntry.objects.order_by("seq").values_list("seq", flat=True)) == list(range(1, 61))
    assert sorted(int(path.name.split("-")[0]) for path in checkpoint_dir.glob("*.json")) == list(range(5, 61, 5))
    code, output = _verify()
    assert code == 0 and "12 signed checkpoints, the newest at #60" in output
