"""Who may read an archive, and when: grants tied to a case and a role, consent or break-glass."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Role
from health_records import crypto, services
from health_records.models import AccessGrant, AccessLogEntry, Archive, OverrideReview
from tests.support.archives import CASE, sample_archive
from tests.support.cast import make_user


@pytest.fixture
def consenting_patient(citizen):
    services.archive_put(owner=citizen, data=sample_archive(consent_share_with_120=True))
    return citizen


@pytest.fixture
def private_patient(citizen):
    services.archive_put(owner=citizen, data=sample_archive())  # consent stays off
    return citizen


def _grant(user, role, patient, case=CASE, **extra):
    return services.grant_open(case_ref=case, grantee=user, role=role, patient=patient, purpose="emergency care", **extra)


def _read(patient, reader, case=CASE, purpose="emergency care"):
    return services.archive_read_for_grant(patient=patient, reader=reader, case_ref=case, purpose=purpose)


def _refused(code: str, patient, reader, case=CASE):
    before = AccessLogEntry.objects.count()
    with pytest.raises(services.AccessDenied) as caught:
        _read(patient, reader, case)
    assert caught.value.code == code
    assert AccessLogEntry.objects.count() == before  # a refusal writes no read
    return caught.value


@pytest.mark.parametrize("role, user_fixture", [("dispatcher", "dispatcher"), ("crew", "crew"), ("hospital", "hospital_user")])
def test_it_lets_each_role_on_the_case_read_a_consenting_patients_summary(request, consenting_patient, role, user_fixture):
    reader = request.getfixturevalue(user_fixture)
    _grant(reader, role, consenting_patient)
    summary = _read(consenting_patient, reader)
    assert summary["allergies"] == [{"substance": "Zorblaxamine", "reaction": "purple Vexillum hives", "severity": "severe"}]
    assert summary["blood_type"] == {"abo": "AB", "rh": "negative"}
    assert summary["chronic_conditions"] == ["Hashimoto-Quokka thyroiditis"]
    assert summary["medications"][0]["name"] == "Levothyroxquin"
    assert summary["implanted_devices"] == ["Medtronic-Azure-XT pacemaker"]
    assert summary["advance_directives"] == "No-Intubation-Sapphire"
    assert summary["emergency_contacts"][0]["name"] == "Wenxiu Brightwater"
    assert summary["access_basis"] == "consent"
    assert summary["verified_at"]
    entry = AccessLogEntry.objects.get()
    assert (entry.reader_id, entry.role, entry.case_ref, entry.override) == (reader.pk, role, CASE, False)


def test_it_keeps_identifiers_and_free_notes_out_of_the_summary(consenting_patient, dispatcher):
    _grant(dispatcher, "dispatcher", consenting_patient)
    summary = _read(consenting_patient, dispatcher)
    assert not {"national_id", "phone", "notes"} & set(summary)


def test_it_refuses_a_reader_without_a_grant(consenting_patient, dispatcher):
    _refused("no_grant", consenting_patient, dispatcher)


def test_it_refuses_a_grant_for_another_case(consenting_patient, crew):
    _grant(crew, "crew", consenting_patient, case="case:41")
    _refused("no_grant", consenting_patient, crew, case=CASE)


def test_it_refuses_a_grant_once_the_case_is_closed(consenting_patient, dispatcher, crew):
    _grant(dispatcher, "dispatcher", consenting_patient)
    _grant(crew, "crew", consenting_patient)
    assert _read(consenting_patient, crew)
    assert services.grants_close(case_ref=CASE) == 2
    _refused("grant_closed", consenting_patient, crew)
    _refused("grant_closed", consenting_patient, dispatcher)


def test_it_refuses_an_expired_grant(consenting_patient, crew):
    grant = _grant(crew, "crew", consenting_patient)
    AccessGrant.objects.filter(pk=grant.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    _refused("grant_expired", consenting_patient, crew)


def test_it_refuses_to_read_another_patients_archive_on_a_grant(consenting_patient, other_citizen, crew):
    services.archive_put(owner=other_citizen, data=sample_archive(name="Other", national_id=None, phone=None, consent_share_with_120=True))
    _grant(crew, "crew", consenting_patient)
    _refused("wrong_patient", other_citizen, crew)


def test_it_refuses_another_readers_grant(consenting_patient, crew, other_crew):
    _grant(crew, "crew", consenting_patient)
    _refused("no_grant", consenting_patient, other_crew)


def test_it_refuses_without_consent_and_without_an_override(private_patient, dispatcher, crew):
    _grant(dispatcher, "dispatcher", private_patient)
    _grant(crew, "crew", private_patient)
    _refused("no_consent", private_patient, dispatcher)
    _refused("no_consent", private_patient, crew)


def test_it_refuses_as_soon_as_the_patient_withdraws_consent(consenting_patient, crew):
    _grant(crew, "crew", consenting_patient)
    assert _read(consenting_patient, crew)
    services.archive_put(owner=consenting_patient, data=sample_archive(consent_share_with_120=False))
    _refused("no_consent", consenting_patient, crew)


def test_it_opens_the_archive_to_the_case_on_a_dispatchers_emergency_override_and_flags_it(
    private_patient, dispatcher, crew, hospital_user
):
    grant = _grant(dispatcher, "dispatcher", private_patient, override_reason="Unconscious, no consent on file")
    assert grant.override_review == OverrideReview.PENDING
    _grant(crew, "crew", private_patient)
    _grant(hospital_user, "hospital", private_patient)
    for reader in (dispatcher, crew, hospital_user):
        assert _read(private_patient, reader)["access_basis"] == "override"
    assert list(AccessLogEntry.objects.values_list("override", flat=True)) == [True, True, True]
    reviewed = services.override_mark_reviewed(grant_id=grant.pk, reviewer=dispatcher)
    assert reviewed.override_review == OverrideReview.REVIEWED


def test_it_ends_the_override_with_the_case(private_patient, dispatcher, crew):
    _grant(dispatcher, "dispatcher", private_patient, override_reason="Unconscious")
    _grant(crew, "crew", private_patient)
    services.grants_close(case_ref=CASE)
    _grant(crew, "crew", private_patient, case="case:99")
    _refused("no_consent", private_patient, crew, case="case:99")


def test_it_refuses_an_override_from_anyone_but_the_dispatcher(private_patient, crew):
    with pytest.raises(services.InvalidGrant):
        _grant(crew, "crew", private_patient, override_reason="I think it is urgent")
    assert not AccessGrant.objects.exists()


def test_it_refuses_an_override_without_a_reason(private_patient, dispatcher):
    with pytest.raises(services.InvalidGrant):
        _grant(dispatcher, "dispatcher", private_patient, override_reason="   ")


@pytest.mark.parametrize(
    "role, user_fixture",
    [("dispatcher", "crew"), ("crew", "hospital_user"), ("hospital", "dispatcher"), ("crew", "other_citizen")],
)
def test_it_refuses_a_grant_whose_role_does_not_match_the_account(request, citizen, role, user_fixture):
    with pytest.raises(services.InvalidGrant) as caught:
        _grant(request.getfixturevalue(user_fixture), role, citizen)
    assert caught.value.code == "role_mismatch"


@pytest.mark.parametrize("bad", [{"case_ref": ""}, {"purpose": ""}, {"role": "janitor"}, {"case_ref": "x" * 65}])
def test_it_refuses_a_malformed_grant(citizen, dispatcher, bad):
    arguments = {"case_ref": CASE, "grantee": dispatcher, "role": "dispatcher", "patient": citizen, "purpose": "triage", **bad}
    with pytest.raises(services.InvalidGrant):
        services.grant_open(**arguments)


def test_it_returns_the_same_open_grant_when_opened_twice(citizen, dispatcher):
    assert _grant(dispatcher, "dispatcher", citizen).pk == _grant(dispatcher, "dispatcher", citizen).pk
    assert AccessGrant.objects.count() == 1


def test_it_answers_none_and_logs_nothing_when_the_patient_has_no_archive(citizen, dispatcher):
    _grant(dispatcher, "dispatcher", citizen)
    assert _read(citizen, dispatcher) is None
    assert not AccessLogEntry.objects.exists()


def test_it_returns_no_data_and_logs_no_read_when_the_archive_is_tampered(consenting_patient, crew, caplog):
    _grant(crew, "crew", consenting_patient)
    row = Archive.objects.get(owner=consenting_patient)
    Archive.objects.filter(pk=row.pk).update(nonce=bytes(12))
    with pytest.raises(crypto.ArchiveTampered):
        _read(consenting_patient, crew)
    assert not AccessLogEntry.objects.exists()
    assert any(r.levelname == "CRITICAL" for r in caplog.records)


def test_it_lets_the_owner_read_their_archive_without_a_grant(consenting_patient):
    assert services.archive_get_own(owner=consenting_patient)["name"].endswith("Ouyang Qingfeng")


def test_it_links_an_ownerless_archive_to_an_account_only_once(db):
    first = make_user("13811112222", Role.CITIZEN, phone="13811112222")
    second = make_user("13811113333", Role.CITIZEN, phone="13811113333")
    services.archive_put(owner=first, data=sample_archive())
    archive = Archive.objects.get(owner=first)
    Archive.objects.filter(pk=archive.pk).update(owner=None)
    services.archive_link_owner(archive_id=archive.pk, owner=second)
    assert services.archive_get_own(owner=second)["name"].endswith("Ouyang Qingfeng")
    with pytest.raises(services.InvalidGrant):
        services.archive_link_owner(archive_id=archive.pk, owner=first)
