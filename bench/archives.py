"""Health archive benchmark: encryption, authorised reads, bulk import - each beside its baseline.

    .venv/bin/python bench/archives.py                 # N = 1,000,000 archives for the import
    .venv/bin/python bench/archives.py --n 50000       # smaller
    DATABASE_URL=postgres://user@host:5432/onekey_bench_archives .venv/bin/python bench/archives.py

It needs PostgreSQL (the import's COPY path is what is measured). The database named by
DATABASE_URL (default postgres://postgres@127.0.0.1:5432/onekey_bench_archives) is created if
missing, migrated, and its archive tables are emptied: the name must start with "onekey_bench"
unless --force.

It runs as production does, with DEBUG=0: keys are throwaway ones generated for the run unless
set (HEALTH_KEYS and HEALTH_BLIND_INDEX_KEY; ACCESS_LOG_HMAC_KEY and ACCESS_LOG_SIGNING_KEY), and the
access log's signed checkpoints go to a temporary ACCESS_LOG_CHECKPOINT_DIR (removed at the end)
unless that is set.

Targets (DESIGN.md): encrypt or decrypt < 0.2 ms; an authorised read (grant check + decrypt + audit
entry) at most 1.2x a bare one-row write transaction, measured here beside it; bulk import of 1
million archives >= 20,000 archives/s.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import itertools
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import harness  # noqa: F401  (puts the repository on sys.path)

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/onekey_bench_archives"


def _p50_p99(samples_ns: list[int]) -> tuple[float, float]:
    """p50 and p99 in ms."""
    cuts = statistics.quantiles(samples_ns, n=100, method="inclusive")
    return cuts[49] / 1e6, cuts[98] / 1e6


def _row(table: list, name: str, p50: float | None, p99: float | None, extra: str = "") -> None:
    table.append((name, f"{p50:.4f}" if p50 is not None else "", f"{p99:.4f}" if p99 is not None else "", extra))


def _print_table(title: str, header: tuple, rows: list) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{title}")
    print("  " + "  ".join(str(h).ljust(w) for h, w in zip(header, widths)))
    print("  " + "  ".join("-" * w for w in widths))
    for r in rows:
        print("  " + "  ".join(str(c).ljust(w) for c, w in zip(r, widths)))


def _ensure_database(url: str, force: bool) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    if not name.startswith("onekey_bench") and not force:
        sys.exit(f"refusing to empty tables in {name!r}: use a database named onekey_bench* or pass --force")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def _throwaway_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def setup(url: str, force: bool) -> None:
    if urlparse(url).scheme not in ("postgres", "postgresql"):
        sys.exit("DATABASE_URL must be a PostgreSQL URL: the import benchmark measures COPY")
    _ensure_database(url, force)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-" + "x" * 40)
    os.environ["DEBUG"] = "0"  # production's code paths; no development key files are read or made
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    if "HEALTH_KEYS" not in os.environ:
        os.environ["HEALTH_KEYS"] = "bench1:" + _throwaway_key()
        os.environ["HEALTH_BLIND_INDEX_KEY"] = _throwaway_key()
    if "ACCESS_LOG_HMAC_KEY" not in os.environ:
        os.environ["ACCESS_LOG_HMAC_KEY"] = _throwaway_key()
    if "ACCESS_LOG_SIGNING_KEY" not in os.environ and "ACCESS_LOG_VERIFY_KEY" not in os.environ:
        os.environ["ACCESS_LOG_SIGNING_KEY"] = _throwaway_key()  # any 32 bytes are an Ed25519 private key
    if "ACCESS_LOG_CHECKPOINT_DIR" not in os.environ:
        directory = tempfile.mkdtemp(prefix="onekey-bench-checkpoints-")
        atexit.register(shutil.rmtree, directory, True)
        os.environ["ACCESS_LOG_CHECKPOINT_DIR"] = directory
    import django

    django.setup()
    import logging

    logging.getLogger("psycopg").setLevel(logging.WARNING)  # the pool's INFO lines would bury the tables
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def bench_crypto(samples: int) -> list:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from health_records import crypto, synthetic
    from health_records.validation import validate_archive

    archives = []
    for row in synthetic.archives(1000, seed=5):
        clean, _ = validate_archive(row, extra=("verified_at",))
        clean.pop("consent_share_with_120")
        archives.append(clean)
    plaintexts = [crypto.encode(a) for a in archives]
    ids = [uuid.uuid4() for _ in archives]
    sealed = [crypto.seal(p, archive_id=i, version=1) for p, i in zip(plaintexts, ids)]
    raw_key = AESGCM(AESGCM.generate_key(bit_length=256))
    raw = [(n := os.urandom(12), raw_key.encrypt(n, p, None)) for p in plaintexts]
    size = statistics.mean(len(p) for p in plaintexts)

    def measure(fn) -> list[int]:
        for i in range(200):
            fn(i % len(archives))
        times = []
        perf = time.perf_counter_ns
        for i in range(samples):
            j = i % len(archives)
            start = perf()
            fn(j)
            times.append(perf() - start)
        return times

    cases = [
        ("raw AES-256-GCM encrypt (same bytes, one key)", lambda j: raw_key.encrypt(os.urandom(12), plaintexts[j], None)),
        ("envelope encrypt (JSON + new data key + wrap)", lambda j: crypto.seal(crypto.encode(archives[j]), archive_id=ids[j], version=1)),
        ("raw AES-256-GCM decrypt (same bytes, one key)", lambda j: raw_key.decrypt(raw[j][0], raw[j][1], None)),
        ("envelope decrypt (unwrap + decrypt + JSON)", lambda j: crypto.decode(crypto.open_sealed(
            ciphertext=sealed[j].ciphertext, nonce=sealed[j].nonce, wrapped_key=sealed[j].wrapped_key,
            kek_id=sealed[j].kek_id, archive_id=ids[j], version=1))),
    ]
    table: list = []
    worst = 0.0
    for name, fn in cases:
        p50, p99 = _p50_p99(measure(fn))
        _row(table, name, p50, p99, f"{size:.0f} B plaintext")
        if name.startswith("envelope"):
            worst = max(worst, p99)
    verdict = (f"VERDICT: target {'MET' if worst < 0.2 else 'MISSED'} - envelope encrypt/decrypt p99 at most "
               f"{worst:.4f} ms (target < 0.2 ms); raw AES-256-GCM of the same bytes beside it")
    return table, verdict


def bench_reads(samples: int) -> list:
    from django.db import connection, transaction

    from accounts.models import Role, User
    from health_records import audit, services, synthetic
    from health_records.models import AccessGrant, AccessLogEntry, AccessLogHead, Archive

    AccessLogEntry.objects.all()._raw_delete(AccessLogEntry.objects.db)  # bench database only
    AccessLogHead.objects.all().delete()
    AccessGrant.objects.all().delete()
    Archive.objects.filter(owner__username__startswith="bench-").delete()
    User.objects.filter(username__startswith="bench-").delete()
    patient = User.objects.create(username="bench-patient", role=Role.CITIZEN)
    reader = User.objects.create(username="bench-dispatcher", role=Role.DISPATCHER)
    row = next(synthetic.archives(1, seed=11))
    row.pop("verified_at")
    row.update(national_id=None, phone=None, consent_share_with_120=True)
    services.archive_put(owner=patient, data=row)
    services.grant_open(case_ref="case:bench", grantee=reader, role="dispatcher", patient=patient,
                                purpose="triage")
    # A grant only replays read: a grant remembers its last logged read, so replays of one read
    # on the grant the logged reads use would each be a new read there.
    replayer = User.objects.create(username="bench-replayer", role=Role.DISPATCHER)
    replay_grant = services.grant_open(case_ref="case:bench-replay", grantee=replayer, role="dispatcher",
                                       patient=patient, purpose="triage")
    # A row of its own for the write baseline, the same table as the grant the reads mark.
    other = User.objects.create(username="bench-other", role=Role.DISPATCHER)
    baseline_grant = services.grant_open(case_ref="case:bench-baseline", grantee=other, role="dispatcher",
                                         patient=patient, purpose="triage")

    def bare_row():
        Archive.objects.filter(owner_id=patient.pk).first()

    values = itertools.count()

    def write_statement():
        # One UPDATE in autocommit: a one-row write transaction in a single round trip.
        AccessGrant.objects.filter(pk=baseline_grant.pk).update(stage=str(next(values) % 1000))

    def write_transaction():
        with transaction.atomic():
            AccessGrant.objects.filter(pk=baseline_grant.pk).update(stage=str(next(values) % 1000))

    purposes = itertools.count()

    def logged_read():
        # Another purpose each time: a new read, so every one is re-checked, marked and appended.
        services.archive_read_for_grant(patient=patient, reader=reader, case_ref="case:bench",
                                        purpose=f"triage-{next(purposes)}")

    def replayed_read():
        # The same read again (a replayed event, a refreshed console): already logged, not appended.
        services.archive_read_for_grant(patient=patient, reader=replayer, case_ref="case:bench-replay",
                                        purpose="triage")

    cases = {
        "baseline: fetch the archive row (1 query, no check)": bare_row,
        "baseline: one-row write, 1 statement (autocommit UPDATE + WAL flush)": write_statement,
        "baseline: one-row write transaction (BEGIN, UPDATE, COMMIT + WAL flush)": write_transaction,
        "authorised read, logged (grant + decrypt + mark + audit append)": logged_read,
        "replayed read, already logged (grant + decrypt)": replayed_read,
    }
    # Interleaved, one of each in turn: whatever else the machine does hits every case alike.
    before = AccessLogEntry.objects.count()
    for _ in range(100):
        for fn in cases.values():
            fn()
    times: dict[str, list[int]] = {name: [] for name in cases}
    cpu_ns: dict[str, int] = dict.fromkeys(cases, 0)
    perf, cpu = time.perf_counter_ns, time.thread_time_ns  # this thread: not the pool's
    for _ in range(samples):
        for name, fn in cases.items():
            cpu_start, start = cpu(), perf()
            fn()
            times[name].append(perf() - start)
            cpu_ns[name] += cpu() - cpu_start
    appended = AccessLogEntry.objects.count() - before
    results = {name: _p50_p99(samples_ns) for name, samples_ns in times.items()}
    table: list = []
    base50, base99 = results["baseline: one-row write transaction (BEGIN, UPDATE, COMMIT + WAL flush)"]
    for name, (p50, p99) in results.items():
        # The benchmark thread's CPU per operation: steadier than latency on a busy machine.
        extra = f"client CPU {cpu_ns[name] / samples / 1e6:.3f} ms"
        if not name.startswith("baseline: fetch"):
            extra += f"; {p50 / base50:.2f}x / {p99 / base99:.2f}x the write transaction"
        _row(table, name, p50, p99, extra)
    # Every logged read appended one entry; of the replays only the very first (in the warm-up).
    assert appended == samples + 100 + 1, f"expected {samples + 101} entries appended, got {appended}"
    assert AccessGrant.objects.get(pk=replay_grant.pk).logged_read, "the replayed read is marked as logged"

    result = audit.verify_chain()
    table.append(("  (access log after the run)", "", "", result.describe()))
    read50, read99 = results["authorised read, logged (grant + decrypt + mark + audit append)"]
    ratio = read50 / base50
    verdict = (f"VERDICT: target {'MET' if ratio <= 1.2 and result.ok else 'MISSED'} - authorised read p50 {read50:.3f} ms "
               f"= {ratio:.2f}x the one-row write transaction's {base50:.3f} ms, same run (target <= 1.2x; p99 "
               f"{read99:.3f} ms = {read99 / base99:.2f}x); access log {'intact' if result.ok else 'BROKEN'}")
    return table, verdict


def _synthetic_file(n: int, seed: int, directory: Path) -> Path:
    from health_records import synthetic

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"archives-{n}-seed{seed}.jsonl"
    if not path.exists():
        started = time.perf_counter()
        tmp = path.with_suffix(".tmp")
        synthetic.write_jsonl(tmp, n, seed=seed)
        tmp.rename(path)
        print(f"  generated {n:,} synthetic archives in {time.perf_counter() - started:.1f} s -> {path}")
    return path


def _empty_archives() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE health_records_archiveversion, health_records_archive CASCADE")


def _checkpoint() -> None:
    """Start each timed phase without the previous one's dirty pages still to write (superuser or
    pg_checkpoint only; without the right it is skipped)."""
    from django.db import DatabaseError, connection

    try:
        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
    except DatabaseError:
        pass


def _cpu_s() -> float:
    """CPU seconds of this process and of its reaped children (the import's worker processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _backends_cpu_s() -> dict[int, float] | None:
    """CPU seconds so far of each PostgreSQL backend connected to this database (None when the
    server is not on this host, so its processes cannot be read)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        pids = [pid for (pid,) in cursor.fetchall()]
    ticks = os.sysconf("SC_CLK_TCK")
    seconds = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        seconds[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return seconds


def _backends_used_s(before: dict[int, float] | None) -> float | None:
    after = _backends_cpu_s()
    if before is None or after is None:
        return None
    return sum(spent - before.get(pid, 0.0) for pid, spent in after.items())


def _plain_copy_of_the_imported_rows(spool) -> tuple[int, float, float | None]:
    """The baseline: the very rows the import wrote (same bytes, same random blind-index keys),
    exported and loaded again with one plain COPY into an empty copy of the archive table with the
    same indexes - no parsing, no validation, no crypto, no look-ups, one transaction."""
    from django.db import connection

    from health_records.importer import COPY_COLUMNS

    columns = ", ".join(COPY_COLUMNS)  # every column an import writes
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY (SELECT {columns} FROM health_records_archive) TO STDOUT (FORMAT BINARY)") as copy:
            for block in copy:
                spool.write(block)
        cursor.execute("SELECT count(*) FROM health_records_archive")
        rows = cursor.fetchone()[0]
        cursor.execute("DROP TABLE IF EXISTS bench_plain_copy")
        cursor.execute("CREATE TABLE bench_plain_copy (LIKE health_records_archive INCLUDING ALL)")
    spool.seek(0)
    _checkpoint()
    backends = _backends_cpu_s()
    started = time.perf_counter()
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY bench_plain_copy ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
            while block := spool.read(1 << 20):
                copy.write(block)
    seconds = time.perf_counter() - started
    server_s = _backends_used_s(backends)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_plain_copy")
    return rows, seconds, server_s


def bench_import(n: int, seed: int, workers: int, batch_size: int, directory: Path, rerun: bool) -> list:
    from health_records import importer

    path = _synthetic_file(n, seed, directory)
    size_mb = path.stat().st_size / 1e6
    table: list = []

    def server(seconds: float | None) -> str:
        return "" if seconds is None else f", PostgreSQL {seconds / n * 1e6:.0f}"

    _empty_archives()
    _checkpoint()
    cpu, backends = _cpu_s(), _backends_cpu_s()
    started = time.perf_counter()
    stats = importer.import_file(path, batch_size=batch_size, workers=workers)
    import_s = time.perf_counter() - started
    cpu_us, server_s = (_cpu_s() - cpu) / n * 1e6, _backends_used_s(backends)
    assert stats.inserted == n and stats.bad == 0, stats.describe()

    with tempfile.TemporaryFile(dir=directory) as spool:
        copied, copy_s, copy_server_s = _plain_copy_of_the_imported_rows(spool)
    assert copied == n, f"{copied} rows in the archive table, expected {n}"
    table.append(("baseline: plain COPY of the same rows (same table, indexes)", f"{n:,}", f"{copy_s:.1f}",
                  f"{n / copy_s:,.0f}", f"CPU us/archive: {server(copy_server_s).lstrip(', ')}"))
    table.append((f"import_archives, {workers} workers (parse+validate+encrypt+COPY)", f"{n:,}", f"{import_s:.1f}",
                  f"{n / import_s:,.0f}", f"CPU us/archive: importer + workers {cpu_us:.0f}{server(server_s)}"))
    if rerun:
        started = time.perf_counter()
        stats = importer.import_file(path, batch_size=batch_size, workers=workers)
        rerun_s = time.perf_counter() - started
        assert stats.unchanged == n, stats.describe()
        table.append(("import_archives again (idempotent: all unchanged)", f"{n:,}", f"{rerun_s:.1f}",
                      f"{n / rerun_s:,.0f}", ""))
    table.append(("  (input file)", "", "", "", f"{size_mb:,.0f} MB JSON Lines"))
    rate = n / import_s
    verdict = (f"VERDICT: target {'MET' if rate >= 20_000 else 'MISSED'} - import {rate:,.0f} archives/s (target >= 20,000/s) "
               f"beside a plain COPY of the same rows at {n / copy_s:,.0f} rows/s, same run ({copy_s / import_s:.2f}x)")
    return table, verdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="archives to import (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=120)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="import worker processes (default: one per core)")
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=20000, help="timed operations per crypto case")
    parser.add_argument("--reads", type=int, default=3000, help="timed operations per read case")
    parser.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "onekey-bench"), help="where the synthetic file is cached")
    parser.add_argument("--no-rerun", action="store_true", help="skip the idempotent re-import")
    parser.add_argument("--skip-import", action="store_true")
    parser.add_argument("--force", action="store_true", help="allow a database not named onekey_bench*")
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    setup(url, args.force)
    from django.db import connection

    print(f"health archive benchmark - PostgreSQL {connection.cursor().connection.info.server_version}, "
          f"{os.cpu_count()} cores, Python {sys.version.split()[0]}")

    table, crypto_verdict = bench_crypto(args.samples)
    _print_table("Per archive encryption (ms)                     target: envelope encrypt/decrypt p99 < 0.2 ms",
                 ("operation", "p50 ms", "p99 ms", ""), table)
    print(crypto_verdict)
    table, read_verdict = bench_reads(args.reads)
    _print_table("Authorised read on PostgreSQL (ms)              target: at most 1.2x a one-row write transaction",
                 ("operation", "p50 ms", "p99 ms", "client CPU per operation; p50 / p99 against the baseline"), table)
    print(read_verdict)
    if not args.skip_import:
        table, import_verdict = bench_import(args.n, args.seed, args.workers, args.batch_size, Path(args.data_dir),
                                             not args.no_rerun)
        _print_table("Bulk import on PostgreSQL                       target: >= 20,000 archives/s",
                     ("run", "rows", "seconds", "rows/s", ""), table)
        print(import_verdict)


if __name__ == "__main__":
    main()
