"""Real servers for end-to-end tests and benchmarks: daphne processes on free ports, databases
made for the run, and the services they need. Every process started here is stopped here."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
DEFAULT_POSTGRES_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEMO_PASSWORD = "onekey120-demo"


class ServiceMissing(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env(**overrides: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "CHANNEL_LAYER_PREFIX"}
    }
    env.update(
        {
            "SECRET_KEY": "e2e-only-not-a-secret-" + "y" * 40,
            "DEBUG": "0",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "WARNING",
            # e2e runs share one Redis with whatever else runs here: keep our keys apart.
            "CHANNEL_LAYER_PREFIX": "e2e" + secrets.token_hex(4),
            "DB_POOL_MAX_SIZE": "8",
            # Tests talk to daphne over plain HTTP; test_deploy_nginx.py sets HTTPS=1 behind TLS.
            "HTTPS": "0",
            # No alert ticker unless a test asks for one (ALERT_TICK_S=… in its overrides, as
            # test_alerts_cluster.py does): an alert raised on its own would break every e2e test
            # that waits for silence on a stream.
            "ALERT_TICK_S": "0",
        }
    )
    # Health-archive keys for the servers, if the test settings define them.
    for key in ("HEALTH_KEYS", "HEALTH_KEY_PRIMARY", "HEALTH_BLIND_INDEX_KEY", "ACCESS_LOG_HMAC_KEY",
                "ACCESS_LOG_SIGNING_KEY", "ACCESS_LOG_VERIFY_KEY", "ACCESS_LOG_CHECKPOINT_DIR",
                "ACCESS_LOG_CHECKPOINT_EVERY"):
        value = os.environ.get(key)
        if value:
            env[key] = value
    env.update(overrides)
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def prepare_database(env: dict[str, str], *, seed: bool = True) -> None:
    """migrate (+ seed_demo) in one process: Django starts once instead of twice."""
    steps = ["call_command('migrate', interactive=False, verbosity=0)"]
    if seed:
        steps.append("call_command('seed_demo')")
    manage(env, "shell", "-c", "from django.core.management import call_command; " + "; ".join(steps))


def stop_process(process: subprocess.Popen | None) -> None:
    """End a process this module started: SIGTERM (nginx's master stops its workers), then SIGKILL
    if it does not go within ten seconds."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


class DaphneServer:
    """One daphne worker. ``start()`` returns once /healthz answers; ``stop()`` ends exactly it."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        port: int | None = None,
        log_dir: Path | None = None,
        name: str = "daphne",
        args: tuple[str, ...] = (),
    ):
        self.env = env
        self.args = tuple(args)  # extra daphne options, e.g. ("-v", "0") for no plain-text access log
        self.port = port or free_port()
        self.name = name
        self.log_path = (log_dir or Path(os.environ.get("TMPDIR", "/tmp"))) / f"{name}-{self.port}-{secrets.token_hex(3)}.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> DaphneServer:
        self.launch()
        self.wait_ready(timeout)
        return self

    def launch(self) -> DaphneServer:
        """Start the process without waiting for it (see ``start_together``)."""
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), *self.args, "config.asgi:application"],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.05
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)
        self.stop()
        raise RuntimeError(f"{self.name} was not ready within {timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        stop_process(self.process)
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> DaphneServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@contextlib.contextmanager
def start_together(*servers: DaphneServer, timeout: float = 60, while_starting=None) -> Iterator[tuple[DaphneServer, ...]]:
    """Launch several workers at once (their start-ups overlap, with ``while_starting()`` too if
    given), wait for all, stop all after."""
    try:
        for server in servers:
            server.launch()
        if while_starting is not None:
            while_starting()
        for server in servers:
            server.wait_ready(timeout)
        yield servers
    finally:
        for server in servers:
            server.stop()


# --- real services --------------------------------------------------------------------------------


def postgres_admin_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        return url
    return os.environ.get("POSTGRES_ADMIN_URL", DEFAULT_POSTGRES_ADMIN_URL)


def redis_url() -> str:
    return os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL


def check_postgres() -> None:
    import psycopg

    try:
        with psycopg.connect(_libpq(postgres_admin_url(), "postgres"), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        raise ServiceMissing(f"PostgreSQL is not reachable at {_redact(postgres_admin_url())}: {exc}") from exc


def check_redis() -> None:
    import redis

    try:
        redis.Redis.from_url(redis_url(), socket_connect_timeout=3).ping()
    except Exception as exc:
        raise ServiceMissing(f"Redis is not reachable at {_redact(redis_url())}: {exc}") from exc


def require(*checks) -> None:
    """In CI a missing service fails the test; on a laptop without one it is skipped, saying so."""
    import pytest

    for check in checks:
        try:
            check()
        except ServiceMissing as missing:
            if IN_CI:
                pytest.fail(str(missing))
            pytest.skip(str(missing))


def _libpq(url: str, dbname: str) -> str:
    parsed = urlparse(url)
    scheme = "postgresql"
    return urlunparse(parsed._replace(scheme=scheme, path="/" + dbname))


def _redact(url: str) -> str:
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(parsed.password, "***")
    return url


@contextlib.contextmanager
def postgres_database(prefix: str = "onekey_e2e", *, template: str | None = None) -> Iterator[str]:
    """A fresh PostgreSQL database for one run (a copy of ``template`` if given); dropped afterwards."""
    import psycopg

    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = _libpq(postgres_admin_url(), "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield _libpq(postgres_admin_url(), name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_demo_template: str | None = None


def demo_postgres_template() -> str:
    """The name of a migrated, demo-seeded PostgreSQL database, made once per test process, for
    ``postgres_database(template=...)``: each e2e module gets its own copy in well under a second
    instead of migrating and seeding again. Dropped when the process exits."""
    global _demo_template
    if _demo_template is not None:
        return _demo_template
    import atexit

    import psycopg

    name = f"onekey_e2e_template_{secrets.token_hex(4)}"
    admin = _libpq(postgres_admin_url(), "postgres")

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        prepare_database(base_env(DATABASE_URL=_libpq(postgres_admin_url(), name)))
    except BaseException:
        drop()
        raise
    atexit.register(drop)
    _demo_template = name
    return name


# --- clients --------------------------------------------------------------------------------------


def login(base_url: str, username: str, password: str = DEMO_PASSWORD) -> str:
    response = httpx.post(f"{base_url}/api/v1/auth/token", json={"username": username, "password": password}, timeout=10)
    response.raise_for_status()
    return response.json()["token"]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}"}


async def register_citizen(http, *, prefix: str = "139", name: str = "E2E 市民") -> str:
    """Register a fresh citizen through the API (a random mainland mobile number); return its token."""
    phone = prefix + "".join(secrets.choice("0123456789") for _ in range(8))
    response = await http.post(
        "/api/v1/auth/register", json={"phone": phone, "password": "Tap-" + secrets.token_hex(6), "name": name}
    )
    assert response.status_code == 201, response.text
    return response.json()["token"]


async def open_stream(ws_base: str, path: str, token: str, *, since: int | None = None, ssl=None):
    """Connect, authenticate by first message, wait for ``ready``; optionally resume.
    Returns (websocket, ready_message). ``ssl``: an SSLContext for a wss:// base."""
    import websockets

    ws = await websockets.connect(ws_base + path, open_timeout=10, **({"ssl": ssl} if ssl is not None else {}))
    await ws.send(json.dumps({"type": "auth", "token": token}))
    ready = await recv_json(ws)
    if ready.get("type") != "ready":
        await ws.close()
        raise AssertionError(f"expected ready, got {ready}")
    if since is not None:
        await ws.send(json.dumps({"type": "resume", "since": since}))
    return ws, ready


async def recv_json(ws, timeout: float = 10) -> dict:
    import asyncio

    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_until(ws, predicate, timeout: float = 10) -> list[dict]:
    """Receive frames until one satisfies ``predicate``; return all frames received."""
    import asyncio

    frames = []
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise AssertionError(f"no matching frame within {timeout}s; got {frames}")
        frame = await recv_json(ws, remaining)
        frames.append(frame)
        if predicate(frame):
            return frames


class Console:
    """A stream socket that checks every event frame on arrival: ``seq`` goes up by exactly one
    from the ``ready`` (or resume) position, so a gap, a duplicate or a reordering fails at once."""

    def __init__(self, ws, ready: dict):
        self.ws = ws
        self.ready = ready
        self.last_seq = ready["last_seq"]
        self.events: list[dict] = []

    @classmethod
    async def open(cls, ws_base: str, path: str, token: str, *, since: int | None = None, ssl=None) -> Console:
        ws, ready = await open_stream(ws_base, path, token, since=since, ssl=ssl)
        console = cls(ws, ready)
        if since is not None:
            console.last_seq = since
        return console

    async def next(self, timeout: float = 10) -> dict:
        frame = await recv_json(self.ws, timeout)
        if frame.get("type") != "event":
            raise AssertionError(f"expected an event frame, got {frame}")
        if frame["seq"] != self.last_seq + 1:
            raise AssertionError(f"seq {frame['seq']} after {self.last_seq}: {frame}")
        self.last_seq = frame["seq"]
        self.events.append(frame)
        return frame

    async def until(self, event: str, where=None, timeout: float = 10) -> dict:
        """Read frames until one of type ``event`` (and matching ``where(data)``) arrives."""
        import asyncio

        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"no {event} within {timeout}s; got {[e['event'] for e in self.events]}")
            frame = await self.next(remaining)
            if frame["event"] == event and (where is None or where(frame["data"])):
                return frame

    async def take(self, count: int, timeout: float = 10) -> list[dict]:
        return [await self.next(timeout) for _ in range(count)]

    async def drain(self, seconds: float = 0.3) -> list[dict]:
        """Read (and check) events until none arrives for ``seconds``; return them."""
        import asyncio

        drained = []
        while True:
            try:
                drained.append(await self.next(seconds))
            except asyncio.TimeoutError:
                return drained

    async def quiet(self, seconds: float = 0.5) -> None:
        """Assert that nothing more arrives for a while."""
        import asyncio

        try:
            frame = await asyncio.wait_for(self.ws.recv(), seconds)
        except asyncio.TimeoutError:
            return
        raise AssertionError(f"expected silence, got {frame}")

    async def close(self) -> None:
        await self.ws.close()


