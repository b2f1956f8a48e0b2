"""Structured logs (issue 6): a whole case runs through a daphne logging at DEBUG in JSON; every
line of its output is one JSON object, and none of them carries the patient's health data, a
token that was issued, or a password that was used (right or wrong)."""

from __future__ import annotations

import json
import secrets
from datetime import date

import httpx
import pytest

from health_records.synthetic import national_id
from tests.support.archives import DISTINCTIVE, sample_archive
from tests.support.servers import Console, DEMO_PASSWORD, DaphneServer, auth, base_env, demo_sqlite_database

pytestmark = pytest.mark.e2e

CENTRAL = {"lat": 34.7466, "lon": 113.6253}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("logs")
    env = base_env(
        DATABASE_URL=demo_sqlite_database(tmp / "logs.sqlite3"),
        LOG_LEVEL="DEBUG",
        LOG_FORMAT="json",
        AUTH_RATE_LIMIT="1000/min",
        SOS_RATE_LIMIT="1000/min",
    )
    # -v 0: no daphne plain-text access log; our own access line (config.metrics) is JSON.
    with DaphneServer(env, log_dir=tmp, name="logs", args=("-v", "0")) as daphne:
        yield daphne


async def _token(http: httpx.AsyncClient, username: str, password: str) -> str:
    response = await http.post("/api/v1/auth/token", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return response.json()["token"]


async def test_a_full_case_logs_json_lines_without_health_data_tokens_or_passwords(server):
    tokens: list[str] = []
    phone = f"139{secrets.randbelow(10**8):08d}"
    citizen_password = "Log-Secret-" + secrets.token_hex(8)
    wrong_password = "Wrong-Guess-" + secrets.token_hex(8)
    archive = sample_archive(
        phone=phone, national_id=national_id("410105", date(1968, 4, 12), 501), consent_share_with_120=True
    )
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
        registered = await http.post("/api/v1/auth/register", json={"phone": phone, "password": citizen_password, "name": "日志 市民"})
        assert registered.status_code == 201, registered.text
        citizen = registered.json()["token"]
        put = await http.put("/api/v1/me/health-archive", json=archive, headers=auth(citizen))
        assert put.status_code == 201, put.text
        # A wrong password, and a token sent where it is refused: neither may be echoed.
        refused = await http.post("/api/v1/auth/token", json={"username": "dispatcher1", "password": wrong_password})
        assert refused.status_code in (400, 401, 403)
        bogus = "f" * 40
        assert (await http.get("/api/v1/me", headers=auth(bogus))).status_code == 401

        dispatcher = await _token(http, "dispatcher1", DEMO_PASSWORD)
        console = await Console.open(server.ws_url, "/ws/dispatch/", dispatcher)
        tapped = await http.post("/api/v1/sos", json=CENTRAL, headers={**auth(citizen), "Idempotency-Key": secrets.token_hex(8)})
        assert tapped.status_code == 201, tapped.text
        case_id = tapped.json()["id"]
        await console.until("case.created", lambda d: d["id"] == case_id)
        detail = await http.get(f"/api/v1/dispatch/cases/{case_id}", headers=auth(dispatcher))
        assert detail.status_code == 200, detail.text
        assert "Zorblaxamine" in json.dumps(detail.json(), ensure_ascii=False)  # the health data did flow

        ranked = (await http.get(f"/api/v1/dispatch/cases/{case_id}/recommendations", headers=auth(dispatcher))).json()
        unit = ranked[0]["ambulance"]
        assigned = await http.post(f"/api/v1/dispatch/cases/{case_id}/assign", json={"ambulance": unit["id"]}, headers=auth(dispatcher))
        assert assigned.status_code == 200, assigned.text
        crew = await _token(http, unit["call_sign"], DEMO_PASSWORD)
        crew_console = await Console.open(server.ws_url, f"/ws/ambulances/{unit['id']}/", crew)
        assert (await http.get(f"/api/v1/ambulances/{unit['id']}/assignment", headers=auth(crew))).status_code == 200
        hospitals = (await http.get("/api/v1/hospitals", headers=auth(crew))).json()
        hospital = next(h for h in hospitals if h["code"] == "HPPH")
        for status, extra in (("en_route", {}), ("on_scene", {}), ("transporting", {"hospital": hospital["id"]})):
            moved = await http.post(f"/api/v1/ambulances/{unit['id']}/status", json={"status": status, **extra}, headers=auth(crew))
            assert moved.status_code == 200, moved.text
        ed = await _token(http, "HPPH", DEMO_PASSWORD)
        admissions = (await http.get(f"/api/v1/hospitals/{hospital['id']}/admissions", headers=auth(ed))).json()["results"]
        assert admissions and admissions[0]["health_summary"]["available"] is True
        acknowledged = await http.post(
            f"/api/v1/admissions/{admissions[0]['id']}/acknowledge", json={"registration_no": "ED-LOG-1"}, headers=auth(ed)
        )
        assert acknowledged.status_code == 200, acknowledged.text
        for status in ("at_hospital", "handed_over", "available"):
            moved = await http.post(f"/api/v1/ambulances/{unit['id']}/status", json={"status": status}, headers=auth(crew))
            assert moved.status_code == 200, moved.text
        await crew_console.close()
        await console.close()
        tokens += [citizen, dispatcher, crew, ed]
    server.stop()  # flush and close the log

    lines = server.log_path.read_text(encoding="utf-8").splitlines()
    assert lines, "the server logged nothing at DEBUG"
    for number, line in enumerate(lines, 1):
        try:
            entry = json.loads(line)
        except ValueError:
            pytest.fail(f"log line {number} is not JSON: {line[:300]}")
        assert isinstance(entry, dict) and {"time", "level", "logger", "message"} <= entry.keys(), line[:300]
    assert any(json.loads(line).get("route") == "api/v1/sos" for line in lines), "no access line for the tap"

    text = "\n".join(lines)
    # json.dumps escapes non-ASCII only when asked; compare against both spellings.
    decoded = "\n".join(json.dumps(json.loads(line), ensure_ascii=False) for line in lines)
    forbidden = {
        **{f"health data {word!r}": word for word in [*DISTINCTIVE, archive["national_id"], phone]},
        **{f"token #{n}": token for n, token in enumerate([*tokens, bogus])},
        **{"the citizen's password": citizen_password, "the wrong password": wrong_password, "the demo password": DEMO_PASSWORD},
    }
    leaked = [name for name, needle in forbidden.items() if needle in text or needle in decoded]
    assert not leaked, leaked


@pytest.mark.parametrize(
    "message, secret",
    [
        ("GET /x Authorization: Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b", "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"),
        ("scraper sent Bearer s3cr3t-scraper-token-0123456789", "s3cr3t-scraper-token-0123456789"),
        ('body {"username": "dispatcher1", "password": "hunter2-Xq7"}', "hunter2-Xq7"),
        ("query password=hunter2-Xq7&next=/", "hunter2-Xq7"),
    ],
)
def test_the_log_filter_scrubs_credential_shaped_text(message, secret):
    import logging

    from config.logging import JsonFormatter, RedactSecretsFilter

    record = logging.LogRecord("t", logging.WARNING, __file__, 1, "%s", (message,), None)
    assert RedactSecretsFilter().filter(record)
    line = JsonFormatter().format(record)
    assert secret not in line and "[redacted]" in line


def test_the_log_filter_leaves_ordinary_words_alone():
    import logging

    from config.logging import RedactSecretsFilter

    record = logging.LogRecord("t", logging.INFO, __file__, 1, "Token authentication failed for %s", ("dispatcher1",), None)
    RedactSecretsFilter().filter(record)
    assert record.getMessage() == "Token authentication failed for dispatcher1"
