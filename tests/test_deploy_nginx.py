"""The reference deployment (deploy/), run on this machine: nginx terminating TLS in front of two
daphne workers on one PostgreSQL and one Redis, rendered from deploy/nginx.conf.template exactly
as deploy/README.md says: one worker serves HTTP, the other the websockets (``--ws-workers``).

- a whole case goes through nginx: tap -> dispatcher console over wss -> assign -> crew statuses ->
  hospital admission, and static files come from nginx, not from the workers;
- HTTP reaches only the HTTP worker and websockets only the websocket worker;
- the auth throttle sees the CLIENT's address, not nginx's: clients bound to 127.0.0.2 and
  127.0.0.3 each get their own quota, and a forged X-Forwarded-For does not buy a new one.

Needs nginx (scripts/install_nginx.sh), PostgreSQL and Redis: fails in CI when any is missing,
skips elsewhere, saying which.
"""

from __future__ import annotations

import importlib.util
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.servers import (
    ROOT,
    Console,
    DEMO_PASSWORD,
    DaphneServer,
    NginxServer,
    auth,
    base_env,
    check_nginx,
    check_postgres,
    check_redis,
    delete_redis_keys,
    demo_postgres_template,
    fresh_password,
    manage,
    postgres_database,
    redis_url,
    require,
    self_signed_certificate,
    start_together,
)

pytestmark = [pytest.mark.e2e, pytest.mark.cluster]

CENTRAL = {"lat": 34.7466, "lon": 113.6253}
AUTH_LIMIT = 5  # per minute and client address, for this deployment


@dataclass
class Deployment:
    nginx: NginxServer
    workers: tuple[DaphneServer, DaphneServer]  # (HTTP, websockets)

    def client(self, source: str, **kwargs) -> httpx.AsyncClient:
        """An HTTPS client whose connections come from ``source`` (a loopback address)."""
        transport = httpx.AsyncHTTPTransport(local_address=source, verify=self.nginx.ssl_context())
        return httpx.AsyncClient(base_url=self.nginx.url, transport=transport, timeout=20, **kwargs)


@pytest.fixture(scope="module")
def deployment():
    require(check_nginx, check_postgres, check_redis)
    # Not pytest's tmp_path: nginx's workers run as an unprivileged account (when started as root)
    # and must be able to reach the static files and temp dirs in the prefix.
    prefix = Path(tempfile.mkdtemp(prefix="onekey120-nginx-"))
    prefix.chmod(0o755)
    env = None
    try:
        with postgres_database("onekey_e2e_deploy", template=demo_postgres_template()) as database_url:
            env = base_env(
                DATABASE_URL=database_url,
                REDIS_URL=redis_url(),
                # As deployed: HTTPS defaults on behind the TLS proxy, and nginx is the one trusted proxy.
                HTTPS="1",
                TRUSTED_PROXIES="127.0.0.1",
                STATIC_ROOT=str(prefix / "static"),
                AUTH_RATE_LIMIT=f"{AUTH_LIMIT}/min",
                SOS_RATE_LIMIT="1000/min",
            )
            manage(env, "collectstatic", "--noinput", "-v0")
            cert, key = self_signed_certificate(prefix)
            a, b = DaphneServer(env, name="deploy-a"), DaphneServer(env, name="deploy-b")
            with start_together(a, b):
                nginx = NginxServer(prefix, workers=[a.port, b.port], static_root=prefix / "static", cert=cert, key=key)
                # As deploy/README.md recommends: HTTP on one worker, websockets on the other.
                render_split(nginx, http=[a.port], ws=[b.port], static_root=prefix / "static", key=key)
                with nginx:
                    yield Deployment(nginx, (a, b))
    finally:
        shutil.rmtree(prefix, ignore_errors=True)
        if env is not None:
            delete_redis_keys(env["CHANNEL_LAYER_PREFIX"])  # its throttle windows outlive it by up to an hour


