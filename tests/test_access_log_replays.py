"""The same summary delivered again to the same reader on the same case is one read in the
patient's access log (issue 6, item 11), and no health read is granted to an inactive account
anywhere (issue 6, item 2)."""

from __future__ import annotations

import json
import threading

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections

from accounts.models import User
from accounts.services import token_issue
from config.asgi import application
from dispatch.archive_access import health_summary_for
from dispatch.models import Case
from health_records import services
from health_records.models import AccessGrant, AccessLogEntry
from tests.support.archives import CASE, URL, sample_archive
from tests.support.cases import assign
from tests.support.cast import api_client, tap

REPLAYS = 100


@pytest.fixture
def patient(citizen):
    services.archive_put(owner=citizen, data=sample_archive(consent_share_with_120=True))
    return citizen


def _grant(reader, role, patient, **extra):
    return services.grant_open(case_ref=CASE, grantee=reader, role=role, patient=patient, purpose="care", **extra)


def _read(patient, reader, purpose="care"):
    return services.archive_read_for_grant(patient=patient, reader=reader, case_ref=CASE, purpose=purpose)


# --- one read per reader, grant and archive version ---------------------------------------------------


def test_it_logs_the_same_read_repeated_a_hundred_times_once(patient, crew):
    _grant(crew, "crew", patient)
    summaries = [_read(patient, crew) for _ in range(REPLAYS)]
    assert all(s["allergies"][0]["substance"] == "Zorblaxamine" for s in summaries)
    assert AccessLogEntry.objects.count() == 1


def test_it_logs_each_reader_once_not_once_overall(patient, crew, dispatcher):
    _grant(crew, "crew", patient)
    _grant(dispatcher, "dispatcher", patient)
    for _ in range(3):
        _read(patient, crew)
        _read(patient, dispatcher)
    assert sorted(AccessLogEntry.objects.values_list("role", flat=True)) == ["crew", "dispatcher"]


def test_it_logs_a_new_archive_version_as_a_new_read(patient, crew):
    _grant(crew, "crew", patient)
    _read(patient, crew)
    services.archive_put(owner=patient, data=sample_archive(consent_share_with_120=True, chronic_conditions=["asthma"]))
    assert _read(patient, crew)["chronic_conditions"] == ["asthma"]
    _read(patient, crew)
    assert AccessLogEntry.objects.count() == 2


def test_it_logs_a_new_grant_as_a_new_read(patient, crew):
    _grant(crew, "crew", patient)
    _read(patient, crew)
    services.grants_close(case_ref=CASE)
    _grant(crew, "crew", patient)
    _read(patient, crew)
    assert AccessLogEntry.objects.count() == 2


def test_it_logs_a_read_under_an_override_as_a_new_read(patient, crew, dispatcher):
    _grant(crew, "crew", patient)
    _read(patient, crew)
    services.archive_put(owner=patient, data=sample_archive(consent_share_with_120=False))  # consent withdrawn
    _grant(dispatcher, "dispatcher", patient, override_reason="unconscious, no one to consent")
    assert _read(patient, crew)["access_basis"] == "override"
    _read(patient, crew)
    assert list(AccessLogEntry.objects.order_by("seq").values_list("override", flat=True)) == [False, True]


@pytest.mark.django_db(transaction=True)
def test_it_logs_one_entry_when_consoles_of_one_reader_read_at_once(patient, crew):
    _grant(crew, "crew", patient)
    rounds, consoles = 4, 3
    for round_number in range(rounds):
        if round_number:
            services.archive_put(
                owner=patient, data=sample_archive(consent_share_with_120=True, chronic_conditions=[f"c{round_number}"])
            )
        barrier, results, errors = threading.Barrier(consoles), [], []

        def console():
            try:
                barrier.wait(5)
                results.append(_read(patient, crew)["version"])
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=console) for _ in range(consoles)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert not errors and results == [round_number + 1] * consoles
        # Never two entries for the same read, and never none.
        assert AccessLogEntry.objects.count() == round_number + 1


