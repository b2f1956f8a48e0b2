"""Bulk import of archives from the city health platform (JSON Lines), any size, idempotent.

Each line is one archive in the API's shape (``validation.validate_archive``) plus an optional
``verified_at`` (ISO 8601 with a zone). ``national_id`` is required: it is the upsert key.

Pipeline, per batch of lines, one transaction per batch:
1. parse, validate, encrypt (fresh data key per archive), compute blind indexes and the content
   MAC, and encode the staging row (PostgreSQL binary COPY format) - in worker processes when
   ``workers > 0``; bad rows are reported with their line number and skipped, the import goes on;
2. stage the batch: PostgreSQL ``COPY ... (FORMAT BINARY)`` into a temporary table, SQLite a bulk
   insert into one;
3. one join of the staging table with the archives (rows locked) classifies the batch: unchanged
   archives (same content MAC and consent) are dropped, which makes a re-run a no-op; changed
   ones are re-sealed for their existing id and next version; a phone already on another
   person's archive is a bad row; archives a citizen edited themselves are left alone;
4. in SQL: keep each superseded version in ArchiveVersion, then
   ``INSERT ... SELECT ... ON CONFLICT (national_id_bidx) DO UPDATE`` (upsert by blind index).

Only VERIFIED identifiers take part: ``national_id_bidx`` / ``phone_bidx`` are set by imports (and
kept when an imported archive is linked to its owner). What a citizen types into their own archive
is a claim (``claimed_*_bidx``, not unique) that this pipeline never reads, so nobody can block or
pre-empt a person's import by typing their national ID or phone first.

Ownership: imported archives have no owner. They are linked to a citizen account by
``services.archive_link_owner`` from a verified flow, never by matching an unverified phone.
"""

from __future__ import annotations

import multiprocessing
import os
import struct
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone as dt_timezone
from typing import Callable, Iterable, Iterator

import orjson
from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone

from health_records import blind_index, crypto
from health_records.models import Archive, ArchiveVersion, Source
from health_records.validation import flatten_errors, parse_timestamp, validate_archive

_ARCHIVE = Archive._meta.db_table
_VERSION = ArchiveVersion._meta.db_table
_STAGING = "hr_import_staging"
_STAGING_COLUMNS = (
    "id", "national_id_bidx", "phone_bidx", "content_mac", "consent", "verified_at",
    "ciphertext", "nonce", "wrapped_key", "kek_id", "version", "updated_at",
)


@dataclass
class ImportStats:
    lines: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    kept_citizen: int = 0
    superseded_in_file: int = 0
    bad: int = 0
    skipped_concurrent: int = 0
    bad_lines: list[int] = field(default_factory=list)

    @property
    def good(self) -> int:
        return self.inserted + self.updated + self.unchanged + self.kept_citizen

    def describe(self) -> str:
        return (
            f"{self.lines} lines: {self.inserted} inserted, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.kept_citizen} kept (edited by their owner), {self.superseded_in_file} superseded later in the "
            f"file, {self.bad} bad" + (f", {self.skipped_concurrent} changed concurrently (re-run)" if self.skipped_concurrent else "")
        )


# --- step 1: pure work, safe in a worker process -------------------------------------------------

_PG_EPOCH = datetime(2000, 1, 1, tzinfo=dt_timezone.utc)
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
_COPY_TRAILER = struct.pack("!h", -1)
_NULL = struct.pack("!i", -1)
_FIELD_COUNT = struct.pack("!h", len(_STAGING_COLUMNS))
_pack_len = struct.Struct("!i").pack
_pack_q = struct.Struct("!iq").pack
_pack_i = struct.Struct("!ii").pack
_TRUE, _FALSE = _pack_len(1) + b"\x01", _pack_len(1) + b"\x00"


def _pg_micros(value: datetime) -> int:
    delta = value - _PG_EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _bytea(value: bytes | None) -> bytes:
    return _NULL if value is None else _pack_len(len(value)) + value


# A good line travels from a worker as a plain tuple (cheap to pickle): these are its fields.
# ``staged`` is the binary COPY row (PostgreSQL) or the staging tuple (SQLite).
LINE, NID, PHONE, MAC, CONSENT, PLAINTEXT, STAGED = range(7)


def stage_row(*, archive_id: uuid.UUID, nid, phone, mac, consent, verified_at, sealed, version, now, binary: bool):
    if binary:
        return b"".join((
            _FIELD_COUNT,
            _bytea(archive_id.bytes), _bytea(nid), _bytea(phone), _bytea(mac), _TRUE if consent else _FALSE,
            _pack_q(8, _pg_micros(verified_at or now)),
            _bytea(sealed.ciphertext), _bytea(sealed.nonce), _bytea(sealed.wrapped_key), _bytea(sealed.kek_id.encode()),
            _pack_i(4, version), _pack_q(8, _pg_micros(now)),
        ))
    ops = connection.ops
    return (
        archive_id.hex, nid, phone, mac, consent, ops.adapt_datetimefield_value(verified_at or now),
        sealed.ciphertext, sealed.nonce, sealed.wrapped_key, sealed.kek_id, version, ops.adapt_datetimefield_value(now),
    )


