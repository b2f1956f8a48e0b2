"""Bulk import: streams, validates each row, encrypts, upserts by blind index, idempotent; the generator.

Every test runs twice: on the suite's database (SQLite's path: bulk_create) and on PostgreSQL
(COPY), on a throwaway database when the suite runs on SQLite (tests.support.pg: skipped when no
PostgreSQL is reachable, failed in CI).
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from health_records import importer, services, synthetic
from health_records.models import Archive, ArchiveVersion, Source
from health_records.validation import validate_archive
from tests.support.archives import SAMPLE_NATIONAL_ID, sample_archive

pytest_plugins = ["tests.support.pg"]
pytestmark = pytest.mark.usefixtures("on_each_database")


def _rows(n: int, seed: int = 7) -> list[dict]:
    return list(synthetic.archives(n, seed=seed))


def _write(path, rows) -> str:
    with open(path, "w", encoding="utf-8") as out:
        for row in rows:
            out.write(row if isinstance(row, str) else json.dumps(row, ensure_ascii=False))
            out.write("\n")
    return str(path)


def _decrypted(national_id: str) -> dict:
    from health_records import crypto

    row = services.archive_find(national_id=national_id)
    return crypto.decode(
        crypto.open_sealed(
            ciphertext=row.ciphertext, nonce=row.nonce, wrapped_key=row.wrapped_key, kek_id=row.kek_id,
            archive_id=row.pk, version=row.version,
        )
    )


def test_it_generates_valid_distinct_archives_deterministically_by_seed():
    rows = _rows(300)
    assert rows == _rows(300)
    assert rows != _rows(300, seed=8)
    for row in rows:
        clean, errors = validate_archive(row, extra=("verified_at",))
        assert not errors, errors
    assert len({r["national_id"] for r in rows}) == 300
    assert len({r["phone"] for r in rows}) == 300
    assert any(r["allergies"] for r in rows) and any(r["medications"] for r in rows)


def test_it_imports_a_file_encrypted_and_findable_by_blind_index(tmp_path, db):
    rows = _rows(120)
    stats = importer.import_file(_write(tmp_path / "a.jsonl", rows), batch_size=50)
    assert (stats.lines, stats.inserted, stats.bad) == (120, 120, 0)
    assert Archive.objects.filter(source=Source.IMPORT, owner=None, version=1).count() == 120
    for row in rows[::40]:
        data = _decrypted(row["national_id"])
        assert data["name"] == row["name"] and data["medications"] == row["medications"]
        archive = services.archive_find(phone=row["phone"])
        assert archive.consent_share_with_120 == row["consent_share_with_120"]
        assert archive.verified_at.isoformat().startswith(row["verified_at"][:19])
        assert archive.created_at == archive.updated_at == archive.consent_changed_at
        assert archive.phone_bidx and archive.kek_id and len(bytes(archive.nonce)) == 12


def test_it_changes_nothing_when_the_same_file_is_imported_again(tmp_path, db):
    path = _write(tmp_path / "a.jsonl", _rows(60))
    importer.import_file(path, batch_size=25)
    before = {a.pk: (bytes(a.ciphertext), a.version) for a in Archive.objects.all()}
    stats = importer.import_file(path, batch_size=7)
    assert (stats.inserted, stats.updated, stats.unchanged) == (0, 0, 60)
    assert {a.pk: (bytes(a.ciphertext), a.version) for a in Archive.objects.all()} == before
    assert not ArchiveVersion.objects.exists()


def test_it_resumes_an_interrupted_import_where_it_stopped(tmp_path, db):
    rows = _rows(60)
    importer.import_file(_write(tmp_path / "part.jsonl", rows[:25]), batch_size=10)
    stats = importer.import_file(_write(tmp_path / "all.jsonl", rows), batch_size=10)
    assert (stats.inserted, stats.unchanged, stats.bad) == (35, 25, 0)
    assert Archive.objects.count() == 60 and not ArchiveVersion.objects.exists()


def test_it_updates_a_changed_archive_and_keeps_the_old_version(tmp_path, db):
    rows = _rows(10)
    importer.import_file(_write(tmp_path / "a.jsonl", rows))
    old_id = services.archive_find(national_id=rows[3]["national_id"]).pk
    rows[3]["medications"] = [{"name": "Levothyroxquin", "dose": "100 μg"}]
    rows[4]["consent_share_with_120"] = not rows[4]["consent_share_with_120"]
    newcomers = _rows(2, seed=8)
    stats = importer.import_file(_write(tmp_path / "b.jsonl", rows + newcomers))
    assert (stats.inserted, stats.updated, stats.unchanged) == (2, 2, 8)
    assert _decrypted(newcomers[1]["national_id"])["name"] == newcomers[1]["name"]
    archive = services.archive_find(national_id=rows[3]["national_id"])
    assert archive.pk == old_id and archive.version == 2
    assert _decrypted(rows[3]["national_id"])["medications"] == [{"name": "Levothyroxquin", "dose": "100 μg"}]
    assert ArchiveVersion.objects.filter(archive=archive, version=1).exists()


def test_it_reports_bad_rows_with_their_line_numbers_and_imports_the_rest(tmp_path, db):
    rows: list = _rows(8)
    rows[1] = "{not json"
    rows[3]["date_of_birth"] = (date.today() + timedelta(days=3)).isoformat()
    rows[3]["national_id"] = None
    rows[4]["national_id"] = None
    rows[5]["blood_type"] = {"abo": "Q", "rh": "positive"}
    rows[6]["notes"] = "x" * 5000
    rows.insert(7, "")  # a blank line is skipped, not an error
    reported: dict[int, list[str]] = {}
    stats = importer.import_file(_write(tmp_path / "a.jsonl", rows), report=lambda line, msgs: reported.setdefault(line, msgs))
    assert sorted(reported) == [2, 4, 5, 6, 7]
    assert reported[2] == ["not valid JSON"]
    assert any(m.startswith("date_of_birth:") for m in reported[4])
    assert reported[5][0].startswith("national_id:")
    assert reported[6][0].startswith("blood_type.abo:")
    assert reported[7][0].startswith("notes:")
    assert (stats.inserted, stats.bad) == (3, 5)
    assert Archive.objects.count() == 3


def test_it_never_echoes_a_bad_rows_values_in_its_report(tmp_path, db):
    row = _rows(1)[0]
    row["national_id"] = row["national_id"][:17] + ("0" if row["national_id"][17] != "0" else "1")
    row["blood_type"] = {"abo": "Zorblaxamine"}
    reported: list[str] = []
    importer.import_file(_write(tmp_path / "a.jsonl", [row]), report=lambda line, msgs: reported.extend(msgs))
    text = " ".join(reported)
    assert reported and row["national_id"] not in text and "Zorblaxamine" not in text


def test_it_reports_a_phone_already_on_another_persons_archive(tmp_path, db):
    rows = _rows(3)
    rows[2]["phone"] = rows[0]["phone"]
    reported = {}
    stats = importer.import_file(_write(tmp_path / "a.jsonl", rows), report=lambda line, msgs: reported.setdefault(line, msgs))
    assert list(reported) == [3] and reported[3][0].startswith("phone:")
    assert stats.inserted == 2
    reported.clear()
    other = _rows(1, seed=99)[0]
    other["phone"] = rows[1]["phone"]
    importer.import_file(_write(tmp_path / "b.jsonl", [other]), report=lambda line, msgs: reported.setdefault(line, msgs))
    assert list(reported) == [1]


def test_it_reports_only_the_rows_a_concurrent_writer_took_and_imports_the_rest(tmp_path, db, monkeypatch):
    rows = _rows(4)
    importer.import_file(_write(tmp_path / "a.jsonl", rows[1:2]))
    # As if another import wrote row 2's archive between this batch's look-up and its insert.
    monkeypatch.setattr(importer, "_existing", lambda nids: {})
    reported = {}
    stats = importer.import_file(_write(tmp_path / "b.jsonl", rows), report=lambda line, msgs: reported.setdefault(line, msgs))
    assert list(reported) == [2] and reported[2][0].startswith("national_id or phone:")
    assert (stats.inserted, stats.bad) == (3, 1)
    assert Archive.objects.count() == 4


def test_it_takes_the_last_line_when_a_person_appears_twice(tmp_path, db):
    rows = _rows(2)
    again = dict(rows[0], notes="newer line")
    stats = importer.import_file(_write(tmp_path / "a.jsonl", [rows[0], rows[1], again]))
    assert stats.superseded_in_file == 1
    assert _decrypted(rows[0]["national_id"])["notes"] == "newer line"


def test_it_leaves_an_archive_its_owner_edited_alone(tmp_path, citizen):
    # Imported, linked to its owner through a verified flow, then edited by the owner: the
    # platform's next version does not overwrite the owner's own words.
    importer.import_file(_write(tmp_path / "a.jsonl", [sample_archive(notes="platform version", phone=None)]))
    services.archive_link_owner(archive_id=services.archive_find(national_id=SAMPLE_NATIONAL_ID).pk, owner=citizen)
    services.archive_put(owner=citizen, data=sample_archive())
    platform_row = sample_archive(notes="platform version 2", phone=None)
    stats = importer.import_file(_write(tmp_path / "b.jsonl", [platform_row]))
    assert stats.kept_citizen == 1
    assert services.archive_get_own(owner=citizen)["notes"] == "Spare key under the Flowerpot-Marigold"
    assert services.archive_find(national_id=SAMPLE_NATIONAL_ID).owner == citizen


@pytest.mark.django_db(transaction=True)
def test_it_validates_and_encrypts_in_worker_processes(tmp_path):
    rows = _rows(90)
    rows[10]["sex"] = "robot"
    reported = []
    stats = importer.import_file(
        _write(tmp_path / "a.jsonl", rows), batch_size=20, workers=2, report=lambda line, msgs: reported.append(line)
    )
    assert (stats.inserted, stats.bad, reported) == (89, 1, [11])
    assert _decrypted(rows[50]["national_id"])["name"] == rows[50]["name"]


def test_it_imports_from_the_command_line_with_progress_and_line_numbers(tmp_path, db):
    rows: list = _rows(30)
    rows[4] = "[1, 2]"
    path = _write(tmp_path / "a.jsonl", rows)
    out, err = StringIO(), StringIO()
    call_command("import_archives", path, "--workers", "0", stdout=out, stderr=err)
    assert "29 inserted" in out.getvalue() and "1 bad" in out.getvalue()
    assert "line 5: non_field_errors: Send a JSON object." in err.getvalue()
    assert "100%" in err.getvalue() and "30.0/30.0" in err.getvalue() and "archives/s" in err.getvalue()
    out = StringIO()
    call_command("import_archives", path, "--workers", "0", "--no-progress", stdout=out, stderr=StringIO())
    assert "0 inserted" in out.getvalue() and "29 unchanged" in out.getvalue()
    with pytest.raises(CommandError) as caught:
        call_command("import_archives", path, "--workers", "0", "--no-progress", "--fail-on-bad-rows",
                     stdout=StringIO(), stderr=StringIO())
    assert caught.value.returncode == 3
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_archives", str(tmp_path / "missing.jsonl"))


def test_it_generates_a_file_from_the_command_line(tmp_path):
    path = tmp_path / "g.jsonl"
    call_command("generate_archives", "25", "--out", str(path), "--seed", "3", "--no-progress", stdout=StringIO())
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 25
    assert [json.loads(line) for line in lines] == list(synthetic.archives(25, seed=3))
    assert importer.count_lines(path) == 25
