"""The benchmarks' harness: daphne workers (or uvicorn ones, to compare) on free ports, throwaway
PostgreSQL databases, the services they need, readiness waits, and a stream client. Every process
started here is stopped here. The end-to-end tests build on it too (tests/support/servers.py), so
there is one way to run a real server; it imports nothing from tests/.

Importing it puts the repository root on ``sys.path``, so ``python bench/x.py`` can import the
project's packages."""

from __future__ import annotations

import contextlib
import json
import os
import math
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
PYTHON = sys.executable
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
            # that fences a stream and expects nothing before the pong.
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


class ManagedProcess:
    """A server process started here (daphne; nginx in tests/support/servers.py): ``wait_ready``
    polls ``answers()`` until it holds, ``stop()`` ends exactly this process and closes its log,
    ``log_tail()`` reads ``log_paths()`` for a failure message. Subclasses start the process."""

    name = "server"
    process: subprocess.Popen | None = None
    _log = None

    def answers(self) -> bool:
        raise NotImplementedError

    def log_paths(self) -> list[Path]:
        raise NotImplementedError

    def start(self, timeout: float = 60) -> ManagedProcess:
        raise NotImplementedError

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.05
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if self.answers():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(delay)
            delay = min(delay * 1.5, 0.2)
        self.stop()
        raise RuntimeError(f"{self.name} was not ready within {timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        stop_process(self.process)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 40) -> str:
        out = []
        for path in self.log_paths():
            try:
                out += path.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                pass
        return "\n".join(out) or "(no log)"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class DaphneServer(ManagedProcess):
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

    def command(self) -> list[str]:
        return [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), *self.args, "config.asgi:application"]

    def launch(self) -> DaphneServer:
        """Start the process without waiting for it (see ``start_together``)."""
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            self.command(),
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        return self

    def answers(self) -> bool:
        return httpx.get(self.url + "/healthz", timeout=1).status_code == 200

    def log_paths(self) -> list[Path]:
        return [self.log_path]


class UvicornServer(DaphneServer):
    """One uvicorn worker on the same application, to measure daphne beside another ASGI server
    (issue 9: the project stays on daphne). Needs the optional ``bench`` extra (uvicorn with
    httptools and uvloop, its fastest setup). Quiet like a deployed daphne (``-v 0``): no access
    log. ``args`` are extra uvicorn options."""

    def command(self) -> list[str]:
        return [
            PYTHON, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(self.port),
            # The application has no lifespan protocol; daphne's websocket ping timings; keep-alive as
            # long as daphne keeps a connection, so clients do not reconnect more often here.
            "--lifespan", "off", "--ws-ping-interval", "20", "--ws-ping-timeout", "30",
            "--timeout-keep-alive", "75", "--no-access-log", "--log-level", "warning",
            *self.args, "config.asgi:application",
        ]


# The ASGI servers a benchmark can run its workers on (--server), with the options each is deployed
# with: daphne as in deploy/onekey120@.service (-v 0: no access log).
SERVERS: dict[str, tuple[type[DaphneServer], tuple[str, ...]]] = {
    "daphne": (DaphneServer, ("-v", "0")),
    "uvicorn": (UvicornServer, ()),
}


def add_server_argument(parser) -> None:
    """``--server``: which of SERVERS a benchmark's workers run on."""
    parser.add_argument(
        "--server", choices=sorted(SERVERS), default="daphne",
        help="the workers' ASGI server (default daphne, the project's; uvicorn only to compare, from the bench extra)",
    )


def check_server(server: str) -> None:
    """Raise ServiceMissing unless ``server`` (a key of SERVERS) can be started here."""
    import importlib.util

    if importlib.util.find_spec(server) is None:
        raise ServiceMissing(f"{server} is not installed (uvicorn comes with: make venv EXTRAS=test,bench)")