@pytest.mark.django_db(transaction=True)
async def test_it_logs_a_hundred_resumes_on_a_crew_socket_as_one_read(citizen, dispatcher, crew, ambulance):
    as_citizen = await database_sync_to_async(api_client)(citizen)
    as_dispatcher = await database_sync_to_async(api_client)(dispatcher)
    await database_sync_to_async(lambda: as_citizen.put(URL, sample_archive(consent_share_with_120=True), format="json"))()
    case_id = (await database_sync_to_async(lambda: tap(as_citizen))()).json()["id"]
    await database_sync_to_async(assign)(as_dispatcher, case_id, ambulance)
    token = (await database_sync_to_async(token_issue)(user=crew)).key

    communicator = WebsocketCommunicator(application, f"/ws/ambulances/{ambulance.pk}/")
    try:
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        await communicator.send_json_to({"type": "auth", "token": token})
        ready = await communicator.receive_json_from(timeout=5)
        assert ready["type"] == "ready"
        frames = []
        for _ in range(REPLAYS):
            await communicator.send_json_to({"type": "resume", "since": 0})
            frames += [await communicator.receive_json_from(timeout=5) for _ in range(ready["last_seq"])]
        assigned = [f for f in frames if f.get("event") == "case.assigned" and f["data"]["id"] == case_id]
        assert len(assigned) == REPLAYS
        assert all(f["data"]["health_summary"]["available"] for f in assigned)
    finally:
        await communicator.disconnect()
    entries = await database_sync_to_async(
        lambda: list(AccessLogEntry.objects.filter(case_ref=f"case:{case_id}").values_list("role", flat=True))
    )()
    assert entries == ["crew"]


# --- no health read for an inactive account -----------------------------------------------------------


def _deactivate(user):
    # As an operator would, behind the back of any object (a socket's scope) still holding the user.
    User.objects.filter(pk=user.pk).update(is_active=False)


def test_it_refuses_to_open_a_grant_for_an_inactive_account(patient, crew, caplog):
    _deactivate(crew)
    assert crew.is_active  # the stale object still says active: the check reads the database
    with pytest.raises(services.AccessDenied) as caught:
        _grant(crew, "crew", patient)
    assert caught.value.code == "reader_inactive"
    assert not AccessGrant.objects.exists()
    assert any("reader_inactive" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)


def test_it_refuses_a_read_on_an_open_grant_once_the_account_is_deactivated(patient, crew, caplog):
    _grant(crew, "crew", patient)
    assert _read(patient, crew)
    services.archive_put(owner=patient, data=sample_archive(consent_share_with_120=True, chronic_conditions=["new"]))
    _deactivate(crew)
    for _ in range(2):
        with pytest.raises(services.AccessDenied) as caught:
            _read(patient, crew)
        assert caught.value.code == "reader_inactive"
    assert AccessLogEntry.objects.count() == 1  # only the read made while active
    assert any("reader_inactive" in r.getMessage() for r in caplog.records)


def test_it_refuses_even_a_read_already_logged_once_the_account_is_deactivated(patient, crew):
    _grant(crew, "crew", patient)
    _read(patient, crew)
    _deactivate(crew)
    with pytest.raises(services.AccessDenied) as caught:
        _read(patient, crew)
    assert caught.value.code == "reader_inactive"


def test_it_says_reader_inactive_in_the_summary_block(patient, citizen, dispatcher):
    case = Case.objects.get(pk=tap(api_client(citizen)).json()["id"])
    assert health_summary_for(case=case, reader=dispatcher)["available"] is True
    _deactivate(dispatcher)
    assert health_summary_for(case=case, reader=dispatcher) == {"available": False, "reason": "reader_inactive"}


@pytest.mark.django_db(transaction=True)
async def test_it_gives_a_deactivated_crew_no_summary_on_an_open_socket(citizen, dispatcher, crew, ambulance):
    as_citizen = await database_sync_to_async(api_client)(citizen)
    as_dispatcher = await database_sync_to_async(api_client)(dispatcher)
    await database_sync_to_async(lambda: as_citizen.put(URL, sample_archive(consent_share_with_120=True), format="json"))()
    token = (await database_sync_to_async(token_issue)(user=crew)).key
    communicator = WebsocketCommunicator(application, f"/ws/ambulances/{ambulance.pk}/")
    try:
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        await communicator.send_json_to({"type": "auth", "token": token})
        assert (await communicator.receive_json_from(timeout=5))["type"] == "ready"
        await database_sync_to_async(_deactivate)(crew)
        case_id = (await database_sync_to_async(lambda: tap(as_citizen))()).json()["id"]
        await database_sync_to_async(assign)(as_dispatcher, case_id, ambulance)
        # Whatever else reaches the socket (or whether it is closed first), no summary does. Read
        # until the server closes it or has answered two pings: it answers in order, so whatever
        # the assignment sent comes before the second pong (tests/support/streams.nothing_pending).
        outputs, pongs = [], 0
        await communicator.send_json_to({"type": "ping"})
        while pongs < 2:
            outputs.append(await communicator.receive_output(timeout=5))
            if outputs[-1]["type"] == "websocket.close":
                break
            if json.loads(outputs[-1].get("text") or "{}") == {"type": "pong"}:
                pongs += 1
                if pongs < 2:
                    await communicator.send_json_to({"type": "ping"})
        for output in outputs:
            assert '"available": true' not in output.get("text", "")
    finally:
        await communicator.disconnect()
    count = await database_sync_to_async(AccessLogEntry.objects.count)()
    assert count == 0