def prepare_line(line_no: int, raw: bytes, *, now: datetime, binary: bool) -> tuple:
    """One line -> a sealed, staged archive (a 7-tuple, see LINE..STAGED), or (line number, error messages)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return line_no, ["not valid JSON"]
    clean, errors = validate_archive(data, extra=("verified_at",))
    if errors:
        return line_no, flatten_errors(errors)
    if not clean["national_id"]:
        return line_no, ["national_id: This field is required for an import (it is the upsert key)."]
    verified_at = None
    if data.get("verified_at") is not None:
        try:
            verified_at = parse_timestamp(data["verified_at"])
        except ValueError as exc:
            return line_no, [f"verified_at: {exc}"]
    consent = clean.pop("consent_share_with_120")
    plaintext = crypto.encode(clean)
    archive_id = crypto.new_archive_id()
    nid = blind_index.national_id_index(clean["national_id"])
    phone = blind_index.phone_index(clean["phone"])
    mac = blind_index.content_mac(plaintext)
    sealed = crypto.seal(plaintext, archive_id=archive_id, version=1)
    staged = stage_row(archive_id=archive_id, nid=nid, phone=phone, mac=mac, consent=consent,
                       verified_at=verified_at, sealed=sealed, version=1, now=now, binary=binary)
    return (line_no, nid, phone, mac, consent, plaintext, staged)


def _prepare_chunk(chunk: tuple[int, list[bytes]], now: datetime, binary: bool) -> list:
    start, lines = chunk
    return [prepare_line(start + offset, raw, now=now, binary=binary) for offset, raw in enumerate(lines) if raw.strip()]


def _chunks(lines: Iterable[bytes], size: int) -> Iterator[tuple[int, list[bytes]]]:
    batch: list[bytes] = []
    start = 1
    for number, raw in enumerate(lines, start=1):
        if not batch:
            start = number
        batch.append(raw)
        if len(batch) >= size:
            yield start, batch
            batch = []
    if batch:
        yield start, batch


def _prepared_batches(lines: Iterable[bytes], *, batch_size: int, workers: int, now: datetime, binary: bool):
    """(lines in the chunk, results) in file order; at most 2 x workers chunks in flight."""
    chunks = _chunks(lines, batch_size)
    if connection.in_atomic_block:
        workers = 0  # forking means closing this connection, which would end the caller's transaction
    if workers <= 0:
        for chunk in chunks:
            yield len(chunk[1]), _prepare_chunk(chunk, now, binary)
        return
    connections.close_all()  # never share a database socket with forked children
    context = multiprocessing.get_context("fork")
    with context.Pool(workers) as pool:
        pending: deque = deque()
        for chunk in chunks:
            pending.append((len(chunk[1]), pool.apply_async(_prepare_chunk, (chunk, now, binary))))
            if len(pending) >= 2 * workers:
                count, result = pending.popleft()
                yield count, result.get()
        while pending:
            count, result = pending.popleft()
            yield count, result.get()


# --- steps 2 to 4: the database --------------------------------------------------------------------


def _pg() -> bool:
    return connection.vendor == "postgresql"


def _ensure_staging(cursor) -> None:
    if _pg():
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGING} (id uuid, national_id_bidx bytea, phone_bidx bytea, "
            "content_mac bytea, consent boolean, verified_at timestamptz, ciphertext bytea, nonce bytea, "
            "wrapped_key bytea, kek_id text, version integer, updated_at timestamptz) ON COMMIT DELETE ROWS"
        )
        cursor.execute(f"TRUNCATE {_STAGING}")  # also when the batch runs inside an outer transaction
    else:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGING} (id char(32), national_id_bidx blob, phone_bidx blob, "
            "content_mac blob, consent bool, verified_at datetime, ciphertext blob, nonce blob, wrapped_key blob, "
            "kek_id varchar(32), version integer, updated_at datetime)"
        )
        cursor.execute(f"DELETE FROM {_STAGING}")


def _stage(cursor, rows: list[tuple]) -> None:
    if _pg():
        with cursor.cursor.copy(f"COPY {_STAGING} ({', '.join(_STAGING_COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(b"".join([_COPY_HEADER, *(row[STAGED] for row in rows), _COPY_TRAILER]))
    else:
        cursor.executemany(
            f"INSERT INTO {_STAGING} ({', '.join(_STAGING_COLUMNS)}) VALUES ({', '.join(['%s'] * len(_STAGING_COLUMNS))})",
            [row[STAGED] for row in rows],
        )


_INSERT_NEW_SQL = f"""
INSERT INTO {_ARCHIVE} (id, owner_id, ciphertext, nonce, wrapped_key, kek_id, version, national_id_bidx,
    phone_bidx, content_mac, consent_share_with_120, consent_changed_at, verified_at, source, created_at, updated_at)
