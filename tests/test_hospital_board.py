"""The hospital's admission board (院前接收): who may open /console/hospital/, what the page hands its
script, and today's arrivals (GET /api/v1/hospitals/{id}/arrivals): scoped to the hospital, and
never any health data."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import Role
from dispatch.models import Admission
from tests.support.archives import DISTINCTIVE, LOG_URL, URL, sample_archive
from tests.support.cases import assign, crew_step, new_case, to_hospital
from tests.support.cast import make_user

BOARD = "/console/hospital/"


def arrivals_url(hospital, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/api/v1/hospitals/{hospital.pk}/arrivals" + (f"?{query}" if query else "")


def browser_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- the page ------------------------------------------------------------------------------------


def test_it_sends_an_anonymous_visitor_to_sign_in_first(db):
    response = Client().get(BOARD)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={BOARD}"


def test_it_shows_a_hospital_user_the_board_of_their_own_hospital(hospital_user, hospital, other_hospital):
    response = browser_for(hospital_user).get(BOARD)
    assert response.status_code == 200
    html = response.content.decode()
    assert hospital.name_en in html and "Admission board" in html and "院前接收" not in html
    chinese = browser_for(hospital_user).get(BOARD, HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()
    assert hospital.name_zh in chinese and "院前接收" in chinese and "Admission board" not in chinese
    config = json.loads(re.search(r'<script id="board-config" type="application/json">(.*?)</script>', html, re.S).group(1))
    assert config["hospital"]["id"] == hospital.pk and config["hospital"]["ed_free_beds"] == 5
    assert config["ws_path"] == f"/ws/hospitals/{hospital.pk}/"
    assert config["labels"]["complaint"]["chest_pain"] == "Chest pain 胸痛"
    # The board counts ETAs on the server's clock, not the ward PC's.
    assert abs(parse_datetime(config["server_time"]) - timezone.now()) < timedelta(seconds=5)
    # The session's fetch() calls send the CSRF cookie back; the page is never cached.
    assert "csrftoken" in response.cookies
    assert "no-store" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


def test_it_runs_no_inline_script_or_style_under_the_content_security_policy(hospital_user):
    html = browser_for(hospital_user).get(BOARD).content.decode()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
    assert scripts
    for attrs, body in scripts:
        # Data only (json_script), or a file from our origin: never code in the page.
        assert 'type="application/json"' in attrs or ("src=" in attrs and not body.strip()), attrs
    assert not re.search(r"\sstyle=", html) and "<style" not in html
    assert not re.search(r"\son[a-z]+=", html)


@pytest.mark.parametrize("who", ["citizen", "crew", "dispatcher"])
def test_it_refuses_every_other_role_with_a_clear_message(request, who):
    user = request.getfixturevalue(who)
    response = browser_for(user).get(BOARD)
    assert response.status_code == 403
    html = response.content.decode()
    assert "Only hospital staff may open the admission board." in html
    assert "board-config" not in html


def test_it_tells_a_hospital_user_bound_to_no_hospital_what_to_do(db):
    response = browser_for(make_user("ed-nobody", Role.HOSPITAL)).get(BOARD)
    assert response.status_code == 403
    html = response.content.decode()
    assert "not linked to a hospital" in html and "未绑定医院" not in html
    chinese = browser_for(make_user("ed-nobody-zh", Role.HOSPITAL)).get(BOARD, HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()
    assert "未绑定医院" in chinese and "not linked to a hospital" not in chinese
    assert "board-config" not in html


# --- today's arrivals --------------------------------------------------------------------------------


@pytest.fixture
def consenting(as_citizen):

    assert as_citizen.put(URL, sample_archive(consent_share_with_120=True), format="json").status_code == 201


def hand_over(as_citizen, as_dispatcher, as_crew, ambulance, hospital, as_hospital=None, *, registration_no="ED-0001") -> int:
    """A consenting caller's patient taken to ``hospital`` and handed over; returns the admission id."""
    case_id = new_case(as_citizen)
    to_hospital(as_dispatcher, as_crew, case_id, ambulance, hospital)
    admission = Admission.objects.get(case_id=case_id)
    if as_hospital is not None:
        ack = as_hospital.post(f"/api/v1/admissions/{admission.pk}/acknowledge", {"registration_no": registration_no}, format="json")
        assert ack.status_code == 200, ack.content
    crew_step(as_crew, ambulance, "at_hospital")
    crew_step(as_crew, ambulance, "handed_over")
    return admission.pk


