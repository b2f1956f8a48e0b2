from tests.support.cast import tap


def test_it_answers_the_health_check(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_it_takes_a_tap_from_a_citizen(as_citizen):
    response = tap(as_citizen, complaint="chest_pain")
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "received"


def test_it_dates_every_answer_so_a_console_can_correct_a_wrong_clock(client):
    from email.utils import parsedate_to_datetime
    from datetime import datetime, timezone

    answered = parsedate_to_datetime(client.get("/healthz")["Date"])
    assert abs((datetime.now(timezone.utc) - answered).total_seconds()) < 5
