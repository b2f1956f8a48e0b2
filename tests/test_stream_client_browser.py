"""The shared stream client (dispatch/static/onekey/stream.js) in Chromium against a real daphne:
snapshot + events in order and once each, across a dropped socket and a gap; token auth; and the
close codes after which it stops instead of reconnecting for ever."""

from __future__ import annotations

import httpx

from tests.support.browser import CITIZEN, DISPATCHER, sign_in, tap
from tests.support.servers import login

# Starts a StreamClient in the page and records what it hands the page. Runs as a same-origin ES
# module import (allowed by script-src 'self'); the page's own scripts are not involved.
START = """
async ({path, token, snapshotUrl}) => {
  const { StreamClient } = await import("/static/onekey/stream.js");
  const { api, setToken } = await import("/static/onekey/api.js");
  if (token) setToken(token);
  const rec = { snapshots: [], frames: [], states: [], ended: null, sockets: 0 };
  window.__rec = rec;
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) { super(...args); rec.sockets += 1; }
  };
  const client = new StreamClient({
    path, token,
    snapshot: () => api(snapshotUrl),
    onSnapshot: (snap) => rec.snapshots.push(snap.last_seq),
    onEvent: (frame) => rec.frames.push([frame.seq, frame.event]),
    onState: (state) => rec.states.push(state),
    onEnded: (code, frame) => { rec.ended = { code, error: frame && frame.code }; },
    backoffMinMs: 50,
    backoffMaxMs: 200,
  });
  window.__client = client;
  client.start();
}
"""


def _start(page, *, path, snapshot_url, token=None):
    page.evaluate(START, {"path": path, "token": token, "snapshotUrl": snapshot_url})


def _seqs(page) -> list[int]:
    return [seq for seq, _ in page.evaluate("() => window.__rec.frames")]


def _wait_live(page):
    page.wait_for_function("() => window.__rec && window.__rec.states.at(-1) === 'live'")


def test_it_delivers_every_event_once_and_in_order_across_a_dropped_socket_and_a_gap(page, site):
    citizen_token = login(site.url, CITIZEN)
    sign_in(page, site, DISPATCHER, start="/console/dispatch/")
    page.wait_for_url("**/console/dispatch/")
    _start(page, path="/ws/dispatch/", snapshot_url="/api/v1/dispatch/cases?limit=1000")
    _wait_live(page)
    first = page.evaluate("() => window.__rec.snapshots[0]")

    tap(site.url, citizen_token)
    page.wait_for_function("() => window.__rec.frames.length >= 1")
    # The link drops; a tap happens while it is down; the client reconnects and resumes.
    page.evaluate("() => window.__client.socket.close()")
    tap(site.url, citizen_token)
    page.wait_for_function("(n) => window.__client.lastSeq >= n", arg=first + 2)
    _wait_live(page)
    # A gap: the client believes it missed one event; the next live event makes it resume.
    page.evaluate("() => { window.__client.lastSeq -= 1; window.__rec.frames.pop(); }")
    tap(site.url, citizen_token)
    page.wait_for_function("(n) => window.__client.lastSeq >= n", arg=first + 3)

    seqs = _seqs(page)
    assert seqs == list(range(first + 1, first + 4)), seqs
    assert page.evaluate("() => window.__rec.sockets") >= 2
    assert "reconnecting" in page.evaluate("() => window.__rec.states")


def test_it_refetches_the_snapshot_when_the_server_says_resync(page, site):
    sign_in(page, site, DISPATCHER, start="/console/dispatch/")
    page.wait_for_url("**/console/dispatch/")
    _start(page, path="/ws/dispatch/", snapshot_url="/api/v1/dispatch/cases?limit=1000")
    _wait_live(page)
    # What the server sends when its log no longer holds what a console missed.
    page.evaluate("() => window.__client.onFrame(window.__client.socket, {type: 'resync', last_seq: 0})")
    page.wait_for_function("() => window.__rec.snapshots.length === 2")


def test_it_authenticates_with_a_token_and_stops_when_the_token_is_revoked(page, site):
    citizen_token = login(site.url, CITIZEN)
    case = tap(site.url, citizen_token)
    page.goto(site.url + "/accounts/login/")
    _start(page, path=f"/ws/cases/{case['id']}/", snapshot_url=f"/api/v1/cases/{case['id']}", token=citizen_token)
    _wait_live(page)
    response = httpx.post(site.url + "/api/v1/auth/logout", headers={"Authorization": f"Token {citizen_token}"}, timeout=10)
    assert response.status_code == 204
    page.wait_for_function("() => window.__rec.ended !== null")
    assert page.evaluate("() => window.__rec.ended") == {"code": 4010, "error": "session_ended"}
    assert page.evaluate("() => window.__rec.states.at(-1)") == "offline"
    assert page.evaluate("() => window.__client.reconnectTimer") is None
    assert page.evaluate("() => window.__rec.sockets") == 1


def test_it_stops_on_a_stream_that_does_not_exist_instead_of_retrying(page, site):
    citizen_token = login(site.url, CITIZEN)
    page.goto(site.url + "/accounts/login/")
    _start(page, path="/ws/cases/999999/", snapshot_url="/api/v1/cases/999999", token=citizen_token)
    page.wait_for_function("() => window.__rec.ended !== null")
    assert page.evaluate("() => window.__rec.ended.code") == 4004
    assert page.evaluate("() => window.__rec.states.at(-1)") == "offline"
    assert page.evaluate("() => window.__client.reconnectTimer") is None


API_CALLS = """
async () => {
  const { api, ApiError, idempotencyKey } = await import("/static/onekey/api.js");
  const out = {};
  for (const [name, path, body] of [
    ["missing", "/api/v1/dispatch/cases/999999/assign", { ambulance: 1 }],
    ["invalid", "/api/v1/dispatch/cases/999999/assign", { ambulance: "x" }],
  ]) {
    try { await api(path, { method: "POST", body }); out[name] = "no error"; }
    catch (err) { out[name] = { isApiError: err instanceof ApiError, status: err.status, code: err.code, fields: err.fields }; }
  }
  out.queue = (await api("/api/v1/dispatch/cases")).last_seq >= 0;
  out.keys = new Set([idempotencyKey(), idempotencyKey()]).size;
  return out;
}
"""


def test_its_api_client_sends_the_csrf_token_and_reports_errors_by_status_code_and_field(page, site):
    sign_in(page, site, DISPATCHER, start="/console/dispatch/")
    page.wait_for_url("**/console/dispatch/")
    out = page.evaluate(API_CALLS)
    # 404, not 403: the session's POST carried the CSRF token.
    assert out["missing"] == {"isApiError": True, "status": 404, "code": "not_found", "fields": {}}
    assert out["invalid"]["status"] == 400 and list(out["invalid"]["fields"]) == ["ambulance"]
    assert out["queue"] is True and out["keys"] == 2


SOUND = """
async () => {
  const { playAlert, setMuted, isMuted, alertStats } = await import("/static/onekey/sound.js");
  setMuted(false);
  const played = playAlert("emergency");
  setMuted(true);
  const whileMuted = playAlert("emergency");
  return { played, whileMuted, muted: isMuted(), count: alertStats().played };
}
"""


def test_its_alert_sound_plays_and_the_mute_choice_survives_a_reload(page, site):
    page.goto(site.url + "/accounts/login/")
    assert page.evaluate(SOUND) == {"played": True, "whileMuted": False, "muted": True, "count": 1}
    page.reload()
    assert page.evaluate("async () => (await import('/static/onekey/sound.js')).isMuted()") is True