# --- nginx in front (deploy/) ---------------------------------------------------------------------


def nginx_binary() -> str | None:
    import shutil

    return os.environ.get("NGINX_PATH") or shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)


def check_nginx() -> None:
    if nginx_binary() is None:
        raise ServiceMissing("nginx is not installed: run scripts/install_nginx.sh (or set NGINX_PATH)")


def self_signed_certificate(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A throwaway certificate for ``host`` (an IP address SAN): (cert.pem, key.pem). Clients trust
    it by using cert.pem as their only CA."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return cert_path, key_path


class NginxServer:
    """deploy/nginx.conf.template rendered into a private prefix and run in the foreground
    (``nginx -p PREFIX -c conf -g 'daemon off;'``): pid, logs and temp files stay in PREFIX."""

    def __init__(self, prefix: Path, *, workers: list[int], static_root: Path, cert: Path, key: Path):
        import importlib.util

        spec = importlib.util.spec_from_file_location("render_nginx", ROOT / "deploy" / "render_nginx.py")
        render_nginx = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(render_nginx)
        self.prefix = prefix
        self.https_port, self.http_port = free_port(), free_port()
        self.cert = cert
        self.conf = render_nginx.render(
            prefix=prefix,
            server_name="127.0.0.1",
            cert=cert,
            key=key,
            static_root=static_root,
            workers=workers,
            listen_addr="127.0.0.1",
            https_port=self.https_port,
            http_port=self.http_port,
            # Started as root, nginx drops its workers to this account; otherwise it is ignored.
            user="www-data" if _account_exists("www-data") else "nobody",
        )
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def ws_url(self) -> str:
        return f"wss://127.0.0.1:{self.https_port}"

    def ssl_context(self):
        import ssl

        return ssl.create_default_context(cafile=str(self.cert))

    def start(self, timeout: float = 20) -> NginxServer:
        binary = nginx_binary()
        command = [binary, "-p", str(self.prefix), "-c", str(self.conf)]
        checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
        if checked.returncode != 0:
            raise RuntimeError(f"nginx -t refused the rendered config:\n{checked.stderr}")
        self._log = open(self.prefix / "stderr.log", "wb")
        self.process = subprocess.Popen([*command, "-g", "daemon off;"], stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                httpx.get(self.url + "/healthz", verify=self.ssl_context(), timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"nginx did not answer within {timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        stop_process(self.process)
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 40) -> str:
        out = []
        for name in ("stderr.log", "error.log"):
            try:
                out += (self.prefix / name).read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                pass
        return "\n".join(out) or "(no log)"

    def __enter__(self) -> NginxServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _account_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False