SELECT id, NULL, ciphertext, nonce, wrapped_key, kek_id, version, national_id_bidx,
    phone_bidx, content_mac, consent, updated_at, verified_at, 'import', updated_at, updated_at
FROM {_STAGING} WHERE true
ON CONFLICT DO NOTHING
RETURNING national_id_bidx
"""
# The archives that already existed (not the ones just inserted from this very staging table).
_MATCH_SQL = f"""
SELECT s.national_id_bidx, a.id, a.content_mac, a.version, a.source, a.consent_share_with_120
FROM {_STAGING} s JOIN {_ARCHIVE} a ON a.national_id_bidx = s.national_id_bidx
WHERE a.id <> s.id
"""
_RESTAGE_SQL = (
    f"UPDATE {_STAGING} SET id = %s, version = %s, ciphertext = %s, nonce = %s, wrapped_key = %s, kek_id = %s "
    "WHERE national_id_bidx = %s"
)

_KEEP_VERSIONS_SQL = f"""
INSERT INTO {_VERSION} (archive_id, version, ciphertext, nonce, wrapped_key, kek_id, source, written_at, superseded_at)
SELECT a.id, a.version, a.ciphertext, a.nonce, a.wrapped_key, a.kek_id, a.source, a.updated_at, s.updated_at
FROM {_ARCHIVE} a JOIN {_STAGING} s ON a.id = s.id
WHERE s.version = a.version + 1 AND a.source = 'import'
"""

_UPSERT_SQL = f"""
INSERT INTO {_ARCHIVE} (id, owner_id, ciphertext, nonce, wrapped_key, kek_id, version, national_id_bidx,
    phone_bidx, content_mac, consent_share_with_120, consent_changed_at, verified_at, source, created_at, updated_at)
SELECT id, NULL, ciphertext, nonce, wrapped_key, kek_id, version, national_id_bidx,
    phone_bidx, content_mac, consent, updated_at, verified_at, 'import', updated_at, updated_at
FROM {_STAGING} WHERE true
ON CONFLICT (national_id_bidx) DO UPDATE SET
    ciphertext = excluded.ciphertext, nonce = excluded.nonce, wrapped_key = excluded.wrapped_key,
    kek_id = excluded.kek_id, version = excluded.version, phone_bidx = excluded.phone_bidx,
    content_mac = excluded.content_mac, consent_share_with_120 = excluded.consent_share_with_120,
    consent_changed_at = CASE WHEN {_ARCHIVE}.consent_share_with_120 = excluded.consent_share_with_120
        THEN {_ARCHIVE}.consent_changed_at ELSE excluded.updated_at END,
    verified_at = excluded.verified_at, updated_at = excluded.updated_at
