"""A grant's time limit is a limit (issue 6, item 5): once it has passed on a case that stays at the
same stage, reads stop until a person renews the grant with a reason, or the case moves on."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from health_records import services
from health_records.models import AccessGrant, AccessLogEntry
from tests.support.archives import CASE, DISTINCTIVE, URL, sample_archive
from tests.support.cases import assign, dispatcher_view, new_case

REASON = "still on scene, patient unconscious, need allergies"


@pytest.fixture
def patient(citizen):
    services.archive_put(owner=citizen, data=sample_archive(consent_share_with_120=True))
    return citizen


@pytest.fixture
def consenting(as_citizen):
    assert as_citizen.put(URL, sample_archive(consent_share_with_120=True), format="json").status_code == 201


def _open(reader, role, patient, stage="received"):
    return services.grant_open(case_ref=CASE, grantee=reader, role=role, patient=patient, purpose="care", stage=stage)


def _read(patient, reader):
    return services.archive_read_for_grant(patient=patient, reader=reader, case_ref=CASE, purpose="care")


def _expire(case_ref=CASE):
    AccessGrant.objects.filter(case_ref=case_ref, closed_at__isnull=True).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )


# --- services ----------------------------------------------------------------------------------


def test_it_does_not_silently_reopen_an_expired_grant_at_the_same_stage(patient, crew):
    grant = _open(crew, "crew", patient)
    assert _read(patient, crew)
    _expire()
    again = _open(crew, "crew", patient)
    assert again.pk == grant.pk and again.expires_at <= timezone.now()
    with pytest.raises(services.AccessDenied) as caught:
        _read(patient, crew)
    assert caught.value.code == "grant_expired"
    assert AccessGrant.objects.filter(case_ref=CASE).count() == 1


def test_it_refuses_expired_reads_without_a_stage_too(patient, dispatcher):
    services.grant_open(case_ref=CASE, grantee=dispatcher, role="dispatcher", patient=patient, purpose="triage")
    _expire()
    services.grant_open(case_ref=CASE, grantee=dispatcher, role="dispatcher", patient=patient, purpose="triage")
    with pytest.raises(services.AccessDenied) as caught:
        services.archive_read_for_grant(patient=patient, reader=dispatcher, case_ref=CASE, purpose="triage")
    assert caught.value.code == "grant_expired"


def test_it_opens_a_fresh_grant_once_the_case_has_moved_on(patient, crew):
    first = _open(crew, "crew", patient, stage="dispatched")
    _expire()
    fresh = _open(crew, "crew", patient, stage="on_scene")
    assert fresh.pk != first.pk and fresh.stage == "on_scene" and fresh.expires_at > timezone.now()
    assert _read(patient, crew)
    assert AccessGrant.objects.get(pk=first.pk).closed_at is not None


def test_it_counts_a_stage_reached_before_the_expiry_as_the_stage_that_expired(patient, crew):
    # The case moved on while the grant was valid: its later expiry at that stage is final.
    _open(crew, "crew", patient, stage="dispatched")
    _open(crew, "crew", patient, stage="on_scene")
    _expire()
    _open(crew, "crew", patient, stage="on_scene")
    with pytest.raises(services.AccessDenied) as caught:
        _read(patient, crew)
    assert caught.value.code == "grant_expired"


@pytest.mark.parametrize("reason", ["12345", "          ", "aaaaaaaaaaaa", "ok", "1234567890!", None, "x" * 501])
def test_it_refuses_a_renewal_without_a_reason_in_words(patient, dispatcher, reason):
    _open(dispatcher, "dispatcher", patient)
    _expire()
    with pytest.raises(services.InvalidGrant) as caught:
        services.grant_renew(case_ref=CASE, actor=dispatcher, reason=reason)
    assert caught.value.code == "invalid_reason"
    assert AccessGrant.objects.get().expires_at <= timezone.now()


def test_it_lets_a_person_renew_with_a_reason_logged_without_the_reason_text(patient, dispatcher, crew, caplog):
    _open(dispatcher, "dispatcher", patient)
    _open(crew, "crew", patient)
    assert _read(patient, crew)
    _expire()
    caplog.set_level(logging.INFO)
    renewed = services.grant_renew(case_ref=CASE, actor=dispatcher, reason=REASON)
    assert len(renewed) == 2
    for grant in AccessGrant.objects.all():
        assert grant.expires_at > timezone.now() + timedelta(hours=1)
        assert (grant.renewal_reason, grant.renewed_by_id) == (REASON, dispatcher.pk) and grant.renewed_at
    assert _read(patient, crew)
    # The read after a renewal is a new read in the patient's log.
    assert AccessLogEntry.objects.count() == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "RENEWED" in r.getMessage()]
    assert len(warnings) == 1 and CASE in warnings[0].getMessage()
    assert "unconscious" not in caplog.text and not any(word in caplog.text for word in DISTINCTIVE)


def test_it_lets_renewed_grants_expire_again(patient, crew, dispatcher):
    _open(crew, "crew", patient)
    _expire()
    services.grant_renew(case_ref=CASE, actor=dispatcher, reason=REASON)
    _expire()
    _open(crew, "crew", patient)
    with pytest.raises(services.AccessDenied) as caught:
        _read(patient, crew)
    assert caught.value.code == "grant_expired"


def test_it_lets_a_crew_renew_only_its_own_grant(patient, crew, dispatcher, other_crew):
    _open(dispatcher, "dispatcher", patient)
    _open(crew, "crew", patient)
    _expire()
    renewed = services.grant_renew(case_ref=CASE, actor=crew, reason=REASON)
    assert [g.grantee_id for g in renewed] == [crew.pk]
    assert AccessGrant.objects.get(grantee=dispatcher).expires_at <= timezone.now()
    with pytest.raises(services.InvalidGrant) as caught:
        services.grant_renew(case_ref=CASE, actor=other_crew, reason=REASON)
    assert caught.value.code == "nothing_to_renew"


def test_it_refuses_a_renewal_by_a_citizen_or_with_nothing_expired(patient, citizen, dispatcher):
    _open(dispatcher, "dispatcher", patient)
    with pytest.raises(services.InvalidGrant) as caught:
        services.grant_renew(case_ref=CASE, actor=dispatcher, reason=REASON)
    assert caught.value.code == "nothing_to_renew"
    _expire()
    with pytest.raises(services.InvalidGrant) as caught:
        services.grant_renew(case_ref=CASE, actor=citizen, reason=REASON)
    assert caught.value.code == "role_mismatch"


# --- over the API -------------------------------------------------------------------------------


def _renew(client, case_id, reason=REASON):
    return client.post(f"/api/v1/dispatch/cases/{case_id}/health-renew", {"reason": reason}, format="json")


def test_it_shows_grant_expired_until_a_dispatcher_renews_it_with_a_reason(consenting, as_citizen, as_dispatcher):
    case_id = new_case(as_citizen)
    assert dispatcher_view(as_dispatcher, case_id)["available"] is True
    _expire(f"case:{case_id}")
    assert dispatcher_view(as_dispatcher, case_id) == {"available": False, "reason": "grant_expired"}
    refused = _renew(as_dispatcher, case_id, "12345")
    assert refused.status_code == 400 and "reason" in refused.json()
    assert dispatcher_view(as_dispatcher, case_id)["reason"] == "grant_expired"
    response = _renew(as_dispatcher, case_id)
    assert response.status_code == 200, response.content
    assert response.json()["renewed"] == 1 and response.json()["expires_at"]
    assert dispatcher_view(as_dispatcher, case_id)["available"] is True
    assert len(as_citizen.get("/api/v1/me/health-archive/access-log").json()["entries"]) == 2


def test_it_gives_a_fresh_grant_when_the_case_moves_on_after_the_expiry(
    consenting, as_citizen, as_dispatcher, ambulance
):
    case_id = new_case(as_citizen)
    assert dispatcher_view(as_dispatcher, case_id)["available"] is True
    _expire(f"case:{case_id}")
    assert dispatcher_view(as_dispatcher, case_id)["reason"] == "grant_expired"
    assign(as_dispatcher, case_id, ambulance)  # a unit is on its way: a new stage of care
    assert dispatcher_view(as_dispatcher, case_id)["available"] is True


def test_it_answers_409_when_nothing_expired_or_the_case_is_over(consenting, as_citizen, as_dispatcher):
    case_id = new_case(as_citizen)
    dispatcher_view(as_dispatcher, case_id)
    response = _renew(as_dispatcher, case_id)
    assert response.status_code == 409 and response.json()["code"] == "nothing_to_renew"
    assert as_citizen.post(f"/api/v1/cases/{case_id}/cancel", {}, format="json").status_code == 200
    response = _renew(as_dispatcher, case_id)
    assert response.status_code == 409 and response.json()["code"] == "case_not_open"
    assert _renew(as_dispatcher, 10**9).status_code == 404


def test_it_lets_only_dispatchers_renew_over_the_api(consenting, as_citizen, as_dispatcher, as_crew):
    case_id = new_case(as_citizen)
    dispatcher_view(as_dispatcher, case_id)
    _expire(f"case:{case_id}")
    for client in (as_crew, as_citizen):
        assert _renew(client, case_id).status_code == 403
    assert AccessGrant.objects.get(case_ref=f"case:{case_id}").expires_at <= timezone.now()


def test_it_documents_the_renewal_endpoint(as_dispatcher):
    schema = as_dispatcher.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/v1/dispatch/cases/{case_id}/health-renew"]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert schema["components"]["schemas"][ref]["required"] == ["reason"]
    assert {"200", "400", "404", "409"} <= set(operation["responses"])
