"""Identifiers a citizen types into their own archive are claims (issue 6, item 7): they neither
reveal whether someone else has an archive nor block the real person's import. And an operator
finds an archive by national ID or phone without the identifier ever entering a URL (item 12)."""

from __future__ import annotations

import json
from datetime import date
from urllib.parse import unquote

import pytest
from django.apps import apps as global_apps
from django.test import Client

from accounts.models import Role
from health_records import blind_index, importer, services
from health_records.models import Archive, Source
from health_records.synthetic import national_id
from tests.support.archives import DISTINCTIVE, SAMPLE_NATIONAL_ID, SAMPLE_PHONE, URL, sample_archive
from tests.support.cast import make_user

UNUSED_NATIONAL_ID = national_id("410105", date(1968, 4, 12), 457)  # same birth date and sex as the sample
UNUSED_PHONE = "13955556666"
ADMIN_LIST = "/admin/health_records/archive/"
ADMIN_FIND = "/admin/health_records/archive/find/"


def _write(path, rows) -> str:
    with open(path, "w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return str(path)


# --- no enumeration, no squatting ------------------------------------------------------------------


def test_it_answers_a_stranger_the_same_whether_or_not_the_identifiers_are_on_an_archive(
    as_citizen, citizen, as_other_citizen, other_citizen
):
    assert as_citizen.put(URL, sample_archive(), format="json").status_code == 201
    taken = as_other_citizen.put(URL, sample_archive(name="Squatter"), format="json")
    assert taken.status_code == 201, taken.content
    free = as_other_citizen.put(
        URL, sample_archive(name="Squatter", national_id=UNUSED_NATIONAL_ID, phone=UNUSED_PHONE), format="json"
    )
    assert free.status_code == 200
    assert set(taken.json()) == set(free.json())
    # Both saves stand; nobody's archive changed hands.
    assert services.archive_get_own(owner=other_citizen)["name"] == "Squatter"
    assert services.archive_get_own(owner=citizen)["name"] == sample_archive()["name"]


def test_it_confers_nothing_on_a_citizen_who_types_someone_elses_national_id(citizen, other_citizen):
    services.archive_put(owner=citizen, data=sample_archive())
    services.archive_put(owner=other_citizen, data=sample_archive(name="Squatter"))
    # Neither claim is a verified identifier: finding by it (as linking would) finds nothing.
    assert services.archive_find(national_id=SAMPLE_NATIONAL_ID) is None
    assert services.archive_find(phone=SAMPLE_PHONE) is None
    assert Archive.objects.filter(national_id_bidx__isnull=False).count() == 0
    assert Archive.objects.filter(claimed_national_id_bidx=blind_index.national_id_index(SAMPLE_NATIONAL_ID)).count() == 2


def test_it_imports_the_real_persons_archive_even_after_a_stranger_claimed_their_identifiers(tmp_path, other_citizen):
    services.archive_put(owner=other_citizen, data=sample_archive(name="Squatter"))
    platform_row = sample_archive(notes="from the platform")
    reported: list = []
    stats = importer.import_file(_write(tmp_path / "a.jsonl", [platform_row]), report=lambda *bad: reported.append(bad))
    assert (stats.inserted, stats.kept_citizen, stats.bad, reported) == (1, 0, 0, [])
    imported = services.archive_find(national_id=SAMPLE_NATIONAL_ID)
    assert imported.owner is None and imported.source == Source.IMPORT
    assert services.archive_find(phone=SAMPLE_PHONE) == imported
    # The squatter's own archive is untouched, and linking the imported one stays a verified step.
    assert services.archive_get_own(owner=other_citizen)["name"] == "Squatter"
    assert services.archive_get_own(owner=other_citizen)["notes"] != "from the platform"


def test_it_keeps_claims_out_of_the_way_of_later_imports_and_re_imports(tmp_path, citizen, other_citizen):
    path = _write(tmp_path / "a.jsonl", [sample_archive()])
    assert importer.import_file(path).inserted == 1
    services.archive_put(owner=other_citizen, data=sample_archive(name="Squatter"))
    again = importer.import_file(path)
    assert (again.inserted, again.unchanged, again.bad) == (0, 1, 0)
    changed = importer.import_file(_write(tmp_path / "b.jsonl", [sample_archive(notes="newer")]))
    assert (changed.updated, changed.bad) == (1, 0)


def test_it_moves_existing_unverified_identifiers_to_claims_when_migrating(citizen, other_citizen, tmp_path):
    from importlib import import_module

    migration = import_module("health_records.migrations.0003_claims_grant_stage_and_logged_read")
    services.archive_put(owner=citizen, data=sample_archive())
    importer.import_file(_write(tmp_path / "a.jsonl", [sample_archive(name="Platform", national_id=UNUSED_NATIONAL_ID,
                                                                      phone=UNUSED_PHONE)]))
    # As the table looked before: the citizen's typed identifiers in the unique (verified) columns.
    typed = Archive.objects.get(owner=citizen)
    Archive.objects.filter(pk=typed.pk).update(
        national_id_bidx=typed.claimed_national_id_bidx, phone_bidx=typed.claimed_phone_bidx,
        claimed_national_id_bidx=None, claimed_phone_bidx=None,
    )
    migration.claims_forwards(global_apps, None)
    typed.refresh_from_db()
    assert typed.national_id_bidx is None and typed.phone_bidx is None
    assert bytes(typed.claimed_national_id_bidx) == blind_index.national_id_index(SAMPLE_NATIONAL_ID)
    imported = services.archive_find(national_id=UNUSED_NATIONAL_ID)
    assert imported is not None and imported.claimed_national_id_bidx is None


# --- the admin: identifiers go by POST, never into a URL -------------------------------------------


@pytest.fixture
def operator(db):
    user = make_user("archive-operator", Role.ADMIN)
    user.is_staff = user.is_superuser = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


def _urls_of(response) -> list[str]:
    """Every URL a response sends the browser to (its redirect chain and final address)."""
    urls = [url for url, _status in getattr(response, "redirect_chain", [])]
    if response.has_header("Location"):
        urls.append(response["Location"])
    urls.append(response.request["PATH_INFO"] + ("?" + response.request["QUERY_STRING"] if response.request.get("QUERY_STRING") else ""))
    return urls


def _no_identifier_in(urls: list[str], *identifiers: str) -> None:
    digits = [i.replace(" ", "").replace("-", "") for i in identifiers]
    for url in urls:
        plain = unquote(url).replace(" ", "").replace("-", "").upper()
        for needle in digits:
            assert needle.upper() not in plain, f"{needle} leaked into {url}"
            assert needle[-8:].upper() not in plain, f"part of {needle} leaked into {url}"


def test_it_finds_an_archive_by_national_id_through_a_post_and_redirects_to_its_id(operator, citizen, tmp_path):
    importer.import_file(_write(tmp_path / "a.jsonl", [sample_archive()]))
    archive = services.archive_find(national_id=SAMPLE_NATIONAL_ID)
    for term in (SAMPLE_NATIONAL_ID, SAMPLE_NATIONAL_ID.lower(), "+86 139-1234-0099"):
        response = operator.post(ADMIN_FIND, {"identifier": term})
        assert response.status_code == 302
        assert response["Location"] == f"/admin/health_records/archive/{archive.pk}/change/"
        followed = operator.post(ADMIN_FIND, {"identifier": term}, follow=True)
        assert followed.status_code == 200 and str(archive.pk) in followed.content.decode()
        assert not any(word in followed.content.decode() for word in DISTINCTIVE)
        _no_identifier_in(_urls_of(response) + _urls_of(followed), SAMPLE_NATIONAL_ID, SAMPLE_PHONE)


def test_it_lists_verified_and_claimed_archives_by_id_only(operator, citizen, other_citizen, tmp_path):
    importer.import_file(_write(tmp_path / "a.jsonl", [sample_archive()]))
    services.archive_put(owner=citizen, data=sample_archive())
    services.archive_put(owner=other_citizen, data=sample_archive(name="Squatter"))
    followed = operator.post(ADMIN_FIND, {"identifier": SAMPLE_NATIONAL_ID}, follow=True)
    page = followed.content.decode()
    assert followed.status_code == 200
    for archive in Archive.objects.all():
        assert str(archive.pk) in page
    assert "verified (imported)" in page and "stated by the owner (unverified)" in page
    _no_identifier_in(_urls_of(followed), SAMPLE_NATIONAL_ID, SAMPLE_PHONE)


def test_it_says_nothing_matched_without_echoing_the_identifier(operator, citizen):
    response = operator.post(ADMIN_FIND, {"identifier": UNUSED_NATIONAL_ID}, follow=True)
    assert response.status_code == 200
    assert "No archive has this national ID or phone" in response.content.decode()
    assert UNUSED_NATIONAL_ID not in response.content.decode()
    _no_identifier_in(_urls_of(response), UNUSED_NATIONAL_ID)
    bad = operator.post(ADMIN_FIND, {"identifier": "not an identifier"})
    assert bad.status_code == 200 and "national ID" in bad.content.decode()


def test_it_no_longer_matches_a_national_id_or_phone_in_the_changelist_search(operator, citizen, tmp_path):
    importer.import_file(_write(tmp_path / "a.jsonl", [sample_archive()]))
    archive = services.archive_find(national_id=SAMPLE_NATIONAL_ID)
    for term in (SAMPLE_NATIONAL_ID, SAMPLE_PHONE, "139 1234 0099"):
        page = operator.get(ADMIN_LIST, {"q": term}).content.decode()
        assert str(archive.pk) not in page, term
    assert str(archive.pk) in operator.get(ADMIN_LIST, {"q": str(archive.pk)}).content.decode()
    listing = operator.get(ADMIN_LIST).content.decode()
    assert ADMIN_FIND in listing  # the way to search by identifier is offered, as a form


def test_it_keeps_the_find_form_for_operators_only(client, citizen, db):
    response = client.post(ADMIN_FIND, {"identifier": SAMPLE_NATIONAL_ID})
    assert response.status_code == 302 and "/login/" in response["Location"]
    _no_identifier_in([response["Location"]], SAMPLE_NATIONAL_ID)
    staff = make_user("nosy-staff", Role.DISPATCHER)
    staff.is_staff = True
    staff.save()
    nosy = Client()
    nosy.force_login(staff)
    assert nosy.post(ADMIN_FIND, {"identifier": SAMPLE_NATIONAL_ID}).status_code == 403
