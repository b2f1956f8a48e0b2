"""The access log against someone with write access to the database: rewrites, dropped or cut
entries, moved heads and forged checkpoints are all detected; the keyed chain is the same whether
PostgreSQL or Python computes it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import json
import os
from datetime import timedelta
from io import StringIO

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.apps import apps as django_apps
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone

from health_records import audit, keys, services
from health_records.models import GENESIS_HASH, AccessLogEntry, AccessLogHead, Archive
from tests.support.archives import sample_archive

CASE = "case:7"
rechain = importlib.import_module("health_records.migrations.0002_access_log_keyed_chain")


@pytest.fixture(autouse=True)
def checkpoint_dir(settings, tmp_path):
    # Each test its own directory: the database is rolled back between tests, files are not.
    directory = tmp_path / "checkpoints"
    directory.mkdir()
    settings.ACCESS_LOG_CHECKPOINT_DIR = str(directory)
    settings.ACCESS_LOG_CHECKPOINT_EVERY = 0
    yield directory
    keys.reset_access_log_keys()


@pytest.fixture
def log(citizen, dispatcher):
    """``log(n)`` appends n reads; ``log(n, override=True)`` reads under a break-glass override."""
    services.archive_put(owner=citizen, data=sample_archive(consent_share_with_120=True))
    archive_id = Archive.objects.get(owner=citizen).pk

    def append(times: int = 1, *, override: bool = False):
        for _ in range(times):
            audit.append_entry(reader=dispatcher, role="dispatcher", case_ref=CASE, purpose="triage",
                               archive_id=archive_id, patient_id=citizen.pk, override=override)

    return append


def _run(command: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command(command, stdout=out, stderr=StringIO())
    except CommandError as exc:
        return exc.returncode, str(exc)
    return 0, out.getvalue()


def _verify() -> tuple[int, str]:
    return _run("verify_access_log")


def _checkpoint() -> tuple[int, str]:
    return _run("checkpoint_access_log")


def _sql(sql: str, params=()) -> None:
    # Straight to the tables, as an attacker with the database's credentials would.
    with connection.cursor() as cursor:
        cursor.execute(
            sql.replace("{t}", AccessLogEntry._meta.db_table).replace("{head}", AccessLogHead._meta.db_table), params
        )


def _recompute_chain(*, from_seq: int, hash_of) -> None:
    """Recompute every hash from ``from_seq`` on and move the head, as a careful attacker would."""
    prev = AccessLogEntry.objects.get(seq=from_seq - 1).hash if from_seq > 1 else GENESIS_HASH
    for entry in AccessLogEntry.objects.filter(seq__gte=from_seq).order_by("seq"):
        digest = hash_of(entry, prev)
        _sql("UPDATE {t} SET prev_hash = %s, hash = %s WHERE seq = %s", [prev, digest, entry.seq])
        prev = digest
    _sql("UPDATE {head} SET last_hash = %s WHERE id = 1", [prev])


def _unkeyed_sha256(entry, prev: str) -> str:
    return rechain._v1(entry, prev, b"")


def _wrong_key_hmac(entry, prev: str) -> str:
    return rechain._v2(entry, prev, b"k" * 32)


# --- the two attacks of the issue ------------------------------------------------------------------


def test_it_detects_the_newest_entry_deleted_and_the_head_moved_back(log):
    log(5)
    assert _checkpoint()[0] == 0
    fourth = AccessLogEntry.objects.get(seq=4)
    _sql("DELETE FROM {t} WHERE seq = 5")
    _sql("UPDATE {head} SET last_seq = 4, last_hash = %s WHERE id = 1", [fourth.hash])
    code, output = _verify()
    assert code == 1
    assert "ends at #4" in output and "signs #5" in output and "cut from the end" in output


def test_it_detects_an_override_rewritten_and_the_chain_recomputed_with_plain_sha256(log):
    log(2)
    log(1, override=True)
    log(3)
    _sql("UPDATE {t} SET override = %s WHERE seq = 3", [False])
    _recompute_chain(from_seq=3, hash_of=_unkeyed_sha256)
    code, output = _verify()  # no checkpoint needed: the attacker lacks the key
    assert code == 1
    assert "entry #3" in output and "keyed hash" in output


def test_it_detects_the_chain_recomputed_with_a_wrong_key(log):
    log(1, override=True)
    log(3)
    _sql("UPDATE {t} SET override = %s WHERE seq = 1", [False])
    _recompute_chain(from_seq=1, hash_of=_wrong_key_hmac)
    code, output = _verify()
    assert code == 1 and "entry #1" in output and "keyed hash" in output


def test_it_detects_a_rewrite_with_the_right_key_through_the_checkpoints(log):
    # Even a stolen HMAC key does not help: the checkpoints are signed with another key.
    log(4, override=True)
    assert _checkpoint()[0] == 0
    _sql("UPDATE {t} SET override = %s WHERE seq = 2", [False])
    _recompute_chain(from_seq=2, hash_of=lambda entry, prev: rechain._v2(entry, prev, keys.access_log_hmac_key()))
    code, output = _verify()
    assert code == 1
    assert "entry #4" in output and "checkpoint 000000000000004-" in output and "rewritten" in output


# --- truncation, forged checkpoints, the anchor ----------------------------------------------------


def test_it_detects_everything_after_a_checkpoint_cut_and_the_head_moved_back(log, settings,
                                                                            django_capture_on_commit_callbacks):
    settings.ACCESS_LOG_CHECKPOINT_EVERY = 3
    with django_capture_on_commit_callbacks(execute=True):  # the appends' checkpoints, written after commit
        log(7)
    third = AccessLogEntry.objects.get(seq=3)
    # Cut back to an earlier checkpoint, leaving a perfectly consistent shorter chain.
    _sql("DELETE FROM {t} WHERE seq > 3")
    _sql("UPDATE {head} SET last_seq = 3, last_hash = %s WHERE id = 1", [third.hash])
    code, output = _verify()
    assert code == 1 and "ends at #3" in output and "signs #6" in output


def test_it_detects_the_whole_log_emptied(log):
    log(3)
    assert _checkpoint()[0] == 0
    _sql("DELETE FROM {t}")
    _sql("UPDATE {head} SET last_seq = 0, last_hash = %s WHERE id = 1", [GENESIS_HASH])
    code, output = _verify()
    assert code == 1 and "signs #3" in output


def test_it_writes_a_checkpoint_after_the_commit_of_every_nth_append(log, settings, checkpoint_dir,
                                                                     django_capture_on_commit_callbacks):
    settings.ACCESS_LOG_CHECKPOINT_EVERY = 2
    with django_capture_on_commit_callbacks(execute=True):
        log(5)
    names = sorted(path.name for path in checkpoint_dir.glob("*.json"))
    assert [name.split("-")[0] for name in names] == ["000000000000002", "000000000000004"]
    body = json.loads((checkpoint_dir / names[1]).read_text())
    assert (body["seq"], body["hash"]) == (4, AccessLogEntry.objects.get(seq=4).hash)


def test_it_detects_a_forged_checkpoint(log, checkpoint_dir):
    log(3)
    assert _checkpoint()[0] == 0
    path = next(checkpoint_dir.glob("*.json"))
    forged = json.loads(path.read_text())
    forger = Ed25519PrivateKey.generate()
    forged["signature"] = base64.b64encode(forger.sign(b"anything")).decode()
    (checkpoint_dir / "000000000000009-0000000000000000.json").write_text(json.dumps(forged))
    code, output = _verify()
    assert code == 1 and "000000000000009-0000000000000000.json" in output and "signature" in output


def test_it_detects_a_checkpoint_whose_contents_were_altered(log, checkpoint_dir):
    log(3)
    assert _checkpoint()[0] == 0
    path = next(checkpoint_dir.glob("*.json"))
    body = json.loads(path.read_text())
    body["seq"] = 2
    os.chmod(path, 0o644)
    path.write_text(json.dumps(body))
    code, output = _verify()
    assert code == 1 and path.name in output and "signature" in output


def test_it_detects_young_entries_removed_by_moving_the_anchor(log):
    log(4)
    assert _checkpoint()[0] == 0
    log(2)
    fourth = AccessLogEntry.objects.get(seq=4)
    # A fake "prune" of entries written today: delete them and start verification past them.
    _sql("DELETE FROM {t} WHERE seq <= 4")
    _sql("UPDATE {head} SET anchor_seq = 4, anchor_hash = %s WHERE id = 1", [fourth.hash])
    code, output = _verify()
    assert code == 1 and "younger than 183 days were removed" in output


def test_it_keeps_checkpoints_older_than_the_anchor_valid_after_pruning(log, monkeypatch):
    long_ago = timezone.now() - timedelta(days=200)
    real_now = timezone.now
    monkeypatch.setattr(audit.timezone, "now", lambda: long_ago)
    log(3)
    assert _checkpoint()[0] == 0
    monkeypatch.setattr(audit.timezone, "now", real_now)
    log(2)
    assert _checkpoint()[0] == 0
    assert audit.prune_access_log(before=timezone.now() - timedelta(days=190)) == 3
    code, output = _verify()
    assert code == 0 and "2 signed checkpoints, the newest at #5" in output


# --- the commands' exit codes ------------------------------------------------------------------------


def test_it_exits_0_on_an_intact_log_and_says_what_it_checked(log):
    log(3)
    assert _checkpoint() == (0, "checkpoint 000000000000003-" + AccessLogEntry.objects.get(seq=3).hash[:16]
                             + ".json signs entry #3\n")
    log(1)
    code, output = _verify()
    assert code == 0
    assert "intact: 4 entries checked, chain head at #4, 1 signed checkpoints, the newest at #3" in output
    assert "1 entries after the newest checkpoint" in output


def test_it_warns_when_no_checkpoint_covers_the_log_yet(log):
    log(2)
    code, output = _verify()
    assert code == 0 and "no signed checkpoint" in output


def test_it_checkpoints_only_what_is_new(log):
    log(2)
    assert _checkpoint()[0] == 0
    code, output = _checkpoint()
    assert code == 0 and "up to date" in output


def test_it_refuses_to_checkpoint_a_tampered_log(log, checkpoint_dir):
    log(3)
    assert _checkpoint()[0] == 0
    log(2)
    _sql("UPDATE {t} SET purpose = %s WHERE seq = 5", ["curiosity"])
    code, output = _checkpoint()
    assert code == 1 and "REFUSED" in output and "entry #5" in output
    assert len(list(checkpoint_dir.glob("*.json"))) == 1


def test_it_exits_2_when_the_hmac_key_is_missing(log, monkeypatch, settings):
    log(1)
    settings.DEBUG = False
    monkeypatch.delenv("ACCESS_LOG_HMAC_KEY")
    keys.reset_access_log_keys()
    code, output = _verify()
    assert code == 2 and "ACCESS_LOG_HMAC_KEY" in output
    assert _checkpoint()[0] == 2


def test_it_exits_2_when_the_checkpoint_directory_is_missing(log, settings, tmp_path):
    log(1)
    settings.ACCESS_LOG_CHECKPOINT_DIR = str(tmp_path / "nowhere")
    code, output = _verify()
    assert code == 2 and "does not exist" in output


def test_an_auditor_verifies_with_the_public_key_alone(log, monkeypatch):
    log(2)
    assert _checkpoint()[0] == 0
    public = keys.public_key_text(keys.access_log_keys().verify_key)
    monkeypatch.delenv("ACCESS_LOG_SIGNING_KEY")
    monkeypatch.setenv("ACCESS_LOG_VERIFY_KEY", public)
    keys.reset_access_log_keys()
    assert _verify()[0] == 0
    log(1)
    code, output = _checkpoint()  # signing needs the private key
    assert code == 2 and "ACCESS_LOG_SIGNING_KEY" in output


def test_it_refuses_a_verify_key_that_is_not_the_signing_keys_pair(monkeypatch, settings):
    other = Ed25519PrivateKey.generate().public_key()
    monkeypatch.setenv("ACCESS_LOG_VERIFY_KEY", keys.public_key_text(other))
    with pytest.raises(Exception, match="ACCESS_LOG_VERIFY_KEY is not the public half"):
        keys.load_access_log_keys()


# --- the same hash from PostgreSQL and Python -------------------------------------------------------


def test_the_appended_hash_is_the_keyed_hash_python_computes(log, dispatcher):
    # On PostgreSQL the append computes the HMAC in SQL (also tested there whenever PostgreSQL is
    # reachable: tests/test_health_reads_on_postgresql.py); elsewhere in Python. Either must match.
    dispatcher.username = "调度员-ü 1;2:"
    dispatcher.save()
    log(2)
    key = keys.access_log_hmac_key()
    for entry in AccessLogEntry.objects.order_by("seq"):
        fields = {name: getattr(entry, name) for name in rechain.FIELDS}
        assert entry.hash == audit.entry_hash(prev_hash=entry.prev_hash, key=key, **fields)
        assert entry.hash == hmac.new(key, rechain._canonical("v2;", entry, entry.prev_hash), hashlib.sha256).hexdigest()


# --- the migration that re-chains an existing log ---------------------------------------------------


def test_the_migration_rechains_an_unkeyed_log_under_the_key(log):
    log(4)
    rechain.backwards(django_apps, None)  # the log as the previous release wrote it
    first = AccessLogEntry.objects.get(seq=1)
    assert first.hash == rechain._v1(first, GENESIS_HASH, b"")
    assert _verify()[0] == 1
    rechain.forwards(django_apps, None)
    assert _verify()[0] == 0
    assert AccessLogHead.objects.get().last_hash == AccessLogEntry.objects.get(seq=4).hash


def test_the_migration_refuses_to_rechain_a_log_already_broken(log):
    log(4)
    rechain.backwards(django_apps, None)
    _sql("UPDATE {t} SET purpose = %s WHERE seq = 2", ["curiosity"])
    before = list(AccessLogEntry.objects.order_by("seq").values_list("hash", flat=True))
    with pytest.raises(RuntimeError, match=r"already broken: entry #2 .*Refusing to re-chain"):
        with transaction.atomic():  # as the migration runs
            rechain.forwards(django_apps, None)
    assert list(AccessLogEntry.objects.order_by("seq").values_list("hash", flat=True)) == before


def test_the_migration_needs_no_key_for_an_empty_log(db, monkeypatch, settings):
    settings.DEBUG = False
    monkeypatch.delenv("ACCESS_LOG_HMAC_KEY")
    keys.reset_access_log_keys()
    rechain.forwards(django_apps, None)
    assert not AccessLogEntry.objects.exists()
