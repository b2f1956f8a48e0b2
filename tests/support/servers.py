"""Real servers for end-to-end tests: the benchmarks' harness (bench/harness.py: daphne workers,
throwaway databases, readiness, one ManagedProcess base for every server started) plus what only
tests need: servers on tests/server_settings.py (a fast password hash), skipping or failing on a
missing service, seeded PostgreSQL and SQLite templates (each module copies one instead of
migrating and seeding), a checking console client, nginx in front. Every process started here is
stopped here."""

from __future__ import annotations

import contextlib
import os
import secrets
import string
import subprocess
import time
from pathlib import Path

import httpx

from bench import harness
from bench.harness import (  # noqa: F401  (re-exported: the tests' one import for servers)
    DEMO_PASSWORD,
    PYTHON,
    ROOT,
    DaphneServer,
    ManagedProcess,
    ServiceMissing,
    auth,
    check_postgres,
    check_redis,
    delete_redis_keys,
    free_port,
    libpq_url,
    login,
    manage,
    open_stream,
    postgres_admin_url,
    postgres_database,
    prepare_database,
    recv_json,
    redis_url,
    start_together,
    stop_process,
)
from tests.support.cast import service_missing


def base_env(**overrides: str) -> dict[str, str]:
    """bench/harness.py's environment for a server, on tests/server_settings.py (the real settings
    with a fast password hash): what the tests pass in ``overrides`` still wins."""
    return harness.base_env(**{"DJANGO_SETTINGS_MODULE": "tests.server_settings", **overrides})


def require(*checks) -> None:
    """In CI a missing service fails the test; on a laptop without one it is skipped, saying so."""
    for check in checks:
        try:
            check()
        except ServiceMissing as missing:
            service_missing(str(missing))


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
    admin = libpq_url(postgres_admin_url(), "postgres")

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        prepare_database(base_env(DATABASE_URL=libpq_url(postgres_admin_url(), name)))
    except BaseException:
        drop()
        raise
    atexit.register(drop)
    _demo_template = name
    return name


@contextlib.contextmanager
def cluster_env(database_prefix: str, **overrides: str):
    """One environment for several workers on one PostgreSQL and one Redis: a throwaway copy of the
    demo database, one channel prefix, rate limits out of the way of a test's burst (unless
    ``overrides`` set them). Its Redis keys (throttle windows, which outlive a test by up to an
    hour) are deleted afterwards. Fails in CI without both services, skips elsewhere."""
    require(check_postgres, check_redis)
    with postgres_database(database_prefix, template=demo_postgres_template()) as database_url:
        env = base_env(
            DATABASE_URL=database_url, REDIS_URL=redis_url(), **{"AUTH_RATE_LIMIT": "1000/min", "SOS_RATE_LIMIT": "1000/min", **overrides}
        )
        try:
            yield env
        finally:
            delete_redis_keys(env["CHANNEL_LAYER_PREFIX"])


_sqlite_template: Path | None = None


def demo_sqlite_database(path: Path) -> str:
    """Put a migrated, demo-seeded SQLite database at ``path`` and return its DATABASE_URL. The
    first call in a test process migrates and seeds a template (several seconds); every later one
    copies it (milliseconds), so each module still gets a database of its own."""
    global _sqlite_template
    import sqlite3

    if _sqlite_template is None:
        import atexit
        import shutil
        import tempfile

        directory = Path(tempfile.mkdtemp(prefix="onekey120-demo-template-"))
        template = directory / "demo.sqlite3"
        prepare_database(base_env(DATABASE_URL=f"sqlite:///{template}"))
        atexit.register(shutil.rmtree, directory, True)
        _sqlite_template = template
    # The backup API copies a consistent database whatever the template's WAL holds.
    with contextlib.closing(sqlite3.connect(_sqlite_template)) as source, contextlib.closing(sqlite3.connect(path)) as copy:
        source.backup(copy)
    return f"sqlite:///{path}"


# --- clients --------------------------------------------------------------------------------------


