"""The citizen's own archive over the API: GET/PUT /api/v1/me/health-archive and the access log."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from health_records import services
from health_records.models import Archive, ArchiveVersion
from health_records.selectors import history_of
from tests.support.archives import LOG_URL, SAMPLE_NATIONAL_ID, URL, sample_archive


def test_it_answers_404_with_a_clear_detail_before_any_archive_exists(as_citizen):
    response = as_citizen.get(URL)
    assert response.status_code == 404
    assert "no health archive yet" in response.json()["detail"]


def test_it_creates_the_archive_with_put_and_returns_it_with_get(as_citizen, citizen):
    response = as_citizen.put(URL, sample_archive(), format="json")
    assert response.status_code == 201, response.content
    body = as_citizen.get(URL).json()
    assert body["name"] == "欧阳青峰 Ouyang Qingfeng"
    assert body["allergies"] == [{"substance": "Zorblaxamine", "reaction": "purple Vexillum hives", "severity": "severe"}]
    assert body["blood_type"] == {"abo": "AB", "rh": "negative"}
    assert body["version"] == 1
    assert body["verified_at"] is not None
    assert Archive.objects.get(owner=citizen).source == "citizen"


def test_it_keeps_consent_off_until_the_citizen_turns_it_on(as_citizen, citizen):
    assert as_citizen.put(URL, sample_archive(), format="json").json()["consent_share_with_120"] is False
    body = as_citizen.put(URL, sample_archive(consent_share_with_120=True), format="json").json()
    assert body["consent_share_with_120"] is True
    assert Archive.objects.get(owner=citizen).consent_share_with_120 is True


def test_it_keeps_the_previous_version_encrypted_when_the_archive_changes(as_citizen, citizen):
    as_citizen.put(URL, sample_archive(), format="json")
    response = as_citizen.put(URL, sample_archive(medications=[{"name": "Metformin", "dose": "500 mg"}]), format="json")
    assert response.status_code == 200
    assert response.json()["version"] == 2
    old = ArchiveVersion.objects.get(archive__owner=citizen)
    assert b"Levothyroxquin" not in bytes(old.ciphertext)
    assert history_of(owner=citizen)[0]["data"]["medications"] == [{"name": "Levothyroxquin", "dose": "75 μg once daily"}]


def test_it_writes_no_new_version_when_the_contents_are_unchanged(as_citizen, citizen):
    as_citizen.put(URL, sample_archive(), format="json")
    body = as_citizen.put(URL, sample_archive(), format="json").json()
    assert body["version"] == 1
    assert not ArchiveVersion.objects.filter(archive__owner=citizen).exists()


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"blood_type": {"abo": "C", "rh": "positive"}}, "blood_type"),
        ({"blood_type": "A+"}, "blood_type"),
        ({"date_of_birth": (date.today() + timedelta(days=1)).isoformat(), "national_id": None}, "date_of_birth"),
        ({"date_of_birth": "12/04/1968"}, "date_of_birth"),
        ({"notes": "x" * 2001}, "notes"),
        ({"name": 42}, "name"),
        ({"name": ""}, "name"),
        ({"allergies": "penicillin"}, "allergies"),
        ({"allergies": [{"reaction": "rash"}]}, "allergies"),
        ({"allergies": [{"substance": "penicillin", "severity": "deadly"}]}, "allergies"),
        ({"medications": [{"name": "aspirin", "dose": 100}]}, "medications"),
        ({"consent_share_with_120": "yes"}, "consent_share_with_120"),
        ({"national_id": "410105196804121230"}, "national_id"),  # wrong check character
        ({"national_id": "4101051968041212"}, "national_id"),  # too short
        ({"date_of_birth": "1970-01-01"}, "national_id"),  # the ID says 1968-04-12
        ({"sex": "female"}, "national_id"),  # the ID says a man
        ({"sex": "robot"}, "sex"),
        ({"phone": "12345"}, "phone"),
        ({"emergency_contacts": [{"name": "A", "relation": "son", "phone": "call me"}]}, "emergency_contacts"),
        ({"emergency_contacts": [{"name": "A", "relation": "son", "phone": "13700001111"}] * 6}, "emergency_contacts"),
        ({"pregnancy": {"status": "not_pregnant", "due_date": date.today().isoformat()}}, "pregnancy"),
        ({"pregnancy": {"status": "maybe"}}, "pregnancy"),
        ({"past_surgeries": [{"name": "x", "year": 1800}]}, "past_surgeries"),
        ({"implanted_devices": ["d"] * 21}, "implanted_devices"),
        ({"alergies": []}, "alergies"),  # a typo is an unknown field, not silently dropped
    ],
)
def test_it_refuses_an_invalid_field_naming_it_and_writes_nothing(as_citizen, citizen, overrides, field):
    response = as_citizen.put(URL, sample_archive(**overrides), format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert not Archive.objects.filter(owner=citizen).exists()


def test_it_refuses_a_missing_name(as_citizen):
    data = sample_archive()
    del data["name"]
    response = as_citizen.put(URL, data, format="json")
    assert response.status_code == 400
    assert response.json()["name"] == ["This field is required."]


def test_it_refuses_a_body_that_is_not_an_object(as_citizen):
    response = as_citizen.put(URL, [1, 2], format="json")
    assert response.status_code == 400
    assert "non_field_errors" in response.json()


def test_it_refuses_a_10_mb_note_before_reading_it(as_citizen, citizen):
    response = as_citizen.put(URL, sample_archive(notes="x" * 10_000_000), format="json")
    assert response.status_code == 413
    assert not Archive.objects.filter(owner=citizen).exists()


def test_it_leaves_the_previous_archive_intact_when_an_update_is_invalid(as_citizen, citizen):
    as_citizen.put(URL, sample_archive(), format="json")
    response = as_citizen.put(URL, sample_archive(blood_type={"abo": "Z"}), format="json")
    assert response.status_code == 400
    body = as_citizen.get(URL).json()
    assert body["version"] == 1 and body["blood_type"] == {"abo": "AB", "rh": "negative"}


def test_it_answers_the_same_whether_or_not_another_archive_states_the_national_id(as_citizen, as_other_citizen):
    # A 409 here told anyone whether a stranger has an archive (issue 6, item 7): see test_archive_claims.
    assert as_other_citizen.put(URL, sample_archive(phone=None), format="json").status_code == 201
    response = as_citizen.put(URL, sample_archive(phone=None), format="json")
    assert response.status_code == 201
    assert "national_id" not in response.json() or response.json()["national_id"] == SAMPLE_NATIONAL_ID


def test_it_shows_each_citizen_only_their_own_archive(as_citizen, as_other_citizen):
    as_citizen.put(URL, sample_archive(), format="json")
    response = as_other_citizen.get(URL)
    assert response.status_code == 404
    assert "Ouyang" not in response.content.decode()


@pytest.mark.parametrize("client_name", ["as_dispatcher", "as_crew", "as_hospital"])
def test_it_refuses_staff_at_the_citizen_endpoints(request, client_name):
    client = request.getfixturevalue(client_name)
    assert client.get(URL).status_code == 403
    assert client.put(URL, sample_archive(), format="json").status_code == 403
    assert client.get(LOG_URL).status_code == 403


def test_it_refuses_anonymous_callers(anonymous):
    assert anonymous.get(URL).status_code in (401, 403)
    assert anonymous.get(LOG_URL).status_code in (401, 403)


def test_it_shows_the_citizen_who_read_their_archive(as_citizen, citizen, dispatcher, other_citizen):
    as_citizen.put(URL, sample_archive(consent_share_with_120=True), format="json")
    services.grant_open(case_ref="case:42", grantee=dispatcher, role="dispatcher", patient=citizen, purpose="triage")
    services.archive_read_for_grant(patient=citizen, reader=dispatcher, case_ref="case:42", purpose="triage")
    body = as_citizen.get(LOG_URL).json()
    assert len(body["entries"]) == 1
    entry = body["entries"][0]
    assert entry["reader"] == "dispatcher1"
    assert entry["role"] == "dispatcher"
    assert entry["case_ref"] == "case:42"
    assert entry["purpose"] == "triage"
    assert entry["override"] is False
    assert entry["at"]
    assert body["next_before"] is None
    # Nobody else sees it.
    from tests.support.cast import api_client

    assert api_client(other_citizen).get(LOG_URL).json()["entries"] == []


def test_it_pages_the_access_log_newest_first(as_citizen, citizen, dispatcher):
    as_citizen.put(URL, sample_archive(consent_share_with_120=True), format="json")
    services.grant_open(case_ref="case:7", grantee=dispatcher, role="dispatcher", patient=citizen, purpose="triage")
    for purpose in ("p1", "p2", "p3"):
        services.archive_read_for_grant(patient=citizen, reader=dispatcher, case_ref="case:7", purpose=purpose)
    first = as_citizen.get(LOG_URL, {"limit": 2}).json()
    assert [e["purpose"] for e in first["entries"]] == ["p3", "p2"]
    rest = as_citizen.get(LOG_URL, {"limit": 2, "before": first["next_before"]}).json()
    assert [e["purpose"] for e in rest["entries"]] == ["p1"]
    assert rest["next_before"] is None


@pytest.mark.parametrize("params", [{"limit": "x"}, {"limit": 0}, {"limit": 501}, {"before": "-1"}])
def test_it_refuses_bad_access_log_paging(as_citizen, params):
    response = as_citizen.get(LOG_URL, params)
    assert response.status_code == 400
    assert set(params) & set(response.json())


def test_it_documents_the_archive_endpoints_in_the_schema(as_citizen):
    schema = as_citizen.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert "/api/v1/me/health-archive" in schema
    assert "/api/v1/me/health-archive/access-log" in schema
    assert "consent_share_with_120" in schema


def test_it_names_each_reader_as_the_citizen_recognises_them(
    as_citizen, citizen, dispatcher, crew, ambulance, hospital_user, hospital
):
    as_citizen.put(URL, sample_archive(consent_share_with_120=True), format="json")
    for reader, role in ((dispatcher, "dispatcher"), (crew, "crew"), (hospital_user, "hospital")):
        services.grant_open(case_ref="case:9", grantee=reader, role=role, patient=citizen, purpose="triage")
        services.archive_read_for_grant(patient=citizen, reader=reader, case_ref="case:9", purpose="triage")
    entries = as_citizen.get(LOG_URL).json()["entries"]
    shown = {entry["role"]: entry["reader_display"] for entry in entries}
    assert shown == {
        "dispatcher": "120 dispatcher 120调度员",
        "crew": f"{ambulance.call_sign} crew 车组",
        "hospital": f"{hospital.name_zh} {hospital.name_en}",
    }
    # The usernames stay for clients that read them (extend, don't break).
    assert {entry["reader"] for entry in entries} == {"dispatcher1", "crew-t1", "hpph-ed"}
