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


def _percentiles(samples_ns: list[int]) -> tuple[float, float]:
    ordered = sorted(samples_ns)
    p50 = ordered[len(ordered) // 2] / 1e6
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1e6
    return p50, p99


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
    for name, fn in cases:
        p50, p99 = _percentiles(measure(fn))
        _row(table, name, p50, p99, f"{size:.0f} B plaintext")
    return table


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
    perf = time.perf_counter_ns
    for _ in range(samples):
        for name, fn in cases.items():
            start = perf()
            fn()
            times[name].append(perf() - start)
    appended = AccessLogEntry.objects.count() - before
    results = {name: _percentiles(samples_ns) for name, samples_ns in times.items()}
    table: list = []
    base50, base99 = results["baseline: one-row write transaction (BEGIN, UPDATE, COMMIT + WAL flush)"]
    for name, (p50, p99) in results.items():
        extra = "" if name.startswith("baseline: fetch") else f"{p50 / base50:.2f}x / {p99 / base99:.2f}x the write transaction"
        _row(table, name, p50, p99, extra)
    # Every logged read appended one entry; of the replays only the very first (in the warm-up).
    assert appended == samples + 100 + 1, f"expected {samples + 101} entries appended, got {appended}"
    assert AccessGrant.objects.get(pk=replay_grant.pk).logged_read, "the replayed read is marked as logged"

    result = audit.verify_chain()
    table.append(("  (access log after the run)", "", "", result.describe()))
    return table


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


def bench_import(n: int, seed: int, workers: int, batch_size: int, directory: Path, rerun: bool) -> list:
    from django.db import connection

    from health_records import importer

    path = _synthetic_file(n, seed, directory)
    size_mb = path.stat().st_size / 1e6
    table: list = []

    # Baseline: a plain COPY of N rows of the same shape into a copy of the archive table
    # (same columns, same unique indexes), no parsing, no validation, no crypto.
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_plain_copy")
        cursor.execute("CREATE UNLOGGED TABLE bench_plain_copy (LIKE health_records_archive INCLUDING ALL)")
        cursor.execute("ALTER TABLE bench_plain_copy SET LOGGED")
    blobs = [os.urandom(size) for size in (520, 640, 760, 900)]
    wrapped, nonce = os.urandom(60), os.urandom(12)
    columns = ("id", "ciphertext", "nonce", "wrapped_key", "kek_id", "version", "national_id_bidx", "phone_bidx",
               "content_mac", "consent_share_with_120", "verified_at", "source", "created_at", "updated_at")
    from django.utils import timezone

    now = timezone.now()
    started = time.perf_counter()
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY bench_plain_copy ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["uuid", "bytea", "bytea", "bytea", "text", "int4", "bytea", "bytea", "bytea", "bool",
                            "timestamptz", "text", "timestamptz", "timestamptz"])
            for i in range(n):
                key = i.to_bytes(32, "big")
                copy.write_row((uuid.UUID(int=i + 1), blobs[i & 3], nonce, wrapped, "k", 1, key, key[::-1], key,
                                True, now, "import", now, now))
    copy_s = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_plain_copy")
    table.append(("baseline: plain COPY of N rows (same shape and indexes)", f"{n:,}", f"{copy_s:.1f}", f"{n / copy_s:,.0f}"))

    _empty_archives()
    started = time.perf_counter()
    stats = importer.import_file(path, batch_size=batch_size, workers=workers)
    import_s = time.perf_counter() - started
    assert stats.inserted == n and stats.bad == 0, stats.describe()
    table.append((f"import_archives (parse+validate+encrypt+COPY+upsert, {workers} workers)", f"{n:,}",
                  f"{import_s:.1f}", f"{n / import_s:,.0f}"))
    if rerun:
        started = time.perf_counter()
        stats = importer.import_file(path, batch_size=batch_size, workers=workers)
        rerun_s = time.perf_counter() - started
        assert stats.unchanged == n, stats.describe()
        table.append(("import_archives again (idempotent: all unchanged)", f"{n:,}", f"{rerun_s:.1f}", f"{n / rerun_s:,.0f}"))
    table.append(("  (input file)", "", "", f"{size_mb:,.0f} MB JSON Lines"))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="archives to import (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=120)
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 2))
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

    table = bench_crypto(args.samples)
    _print_table("Per archive encryption (ms)                     target: envelope encrypt/decrypt p99 < 0.2 ms",
                 ("operation", "p50 ms", "p99 ms", ""), table)
    table = bench_reads(args.reads)
    _print_table("Authorised read on PostgreSQL (ms)              target: at most 1.2x a one-row write transaction",
                 ("operation", "p50 ms", "p99 ms", ""), table)
    if not args.skip_import:
        table = bench_import(args.n, args.seed, args.workers, args.batch_size, Path(args.data_dir), not args.no_rerun)
        _print_table("Bulk import on PostgreSQL                       target: >= 20,000 archives/s",
                     ("run", "rows", "seconds", "rows/s"), table)


if __name__ == "__main__":
    main()