def render_split(nginx: NginxServer, *, http: list[int], ws: list[int], static_root: Path, key: Path) -> None:
    """Render the same deployment again with the websocket workers apart (render_nginx --ws-workers)."""
    spec = importlib.util.spec_from_file_location("render_nginx", ROOT / "deploy" / "render_nginx.py")
    render_nginx = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render_nginx)
    user = nginx.conf.read_text().split("\nuser ", 1)[1].split(";", 1)[0]
    render_nginx.render(
        prefix=nginx.prefix, server_name="127.0.0.1", cert=nginx.cert, key=key, static_root=static_root,
        workers=http, ws_workers=ws, listen_addr="127.0.0.1", https_port=nginx.https_port,
        http_port=nginx.http_port, user=user,
    )


async def _token(http: httpx.AsyncClient, username: str, password: str = DEMO_PASSWORD) -> str:
    response = await http.post("/api/v1/auth/token", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return response.json()["token"]


async def test_a_whole_case_goes_through_nginx_over_tls_and_wss(deployment):
    nginx = deployment.nginx
    ssl = nginx.ssl_context()
    async with deployment.client("127.0.0.4") as http:
        health = await http.get("/healthz")
        assert health.status_code == 200 and health.headers["server"] == "nginx"
        assert "max-age=31536000" in health.headers["strict-transport-security"]

        dispatcher = await _token(http, "dispatcher1")
        console = await Console.open(nginx.ws_url, "/ws/dispatch/", dispatcher, ssl=ssl)
        phone = f"138{secrets.randbelow(10**8):08d}"
        registered = await http.post("/api/v1/auth/register", json={"phone": phone, "password": fresh_password("Nginx-"), "name": "部署 市民"})
        assert registered.status_code == 201, registered.text
        citizen = registered.json()["token"]
        tapped = await http.post("/api/v1/sos", json=CENTRAL, headers={**auth(citizen), "Idempotency-Key": secrets.token_hex(8)})
        assert tapped.status_code == 201, tapped.text
        case_id = tapped.json()["id"]
        await console.until("case.created", lambda d: d["id"] == case_id)

        ranked = (await http.get(f"/api/v1/dispatch/cases/{case_id}/recommendations", headers=auth(dispatcher))).json()
        unit = ranked[0]["ambulance"]
        crew = await _token(http, unit["call_sign"])
        crew_console = await Console.open(nginx.ws_url, f"/ws/ambulances/{unit['id']}/", crew, ssl=ssl)
        assigned = await http.post(f"/api/v1/dispatch/cases/{case_id}/assign", json={"ambulance": unit["id"]}, headers=auth(dispatcher))
        assert assigned.status_code == 200, assigned.text
        await crew_console.until("case.assigned", lambda d: d["id"] == case_id)
        await console.until("case.assigned", lambda d: d["id"] == case_id)

        hospitals = (await http.get("/api/v1/hospitals", headers=auth(crew))).json()
        hospital = next(h for h in hospitals if h["code"] == "HPPH")
        ed = await _token(http, "HPPH")
        feed = await Console.open(nginx.ws_url, f"/ws/hospitals/{hospital['id']}/", ed, ssl=ssl)
        for status, extra in (("en_route", {}), ("on_scene", {}), ("transporting", {"hospital": hospital["id"]})):
            moved = await http.post(f"/api/v1/ambulances/{unit['id']}/status", json={"status": status, **extra}, headers=auth(crew))
            assert moved.status_code == 200, moved.text
        opened = await feed.until("admission.opened", lambda d: d["case"] == case_id)
        acknowledged = await http.post(
            f"/api/v1/admissions/{opened['data']['id']}/acknowledge", json={"registration_no": "ED-NGINX-1"}, headers=auth(ed)
        )
        assert acknowledged.status_code == 200, acknowledged.text
        await crew_console.until("admission.acknowledged", lambda d: d["registration_no"] == "ED-NGINX-1")
        await console.until("admission.acknowledged", lambda d: d["registration_no"] == "ED-NGINX-1")
        for stream in (console, crew_console, feed):
            await stream.close()

        # Static files come from nginx's disk copy (its week-long cache header), not from a worker.
        static = await http.get("/static/dispatch/main.js")
        assert static.status_code == 200 and "max-age=604800" in static.headers["cache-control"]


async def test_plain_http_is_redirected_to_https(deployment):
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"http://127.0.0.1:{deployment.nginx.http_port}/console/dispatch/")
    assert response.status_code == 301
    assert response.headers["location"].startswith("https://127.0.0.1")


