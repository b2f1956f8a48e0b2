"""Keys come from the environment (or a dev file with DEBUG on); rotation re-wraps online and resumably."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from health_records import crypto, keys, services
from health_records.models import Archive, ArchiveVersion
from tests.support.archives import sample_archive
from tests.support.cast import make_user

REPO = Path(__file__).resolve().parent.parent
OLD = os.environ["HEALTH_KEYS"]  # "t1:..."
NEW_KEY = base64.b64encode(b"n" * 32).decode()
BLIND = os.environ["HEALTH_BLIND_INDEX_KEY"]


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def test_it_reads_several_keys_and_takes_the_last_listed_as_primary():
    ring = keys.load_keyring({"HEALTH_KEYS": f"a:{_b64(b'a' * 32)}, b:{_b64(b'b' * 32)}", "HEALTH_BLIND_INDEX_KEY": BLIND}, debug=False)
    assert ring.ids == ["a", "b"] and ring.primary_id == "b" and ring.source == "environment"


def test_it_takes_the_primary_key_named_by_health_key_primary():
    env = {"HEALTH_KEYS": f"a:{_b64(b'a' * 32)},b:{_b64(b'b' * 32)}", "HEALTH_KEY_PRIMARY": "a", "HEALTH_BLIND_INDEX_KEY": BLIND}
    assert keys.load_keyring(env, debug=False).primary_id == "a"


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"HEALTH_KEYS": "a:not-base64!!"}, "HEALTH_KEYS"),
        ({"HEALTH_KEYS": f"a:{_b64(b'short')}"}, "HEALTH_KEYS"),
        ({"HEALTH_KEYS": _b64(b"a" * 32)}, "HEALTH_KEYS"),  # no id
        ({"HEALTH_KEYS": f"bad id:{_b64(b'a' * 32)}"}, "HEALTH_KEYS"),
        ({"HEALTH_KEYS": f"a:{_b64(b'a' * 32)},a:{_b64(b'b' * 32)}"}, "HEALTH_KEYS"),
        ({"HEALTH_KEYS": " , "}, "HEALTH_KEYS"),
        ({"HEALTH_KEY_PRIMARY": "zz"}, "HEALTH_KEY_PRIMARY"),
        ({"HEALTH_BLIND_INDEX_KEY": "%%%"}, "HEALTH_BLIND_INDEX_KEY"),
        ({"HEALTH_BLIND_INDEX_KEY": _b64(b"x" * 16)}, "HEALTH_BLIND_INDEX_KEY"),
        ({"HEALTH_BLIND_INDEX_KEY": OLD.split(":", 1)[1]}, "HEALTH_BLIND_INDEX_KEY"),  # reusing a KEK
    ],
)
def test_it_refuses_a_malformed_key_naming_the_variable(env, variable):
    full = {"HEALTH_KEYS": OLD, "HEALTH_BLIND_INDEX_KEY": BLIND, **env}
    for debug in (False, True):
        with pytest.raises(ImproperlyConfigured, match=variable):
            keys.load_keyring(full, debug=debug)


@pytest.mark.parametrize("missing", [["HEALTH_KEYS"], ["HEALTH_BLIND_INDEX_KEY"], ["HEALTH_KEYS", "HEALTH_BLIND_INDEX_KEY"]])
def test_it_refuses_to_start_without_keys_when_debug_is_off(keyring_env, settings, missing):
    settings.DEBUG = False
    keyring_env(**{name: None for name in missing})
    with pytest.raises(ImproperlyConfigured, match=missing[0]):
        apps.get_app_config("health_records").ready()


def test_it_refuses_to_start_a_production_process_without_keys(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEALTH_")}
    env.update(DJANGO_SETTINGS_MODULE="config.settings", DEBUG="0", SECRET_KEY="s" * 50,
               DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "HEALTH_KEYS" in result.stderr and "HEALTH_BLIND_INDEX_KEY" in result.stderr


def test_it_generates_a_development_key_file_once_when_debug_is_on(tmp_path):
    ring = keys.load_keyring({}, debug=True, base_dir=tmp_path)
    path = tmp_path / ".secrets" / keys.DEV_FILE_NAME
    assert ring.source == str(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert set(json.loads(path.read_text())) == {"HEALTH_KEYS", "HEALTH_BLIND_INDEX_KEY"}
    again = keys.load_keyring({}, debug=True, base_dir=tmp_path)
    assert again.blind_index_key == ring.blind_index_key and again.ids == ring.ids == ["dev1"]


def test_it_prefers_environment_keys_over_the_development_file(tmp_path):
    ring = keys.load_keyring({"HEALTH_KEYS": OLD, "HEALTH_BLIND_INDEX_KEY": BLIND}, debug=True, base_dir=tmp_path)
    assert ring.source == "environment"
    assert not (tmp_path / ".secrets").exists()


def test_it_keeps_the_development_key_folder_out_of_git():
    assert "/.secrets/" in (REPO / ".gitignore").read_text().split()


# --- rotation -------------------------------------------------------------------------------------


@pytest.fixture
def archives_under_t1(citizen, other_citizen):
    services.archive_put(owner=citizen, data=sample_archive())
    services.archive_put(owner=citizen, data=sample_archive(notes="second version"))
    services.archive_put(owner=other_citizen, data=sample_archive(name="Second", national_id=None, phone=None))
    third = make_user("13800000003", "citizen", phone="13800000003")
    services.archive_put(owner=third, data=sample_archive(name="Third", national_id=None, phone=None))
    assert set(Archive.objects.values_list("kek_id", flat=True)) == {"t1"}
    return [citizen, other_citizen, third]


def test_it_rewraps_every_data_key_under_the_newest_key(archives_under_t1, keyring_env):
    ciphertexts = {a.pk: bytes(a.ciphertext) for a in Archive.objects.all()}
    keyring_env(HEALTH_KEYS=f"{OLD},t2:{NEW_KEY}")
    assert services.rotate_keys() == 4  # three archives and one past version
    assert set(Archive.objects.values_list("kek_id", flat=True)) == {"t2"}
    assert set(ArchiveVersion.objects.values_list("kek_id", flat=True)) == {"t2"}
    assert {a.pk: bytes(a.ciphertext) for a in Archive.objects.all()} == ciphertexts  # only keys re-wrapped
    keyring_env(HEALTH_KEYS=f"t2:{NEW_KEY}")  # the old key is gone: everything still reads
    for owner in archives_under_t1:
        assert services.archive_get_own(owner=owner)["name"]
    from health_records.selectors import history_of

    assert history_of(owner=archives_under_t1[0])[0]["data"]["notes"] == "Spare key under the Flowerpot-Marigold"


def test_it_resumes_a_rotation_that_stopped_halfway_and_serves_reads_meanwhile(archives_under_t1, keyring_env):
    keyring_env(HEALTH_KEYS=f"{OLD},t2:{NEW_KEY}")

    class Stop(Exception):
        pass

    def stop_after_first_batch(count):
        raise Stop

    with pytest.raises(Stop):
        services.rotate_keys(batch_size=1, progress=stop_after_first_batch)
    assert sorted(Archive.objects.values_list("kek_id", flat=True)) == ["t1", "t1", "t2"]
    for owner in archives_under_t1:  # both keys are live: every archive reads mid-rotation
        assert services.archive_get_own(owner=owner)["name"]
    assert services.rotate_keys(batch_size=1) == 3
    assert services.rewrap_pending() == {"t2": 4}


def test_it_refuses_to_read_an_archive_after_its_key_is_removed_without_rotation(archives_under_t1, keyring_env):
    keyring_env(HEALTH_KEYS=f"t2:{NEW_KEY}")
    with pytest.raises(crypto.KeyUnavailable):
        services.archive_get_own(owner=archives_under_t1[0])


def test_it_rotates_from_the_command_line_with_a_progress_bar(archives_under_t1, keyring_env):
    keyring_env(HEALTH_KEYS=f"{OLD},t2:{NEW_KEY}")
    out, err = StringIO(), StringIO()
    call_command("rotate_health_keys", "--check", stdout=out, stderr=err)
    assert "t1: 4 data keys (live)" in out.getvalue() and "4 data keys to re-wrap under 't2'" in out.getvalue()
    out, err = StringIO(), StringIO()
    call_command("rotate_health_keys", "--batch-size", "2", stdout=out, stderr=err)
    assert "re-wrapped 4 data keys under 't2'" in out.getvalue()
    assert "4/4" in err.getvalue()  # tqdm
    out = StringIO()
    call_command("rotate_health_keys", stdout=out, stderr=StringIO())
    assert "re-wrapped 0 data keys" in out.getvalue()  # a re-run finds nothing left


def test_it_stops_rotation_loudly_when_a_key_is_missing(archives_under_t1, keyring_env):
    keyring_env(HEALTH_KEYS=f"t2:{NEW_KEY}")
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="not in HEALTH_KEYS"):
        call_command("rotate_health_keys", "--no-progress", stdout=StringIO(), stderr=StringIO())
    assert set(Archive.objects.values_list("kek_id", flat=True)) == {"t1"}