WHERE {_ARCHIVE}.id = excluded.id AND {_ARCHIVE}.version = excluded.version - 1 AND {_ARCHIVE}.source = 'import'
"""


class _Batch:
    """Stage, classify and write one batch, in one transaction."""

    def __init__(self, stats: ImportStats, report: Callable[[int, list[str]], None], now: datetime):
        self.stats, self.report, self.now = stats, report, now

    def bad(self, line: int, messages: list[str]) -> None:
        self.stats.bad += 1
        if len(self.stats.bad_lines) < 10000:
            self.stats.bad_lines.append(line)
        self.report(line, messages)

    def run(self, prepared: list) -> None:
        rows: dict[bytes, tuple] = {}
        phones: dict[bytes, bytes] = {}
        for result in prepared:
            if len(result) == 2:
                self.bad(*result)
                continue
            nid, phone = result[NID], result[PHONE]
            if nid in rows:
                self.stats.superseded_in_file += 1  # the later line for the same person wins
                previous = rows.pop(nid)
                if previous[PHONE] is not None and phones.get(previous[PHONE]) == nid:
                    del phones[previous[PHONE]]
            if phone is not None and phones.setdefault(phone, nid) != nid:
                self.bad(result[LINE], ["phone: This phone number is already on another person's archive."])
                continue
            rows[nid] = result
        if not rows:
            return
        try:
            with transaction.atomic():
                outcome = self._apply(list(rows.values()))
        except IntegrityError:
            # A concurrent writer took a national ID or phone: find the rows at fault one by one.
            for row in rows.values():
                try:
                    with transaction.atomic():
                        single = self._apply([row])
                except IntegrityError:
                    self.bad(row[LINE], ["national_id or phone: conflicts with another archive written meanwhile"])
                else:
                    self._merge(single)
        else:
            self._merge(outcome)

    def _merge(self, outcome: dict) -> None:
        for name in ("inserted", "updated", "unchanged", "kept_citizen", "skipped_concurrent"):
            setattr(self.stats, name, getattr(self.stats, name) + outcome[name])
        for line, messages in outcome["bad"]:
            self.bad(line, messages)

    def _apply(self, rows: list[tuple]) -> dict:
        """Stage, insert the new, classify the rest, update the changed. Returns the counts
        (merged into the totals only once the transaction commits)."""
        outcome = {"inserted": 0, "updated": 0, "unchanged": 0, "kept_citizen": 0, "skipped_concurrent": 0, "bad": []}
        by_nid = {row[NID]: row for row in rows}
        with connection.cursor() as cursor:
            _ensure_staging(cursor)
            _stage(cursor, rows)
            # Fast path: every archive not seen before goes in with one statement. Anything that
            # hits a unique index (national ID or phone already there) is left for the slow path.
            cursor.execute(_INSERT_NEW_SQL)
            inserted = {bytes(nid) for (nid,) in cursor.fetchall()}
            outcome["inserted"] = len(inserted)
            if len(inserted) == len(rows):
                return outcome
            cursor.execute(_MATCH_SQL + (" FOR UPDATE OF a" if _pg() else ""))
            matches = {bytes(nid): rest for nid, *rest in cursor.fetchall()}
            restage: list[tuple] = []
            for nid, row in by_nid.items():
                if nid in inserted:
                    continue
                found = matches.get(nid)
                if found is None:  # not there by national ID, so its phone is someone else's
                    outcome["bad"].append((row[LINE], ["phone: This phone number is already on another person's archive."]))
                    continue
                archive_id, mac, version, source, consent = found
                if source != Source.IMPORT:
                    outcome["kept_citizen"] += 1
                elif bytes(mac) == row[MAC] and bool(consent) == row[CONSENT]:
                    outcome["unchanged"] += 1
                else:
                    archive_id = archive_id if isinstance(archive_id, uuid.UUID) else uuid.UUID(str(archive_id))
                    sealed = crypto.seal(row[PLAINTEXT], archive_id=archive_id, version=version + 1)
                    restage.append((archive_id if _pg() else archive_id.hex, version + 1, sealed.ciphertext,
                                    sealed.nonce, sealed.wrapped_key, sealed.kek_id, nid))
            if restage:
                cursor.executemany(_RESTAGE_SQL, restage)
                changed = {r[-1] for r in restage}
                _keep_only(cursor, [nid for nid in by_nid if nid not in changed], len(rows))
                cursor.execute(_KEEP_VERSIONS_SQL)
                cursor.execute(_UPSERT_SQL)
                outcome["updated"] = cursor.rowcount
                outcome["skipped_concurrent"] = len(restage) - cursor.rowcount
            if not _pg():
                cursor.execute(f"DELETE FROM {_STAGING}")
        return outcome


def _keep_only(cursor, drop: list[bytes], total: int) -> None:
    """Remove the rows that need no update from the staging table."""
    if not drop:
        return
    if _pg():
        cursor.execute(f"DELETE FROM {_STAGING} WHERE national_id_bidx = ANY(%s)", [drop])
    else:
        cursor.executemany(f"DELETE FROM {_STAGING} WHERE national_id_bidx = %s", [(n,) for n in drop])


def import_lines(
    lines: Iterable[bytes],
    *,
    batch_size: int = 2000,
    workers: int = 0,
    progress: Callable[[int], None] | None = None,
    report: Callable[[int, list[str]], None] | None = None,
) -> ImportStats:
    """Import JSON lines (bytes). ``report(line_no, messages)`` is called for every bad row."""
    stats = ImportStats()
    now = timezone.now()
    batch = _Batch(stats, report or (lambda line, messages: None), now)
    for count, prepared in _prepared_batches(lines, batch_size=batch_size, workers=workers, now=now, binary=_pg()):
        batch.run(prepared)
        stats.lines += count
        if progress:
            progress(count)
    return stats


def import_file(path, **options) -> ImportStats:
    with open(path, "rb") as handle:
        return import_lines(handle, **options)


def count_lines(path) -> int:
    total = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            total += chunk.count(b"\n")
    if os.path.getsize(path) and not _ends_with_newline(path):
        total += 1
    return total


def _ends_with_newline(path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"