def test_it_lists_the_patients_handed_over_today_without_any_health_data(
    consenting, as_citizen, as_dispatcher, as_crew, as_hospital, ambulance, hospital
):
    case_id = new_case(as_citizen)
    to_hospital(as_dispatcher, as_crew, case_id, ambulance, hospital)
    admission_id = Admission.objects.get(case_id=case_id).pk
    # While the patient is on the way, the feed carries the summary (the board's health block)...
    feed = as_hospital.get(f"/api/v1/hospitals/{hospital.pk}/admissions").json()
    assert feed["results"][0]["health_summary"]["available"] is True
    assert as_hospital.post(f"/api/v1/admissions/{admission_id}/acknowledge", {"registration_no": "ED-2026-0042"}, format="json").status_code == 200
    crew_step(as_crew, ambulance, "at_hospital")
    crew_step(as_crew, ambulance, "handed_over")
    # ...once handed over, the patient is today's arrival, and the arrivals list has none of it.
    response = as_hospital.get(arrivals_url(hospital))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 1
    assert abs(parse_datetime(body["now"]) - timezone.now()) < timedelta(seconds=5)
    arrival = body["results"][0]
    assert (arrival["id"], arrival["case"], arrival["status"]) == (admission_id, case_id, "handed_over")
    assert (arrival["registration_no"], arrival["complaint"], arrival["ambulance"]["call_sign"]) == ("ED-2026-0042", "chest_pain", "ZZ120-T-1")
    assert "health_summary" not in arrival
    text = response.content.decode()
    assert not [word for word in DISTINCTIVE if word in text]
    # The feed no longer lists the patient: the board moves them from "incoming" to "arrivals".
    assert as_hospital.get(f"/api/v1/hospitals/{hospital.pk}/admissions").json()["results"] == []


def test_it_reads_no_archive_when_it_lists_arrivals(consenting, citizen, as_citizen, as_dispatcher, as_crew, as_hospital, ambulance, hospital):
    hand_over(as_citizen, as_dispatcher, as_crew, ambulance, hospital)
    before = as_citizen.get(LOG_URL).json()["entries"]
    for _ in range(3):
        assert as_hospital.get(arrivals_url(hospital)).status_code == 200
    assert as_citizen.get(LOG_URL).json()["entries"] == before


