"""Silent calls: a caller who cannot speak texts the centre on the case (REST or the case socket),
the dispatcher answers; each text is a case.message event on the dispatch and case streams."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

from accounts.services import token_issue
from config.asgi import application
from dispatch import selectors
from dispatch.models import CaseMessage
from tests.support.cast import tap


def ok(response, status=200):
    assert response.status_code == status, response.content
    return response.json()


@pytest.fixture
def silent_case(as_citizen):
    return ok(tap(as_citizen, complaint="unknown", silent=True), 201)["id"]


def test_it_carries_texts_both_ways_with_the_dispatchers_display_name(as_citizen, as_dispatcher, dispatcher, silent_case):
    dispatcher.first_name = "王调度"
    dispatcher.save()
    mine = ok(as_citizen.post(f"/api/v1/cases/{silent_case}/messages", {"text": "有人在门外，我不能说话"}, format="json"), 201)
    assert mine["sender"] == "caller" and mine["case"] == silent_case
    reply = ok(as_dispatcher.post(f"/api/v1/dispatch/cases/{silent_case}/messages", {"text": "收到，救护车已在路上"}, format="json"), 201)
    assert reply["sender"] == "dispatcher" and reply["author"] == "王调度"
    for client, path in ((as_citizen, f"/api/v1/cases/{silent_case}/messages"), (as_dispatcher, f"/api/v1/dispatch/cases/{silent_case}/messages")):
        listed = ok(client.get(path))
        assert [m["text"] for m in listed["results"]] == ["有人在门外，我不能说话", "收到，救护车已在路上"]
        assert listed["last_seq"] >= 1
    for stream in ("dispatch", f"case.{silent_case}"):
        sent = [e.data for e in selectors.events_after(stream, 0) if e.type == "case.message"]
        assert [m["id"] for m in sent] == [mine["id"], reply["id"]]
        assert "dispatcher1" not in str(sent)  # the username never leaves


def test_it_lists_the_texts_in_the_dispatch_queue_snapshot(as_citizen, as_dispatcher, silent_case):
    ok(as_citizen.post(f"/api/v1/cases/{silent_case}/messages", {"text": "help"}, format="json"), 201)
    body = ok(as_dispatcher.get("/api/v1/dispatch/cases"))
    assert [m["text"] for m in body["messages"]] == ["help"]


def test_it_keeps_a_callers_texts_from_other_citizens_and_from_crews(as_citizen, as_other_citizen, as_crew, silent_case):
    ok(as_citizen.post(f"/api/v1/cases/{silent_case}/messages", {"text": "secret"}, format="json"), 201)
    assert as_other_citizen.get(f"/api/v1/cases/{silent_case}/messages").status_code == 404
    assert as_other_citizen.post(f"/api/v1/cases/{silent_case}/messages", {"text": "x"}, format="json").status_code == 404
    assert as_crew.get(f"/api/v1/dispatch/cases/{silent_case}/messages").status_code == 403
    assert as_other_citizen.get(f"/api/v1/dispatch/cases/{silent_case}/messages").status_code == 403
    assert CaseMessage.objects.count() == 1


@pytest.mark.parametrize("text, status", [("", 400), ("   ", 400), ("x" * 501, 400), ("a\x00b", 400), (None, 400)])
def test_it_refuses_a_bad_text_naming_the_field(as_citizen, silent_case, text, status):
    response = as_citizen.post(f"/api/v1/cases/{silent_case}/messages", {"text": text}, format="json")
    assert response.status_code == status and "text" in response.json()
    assert not CaseMessage.objects.exists()


def test_it_takes_500_characters_and_a_line_break(as_citizen, silent_case):
    ok(as_citizen.post(f"/api/v1/cases/{silent_case}/messages", {"text": "急" * 499 + "\n"}, format="json"), 201)
    ok(as_citizen.post(f"/api/v1/cases/{silent_case}/messages", {"text": "line one\nline two"}, format="json"), 201)


def test_it_closes_the_conversation_with_the_case(as_citizen, as_dispatcher, silent_case):
    ok(as_citizen.post(f"/api/v1/cases/{silent_case}/cancel", {}, format="json"))
    response = as_dispatcher.post(f"/api/v1/dispatch/cases/{silent_case}/messages", {"text": "hello?"}, format="json")
    assert response.status_code == 409 and response.json()["code"] == "case_not_open"


def test_it_limits_the_rate_of_texts_per_side(as_citizen, as_dispatcher, silent_case, settings):
    settings.CASE_MESSAGE_RATE_LIMIT = "3/min"
    for n in range(3):
        ok(as_citizen.post(f"/api/v1/cases/{silent_case}/messages", {"text": f"m{n}"}, format="json"), 201)
    refused = as_citizen.post(f"/api/v1/cases/{silent_case}/messages", {"text": "m3"}, format="json")
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    # The other side keeps its own budget: the centre can still answer.
    ok(as_dispatcher.post(f"/api/v1/dispatch/cases/{silent_case}/messages", {"text": "we hear you"}, format="json"), 201)
    assert CaseMessage.objects.count() == 4


# --- the caller's socket -------------------------------------------------------------------------


async def _open(case_id: int, token: str) -> WebsocketCommunicator:
    socket = WebsocketCommunicator(application, f"/ws/cases/{case_id}/")
    connected, _ = await socket.connect()
    assert connected
    await socket.send_json_to({"type": "auth", "token": token})
    ready = await socket.receive_json_from(timeout=5)
    assert ready["type"] == "ready", ready
    return socket


@pytest.mark.django_db(transaction=True)
def test_it_takes_a_text_frame_on_the_case_socket_and_sends_it_back_as_an_event(citizen, dispatcher):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_issue(user=citizen).key}")
    case_id = ok(tap(client, silent=True), 201)["id"]
    token = token_issue(user=citizen).key

    async def scenario():
        socket = await _open(case_id, token)
        await socket.send_json_to({"type": "message", "text": "I am hiding upstairs"})
        event = await socket.receive_json_from(timeout=5)
        assert event["type"] == "event" and event["event"] == "case.message"
        assert event["data"]["text"] == "I am hiding upstairs" and event["data"]["sender"] == "caller"
        await socket.send_json_to({"type": "message", "text": ""})
        error = await socket.receive_json_from(timeout=5)
        assert error["type"] == "error" and error["code"] == "bad_message" and "text" in error["detail"]
        await socket.disconnect()

    async_to_sync(scenario)()
    assert [e.data["text"] for e in selectors.events_after("dispatch", 0) if e.type == "case.message"] == ["I am hiding upstairs"]


@pytest.mark.django_db(transaction=True)
def test_it_refuses_a_text_frame_from_a_dispatcher_following_the_case_stream(citizen, dispatcher):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_issue(user=citizen).key}")
    case_id = ok(tap(client, silent=True), 201)["id"]
    token = token_issue(user=dispatcher).key

    async def scenario():
        socket = await _open(case_id, token)
        await socket.send_json_to({"type": "message", "text": "pretending to be the caller"})
        error = await socket.receive_json_from(timeout=5)
        assert error["type"] == "error" and error["code"] == "forbidden"
        await socket.disconnect()

    async_to_sync(scenario)()
    assert not CaseMessage.objects.exists()