def fresh_password(prefix: str = "Tap-") -> str:
    """A random password registration accepts for a phone-number account: letters only, so the
    similarity check against the (all-digit) username can never refuse it, as it once refused a
    random hex one that happened to share most of the phone's digits."""
    return prefix + "".join(secrets.choice(string.ascii_letters) for _ in range(14))


async def register_citizen(http, *, prefix: str = "139", name: str = "E2E 市民") -> str:
    """Register a fresh citizen through the API (a random mainland mobile number); return its token."""
    phone = prefix + "".join(secrets.choice("0123456789") for _ in range(8))
    response = await http.post("/api/v1/auth/register", json={"phone": phone, "password": fresh_password(), "name": name})
    assert response.status_code == 201, response.text
    return response.json()["token"]


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
        return self._checked(await recv_json(self.ws, timeout))

    def _checked(self, frame: dict) -> dict:
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

    async def drain(self, timeout: float = 10) -> list[dict]:
        """Read (and check) every event the server sent before it answers a ping; return them."""
        import json

        await self.ws.send(json.dumps({"type": "ping"}))
        drained = []
        while True:
            frame = await recv_json(self.ws, timeout)
            if frame.get("type") == "pong":
                return drained
            drained.append(self._checked(frame))

    async def reach(self, seq: int, timeout: float = 10) -> list[dict]:
        """Read (and check) events until this console has had ``seq`` (e.g. the stream's last seq in
        the event log): a wait for something that must arrive, never a wait for silence."""
        read = []
        while self.last_seq < seq:
            read.append(await self.next(timeout))
        return read

    async def quiet(self, timeout: float = 10) -> None:
        """Assert that nothing is pending: the server answers in order, so a ping's pong must be the
        very next frame. Two rounds: a frame the worker took in together with the first ping still
        goes out before the second pong."""
        import json

        for _ in range(2):
            await self.ws.send(json.dumps({"type": "ping"}))
            frame = await recv_json(self.ws, timeout)
            if frame != {"type": "pong"}:
                raise AssertionError(f"expected nothing before the pong, got {frame}")

    async def close(self) -> None:
        await self.ws.close()


def wait_for_polls_outlasting_the_read_timeout(url: str, prefix: str, *, timeout: float = 30) -> None:
    """Return once a worker has re-issued its blocking read on a channel under ``prefix``: the
    first read (BZPOPMIN, channels_redis's list layer) waited out its whole timeout with nothing
    to read and the worker went on reading; a worker whose read broke on the idle connection
    never asks again, and this fails after ``timeout``. Watches Redis with MONITOR."""
    import redis

    deadline = time.monotonic() + timeout
    seen: dict[str, int] = {}
    # A read timeout ends the MONITOR connection (redis-py drops it): watch again on a new one.
    client = redis.Redis.from_url(url, socket_timeout=2)
    try:
        while time.monotonic() < deadline:
            try:
                with client.monitor() as monitor:
                    while time.monotonic() < deadline:
                        verb, _, rest = monitor.next_command()["command"].partition(" ")
                        key = rest.split(" ", 1)[0]
                        if verb.upper() == "BZPOPMIN" and key.startswith(prefix):
                            seen[key] = seen.get(key, 0) + 1
                            if seen[key] >= 2:
                                return
            except redis.TimeoutError:
                continue
    finally:
        client.close()
    raise AssertionError(f"no worker read its channel again within {timeout}s (reads seen: {seen})")


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


class NginxServer(ManagedProcess):
    """deploy/nginx.conf.template rendered into a private prefix and run in the foreground
    (``nginx -p PREFIX -c conf -g 'daemon off;'``): pid, logs and temp files stay in PREFIX."""

    name = "nginx"

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
        self.wait_ready(timeout)
        return self

    def answers(self) -> bool:
        # Any answer will do: nginx is up even while the workers behind it are not.
        httpx.get(self.url + "/healthz", verify=self.ssl_context(), timeout=1)
        return True

    def log_paths(self) -> list[Path]:
        return [self.prefix / "stderr.log", self.prefix / "error.log"]


def _account_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False