def test_it_leaves_out_patients_still_on_the_way_and_those_handed_over_before_since(
    as_citizen, as_dispatcher, as_crew, as_hospital, ambulance, hospital
):
    earlier = hand_over(as_citizen, as_dispatcher, as_crew, ambulance, hospital)
    Admission.objects.filter(pk=earlier).update(updated_at=timezone.now() - timedelta(hours=10))
    crew_step(as_crew, ambulance, "available")
    today = hand_over(as_citizen, as_dispatcher, as_crew, ambulance, hospital)
    crew_step(as_crew, ambulance, "available")
    on_the_way = new_case(as_citizen)
    assign(as_dispatcher, on_the_way, ambulance)
    for step in ("en_route", "on_scene"):
        crew_step(as_crew, ambulance, step)
    crew_step(as_crew, ambulance, "transporting", hospital=hospital.pk)

    since = (timezone.now() - timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    body = as_hospital.get(arrivals_url(hospital, since=since)).json()
    assert [a["id"] for a in body["results"]] == [today]
    # Without `since`: the last 24 hours, newest first.
    assert [a["id"] for a in as_hospital.get(arrivals_url(hospital)).json()["results"]] == [today, earlier]


def test_it_refuses_other_hospitals_crews_and_citizens_and_lets_a_dispatcher_read(
    as_citizen, as_dispatcher, as_crew, as_hospital, as_other_hospital, ambulance, hospital, other_hospital
):
    admission_id = hand_over(as_citizen, as_dispatcher, as_crew, ambulance, hospital)
    assert as_other_hospital.get(arrivals_url(hospital)).status_code == 403
    assert as_other_hospital.get(arrivals_url(other_hospital)).json()["results"] == []
    assert as_crew.get(arrivals_url(hospital)).status_code == 403
    assert as_citizen.get(arrivals_url(hospital)).status_code == 403
    assert [a["id"] for a in as_dispatcher.get(arrivals_url(hospital)).json()["results"]] == [admission_id]
    assert as_hospital.get("/api/v1/hospitals/999999/arrivals").status_code == 404


def test_it_refuses_anonymous_callers(anonymous, hospital):
    assert anonymous.get(arrivals_url(hospital)).status_code in (401, 403)


@pytest.mark.parametrize(
    ("since", "message"),
    [
        ("yesterday", "ISO 8601"),
        ("2026-12-02T00:00:00", "UTC offset"),
        ("2000-01-01T00:00:00Z", "48 hours"),
    ],
)
def test_it_names_since_when_it_is_not_a_usable_instant(as_hospital, hospital, since, message):
    response = as_hospital.get(arrivals_url(hospital, since=since))
    assert response.status_code == 400
    assert message in " ".join(response.json()["since"])


# --- the board's live arrivals equal a fresh read ------------------------------------------------------


def apply_to_arrivals(arrivals: dict[int, dict], hospital_id: int, events) -> None:
    """What board.js does with the hospital stream's admission events (arrivals.js / applyAdmission)."""
    for event in events:
        if not event.type.startswith("admission."):
            continue
        data = {k: v for k, v in event.data.items() if k != "health_summary"}
        if data["hospital"] == hospital_id and data["status"] == "handed_over":
            arrivals[data["id"]] = data
        else:
            arrivals.pop(data["id"], None)


def test_it_gives_the_same_arrivals_as_a_board_that_applied_the_stream(
    as_citizen, as_dispatcher, as_crew, as_hospital, ambulance, hospital
):
    from dispatch.events import hospital_stream
    from dispatch.models import Event

    first = hand_over(as_citizen, as_dispatcher, as_crew, ambulance, hospital, as_hospital, registration_no="ED-1")
    crew_step(as_crew, ambulance, "available")
    last_seq = as_hospital.get(f"/api/v1/hospitals/{hospital.pk}/admissions").json()["last_seq"]
    board = {a["id"]: a for a in as_hospital.get(arrivals_url(hospital)).json()["results"]}
    assert list(board) == [first]

    hand_over(as_citizen, as_dispatcher, as_crew, ambulance, hospital, as_hospital, registration_no="ED-2")
    crew_step(as_crew, ambulance, "available")
    events = Event.objects.filter(stream=hospital_stream(hospital.pk), seq__gt=last_seq).order_by("seq")
    apply_to_arrivals(board, hospital.pk, events)
    fresh = as_hospital.get(arrivals_url(hospital)).json()["results"]
    # Compared on what the board shows. The payload also embeds the unit's live status and the
    # case's status, which move on after the handover without an admission event (the unit goes
    # available, the case closes): stale there, but the board never shows them for an arrival.
    assert [shown(a) for a in sorted(board.values(), key=lambda a: (a["updated_at"], a["id"]), reverse=True)] == [
        shown(a) for a in fresh
    ]
    assert [a["registration_no"] for a in fresh] == ["ED-2", "ED-1"]


def shown(arrival: dict) -> tuple:
    """What a row of today's arrivals displays (arrivals.js)."""
    return (arrival["id"], arrival["updated_at"], arrival["ambulance"]["call_sign"], arrival["complaint"], arrival["registration_no"])