def asgi_worker(server: str, env: dict[str, str], **kwargs) -> DaphneServer:
    """A worker of ``server`` (a key of SERVERS) with its deployed options; not started."""
    server_class, args = SERVERS[server]
    return server_class(env, args=args, **kwargs)


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
        # Their shutdowns overlap too: every worker is told first, then each is waited for.
        for server in servers:
            if server.process is not None and server.process.poll() is None:
                server.process.terminate()
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
        with psycopg.connect(libpq_url(postgres_admin_url(), "postgres"), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        raise ServiceMissing(f"PostgreSQL is not reachable at {redact(postgres_admin_url())}: {exc}") from exc


def check_redis() -> None:
    import redis

    try:
        redis.Redis.from_url(redis_url(), socket_connect_timeout=3).ping()
    except Exception as exc:
        raise ServiceMissing(f"Redis is not reachable at {redact(redis_url())}: {exc}") from exc


def libpq_url(url: str, dbname: str) -> str:
    parsed = urlparse(url)
    scheme = "postgresql"
    return urlunparse(parsed._replace(scheme=scheme, path="/" + dbname))


def redact(url: str) -> str:
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(parsed.password, "***")
    return url


@contextlib.contextmanager
def postgres_database(prefix: str = "onekey_e2e", *, template: str | None = None) -> Iterator[str]:
    """A fresh PostgreSQL database for one run (a copy of ``template`` if given); dropped afterwards."""
    import psycopg

    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = libpq_url(postgres_admin_url(), "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield libpq_url(postgres_admin_url(), name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')



# --- clients --------------------------------------------------------------------------------------


def login(base_url: str, username: str, password: str = DEMO_PASSWORD) -> str:
    response = httpx.post(f"{base_url}/api/v1/auth/token", json={"username": username, "password": password}, timeout=10)
    response.raise_for_status()
    return response.json()["token"]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}"}


async def open_stream(ws_base: str, path: str, token: str, *, since: int | None = None, ssl=None):
    """Connect, authenticate by first message, wait for ``ready``; optionally resume.
    Returns (websocket, ready_message). ``ssl``: an SSLContext for a wss:// base."""
    import websockets

    # max_queue=None: a console that has not read every frame yet must still see the server's
    # close frame. With websockets' default of 16 queued frames it stops reading the socket, and
    # close() then waits out its whole 10 s close_timeout.
    ws = await websockets.connect(
        ws_base + path, open_timeout=10, max_queue=None, **({"ssl": ssl} if ssl is not None else {})
    )
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


# --- benchmark plumbing ---------------------------------------------------------------------------


def percentile(values: list[float], q: int) -> float:
    """The q-th percentile (q a whole number, 1-99), linear between closest ranks (statistics'
    "inclusive", numpy's default); NaN for no values."""
    if not values:
        return math.nan
    if len(values) == 1:
        return values[0]  # statistics.quantiles wants two points before Python 3.13
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def fmt_ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def check_services() -> None:
    """Both services a benchmark's workers need; ServiceMissing names the first one missing."""
    check_postgres()
    check_redis()


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def interrupt_on_sigterm() -> None:
    """A SIGTERM unwinds like Ctrl-C, so the workers are stopped and the database dropped."""
    signal.signal(signal.SIGTERM, _raise_interrupt)


@contextlib.contextmanager
def bench_environment() -> Iterator[dict[str, str]]:
    """The workers' environment for one benchmark run, on a throwaway database: a unique
    channel-layer prefix (its Redis keys are deleted afterwards), no SOS rate limit (the load is
    the point), and throwaway health keys unless the caller's environment provides some."""
    prefix = "bench" + secrets.token_hex(4)
    try:
        with postgres_database("onekey_bench") as database_url:
            env = base_env(
                DATABASE_URL=database_url,
                REDIS_URL=redis_url(),
                CHANNEL_LAYER_PREFIX=prefix,
                SOS_RATE_LIMIT="100000/min",
                LOG_LEVEL="WARNING",
            )
            for name, value in throwaway_health_keys().items():
                env.setdefault(name, value)
            yield env
    finally:
        delete_redis_keys(prefix)


def run_bench(name: str, servers: list[DaphneServer], body: Callable[[], int]) -> int:
    """A benchmark's ``body`` with its exit codes: what it returns, 130 on Ctrl-C (or SIGTERM after
    ``interrupt_on_sigterm``), 2 on any failure, after the tail of each worker's log (``servers``,
    as far as the body filled it)."""
    try:
        return body()
    except KeyboardInterrupt:
        print("\ninterrupted: workers stopped, database dropped", file=sys.stderr)
        return 130
    except Exception as exc:
        for s in servers:
            print(f"--- {s.name} log ({s.log_path}) tail ---\n{s.log_tail()}", file=sys.stderr)
        print(f"{name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


@contextlib.contextmanager
def workers_stopped(servers: list[DaphneServer], *, keep_logs: bool) -> Iterator[list[DaphneServer]]:
    """Stops every worker in ``servers`` (filled inside the block) on the way out. Their logs are
    removed when the block got through without ``keep_logs``; a failure keeps them for its tail."""
    succeeded = False
    try:
        yield servers
        succeeded = True
    finally:
        stop_all(servers)
        if succeeded and not keep_logs:
            for s in servers:
                s.log_path.unlink(missing_ok=True)


def run_outcome(servers: list[DaphneServer], code: int, *, keep_logs: bool) -> int:
    """A run's exit code once it is over: 1 if a worker died during it (with its log's tail)."""
    for s in servers:
        if s.process.poll() is not None:
            print(f"worker {s.name} died during the run:\n{s.log_tail()}", file=sys.stderr)
            code = 1
    if keep_logs:
        print("worker logs: " + ", ".join(str(s.log_path) for s in servers))
    return code


def throwaway_health_keys() -> dict[str, str]:
    """Health-archive and access-log keys for a throwaway database (workers refuse to start without
    them when DEBUG is off), and a checkpoint directory removed at exit."""
    import atexit
    import base64
    import shutil
    import tempfile

    checkpoints = tempfile.mkdtemp(prefix="bench-checkpoints-")
    atexit.register(shutil.rmtree, checkpoints, True)
    return {
        "HEALTH_KEYS": "bench1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "HEALTH_BLIND_INDEX_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "ACCESS_LOG_HMAC_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        # Any 32 random bytes are a raw Ed25519 private key.
        "ACCESS_LOG_SIGNING_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "ACCESS_LOG_CHECKPOINT_DIR": checkpoints,
    }


def delete_redis_keys(prefix: str) -> None:
    """Best effort: every key a run made under its unique CHANNEL_LAYER_PREFIX."""
    try:
        import redis

        client = redis.Redis.from_url(redis_url())
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    except Exception as exc:  # pragma: no cover - best effort
        print(f"(could not delete Redis keys {prefix}*: {exc})", file=sys.stderr)


def stop_all(servers, grace: float = 5.0) -> None:
    """Stop every worker at once (an overloaded daphne can take its full close timeout to exit)."""
    for server in servers:
        if server.process is not None and server.process.poll() is None:
            server.process.terminate()
    deadline = time.monotonic() + grace
    for server in servers:
        if server.process is None:
            continue
        try:
            server.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            server.process.kill()
        server.stop()  # reaps the process and closes its log


def rss_mb(pid: int) -> tuple[float, float]:
    """(resident now, peak resident) of a process in MB, from /proc (Linux); NaN elsewhere."""
    values = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return values.get("VmRSS", float("nan")), values.get("VmHWM", float("nan"))


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (Linux /proc); NaN elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


# --- Django in the bench's own process (recommend.py, gps_fix.py) -----------------------------------


def add_database_options(parser) -> None:
    """--postgres (a throwaway PostgreSQL database) or --database-url (one you made); else SQLite."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL database")
    where.add_argument("--database-url", default=None)


@contextlib.contextmanager
def in_process_database(args, prefix: str) -> Iterator[str]:
    """The database the options chose, as a URL: a throwaway PostgreSQL database (dropped after),
    the given URL (left as it is), or a throwaway SQLite file. Raises ServiceMissing when
    PostgreSQL was asked for and is not reachable."""
    import tempfile

    if args.postgres:
        check_postgres()
        with postgres_database(prefix) as url:
            yield url
    elif args.database_url:
        yield args.database_url
    else:
        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite:///{directory}/bench.sqlite3"


def setup_django(url: str) -> None:
    """Django in this process on ``url``: no Redis (no channel layer, no shared cache), the
    development health keys (nothing here reads an archive), warnings only in the logs."""
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("SECRET_KEY", "bench-only-not-a-secret-" + "z" * 40)
    os.environ.setdefault("DEBUG", "1")
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()