async def test_the_auth_throttle_counts_each_client_address_not_nginx_and_ignores_forged_headers(deployment):
    async def attempt(http: httpx.AsyncClient, **headers) -> int:
        # A made-up user each time: only the address can be what the throttle counts.
        body = {"username": "nobody-" + secrets.token_hex(4), "password": "wrong-" + secrets.token_hex(4)}
        return (await http.post("/api/v1/auth/token", json=body, headers=headers)).status_code

    async with deployment.client("127.0.0.2") as first, deployment.client("127.0.0.3") as second:
        statuses = [await attempt(first) for _ in range(AUTH_LIMIT)]
        assert 429 not in statuses, statuses
        assert await attempt(first) == 429
        # Forged headers: nginx appends the real peer, and the application believes only that.
        assert await attempt(first, **{"X-Forwarded-For": "203.0.113.9"}) == 429
        assert await attempt(first, **{"X-Forwarded-For": "127.0.0.3, 198.51.100.7"}) == 429
        assert await attempt(first, **{"X-Real-IP": "192.0.2.1", "Forwarded": "for=192.0.2.1"}) == 429

        # Another client behind the same nginx has its own quota.
        assert (await second.post("/api/v1/auth/token", json={"username": "dispatcher1", "password": DEMO_PASSWORD})).status_code == 200


async def test_a_dispatcher_signs_in_through_nginx_with_secure_cookies_and_gets_the_console(deployment):
    import re

    async with deployment.client("127.0.0.5", follow_redirects=False) as browser:
        page = await browser.get("/accounts/login/")
        assert page.status_code == 200
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        assert "secure" in page.headers["set-cookie"].lower()
        signed_in = await browser.post(
            "/accounts/login/?next=/console/dispatch/",
            data={"username": "dispatcher1", "password": DEMO_PASSWORD, "csrfmiddlewaretoken": csrf},
            headers={"Referer": deployment.nginx.url + "/accounts/login/", "Origin": deployment.nginx.url},
        )
        assert signed_in.status_code == 302, signed_in.text[:500]
        assert signed_in.headers["location"] == "/console/dispatch/"
        session_cookie = next(c for c in signed_in.headers.get_list("set-cookie") if c.startswith("sessionid="))
        assert "secure" in session_cookie.lower() and "httponly" in session_cookie.lower()
        console = await browser.get("/console/dispatch/")
        assert console.status_code == 200
        assert "script-src 'self'" in console.headers["content-security-policy"]
        assert console.headers["x-frame-options"] == "DENY"


async def test_http_goes_to_the_http_worker_and_websockets_to_the_websocket_worker(deployment):
    nginx = deployment.nginx
    http_worker, ws_worker = deployment.workers
    async with deployment.client("127.0.0.6") as http:
        dispatcher = await _token(http, "dispatcher1")
        console = await Console.open(nginx.ws_url, "/ws/dispatch/", dispatcher, ssl=nginx.ssl_context())
        assert (await http.get("/api/v1/dispatch/cases", headers=auth(dispatcher))).status_code == 200
        await console.close()
    # daphne's access log (one line per request or socket, in each worker's log): a worker's own
    # readiness probe is the only request the websocket worker ever answered.
    http_log, ws_log = http_worker.log_path.read_text(), ws_worker.log_path.read_text()
    assert "WSCONNECT /ws/dispatch/" in ws_log and "/api/v1/" not in ws_log
    assert "/api/v1/dispatch/cases" in http_log and "WSCONNECT" not in http_log
