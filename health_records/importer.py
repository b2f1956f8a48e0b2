"""Bulk import of archives from the city health platform (JSON Lines), any size, idempotent.

Each line is one archive in the API's shape (``validation.validate_archive``) plus an optional
``verified_at`` (ISO 8601 with a zone). ``national_id`` is required: it is the upsert key.

Pipeline, per batch of lines, one transaction per batch:
1. parse, validate, encrypt (fresh data key per archive), compute blind indexes and the content
   MAC - in worker processes (``workers``, one per core by default) while this process writes the
   batches before; on PostgreSQL the workers also encode each archive as a binary COPY row. Bad
   rows are reported with their line number and skipped, the import goes on;
2. insert the batch as new archives (PostgreSQL ``COPY`` straight into the archive table, elsewhere
   ``bulk_create``). While batches keep going in whole (a first import), that is all: no look-ups;
3. when a national ID or phone of the batch is there already (a unique index refuses the insert,
   which is rolled back), look the batch up by blind index instead: the new go in as in 2; an
   archive whose content MAC and consent are unchanged is left as it is, which makes a re-run a
   no-op; a phone already on another person's archive is a bad row; archives a citizen edited
   themselves are left alone; the changed are locked, re-sealed for their existing id and next
   version, their previous version kept in ArchiveVersion, and updated. Later batches are looked up
   first until one turns out all new again.
A concurrent writer that takes a national ID or phone between the look-up and the insert makes the
batch fail on a unique index; it is then retried row by row, so only the rows at fault are reported.

Only VERIFIED identifiers take part: ``national_id_bidx`` / ``phone_bidx`` are set by imports (and
kept when an imported archive is linked to its owner). What a citizen types into their own archive
is a claim (``claimed_*_bidx``, not unique) that this pipeline never reads, so nobody can block or
pre-empt a person's import by typing their national ID or phone first.

Ownership: imported archives have no owner. They are linked to a citizen account by
``services.archive_link_owner`` from a verified flow, never by matching an unverified phone.

Keys: the worker processes are forked after this process has loaded the keyring, so they inherit
the keys in memory; nothing secret goes through a pipe, argv or the environment.
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

from health_records import blind_index, crypto, keys
from health_records.models import Archive, ArchiveVersion, Source
from health_records.validation import flatten_errors, parse_timestamp, validate_archive

PHONE_TAKEN = "phone: This phone number is already on another person's archive."
_LOOKUP_CHUNK = 1000  # identifiers per IN (...) list: well inside every backend's parameter limit


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

# PostgreSQL's binary COPY format: a header, per row a field count and length-prefixed fields, a trailer.
COPY_COLUMNS = (
    "id", "ciphertext", "nonce", "wrapped_key", "kek_id", "version", "national_id_bidx", "phone_bidx",
    "content_mac", "consent_share_with_120", "verified_at", "consent_changed_at", "source", "created_at", "updated_at",
)
_COPY_SQL = f"COPY {Archive._meta.db_table} ({', '.join(COPY_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
_COPY_TRAILER = struct.pack("!h", -1)
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=dt_timezone.utc)
_FIELD_COUNT = struct.pack("!h", len(COPY_COLUMNS))
_NULL = struct.pack("!i", -1)
_pack_len = struct.Struct("!i").pack
_pack_timestamp = struct.Struct("!iq").pack
_VERSION_1 = struct.pack("!ii", 4, 1)
_TRUE, _FALSE = _pack_len(1) + b"\x01", _pack_len(1) + b"\x00"


def _timestamp(value: datetime) -> bytes:
    delta = value - _PG_EPOCH
    return _pack_timestamp(8, (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds)


def _bytea(value: bytes | None) -> bytes:
    return _NULL if value is None else _pack_len(len(value)) + value


def _copy_tail(now: datetime) -> bytes:
    """The last four fields, the same for every new archive of one import: consent_changed_at,
    source, created_at, updated_at."""
    stamp = _timestamp(now)
    return stamp + _bytea(Source.IMPORT.value.encode()) + stamp + stamp


def copy_row(*, archive_id: uuid.UUID, sealed: crypto.Sealed, nid: bytes, phone: bytes | None, mac: bytes,
             consent: bool, verified_at: datetime, tail: bytes) -> bytes:
    """One new archive (version 1) as a binary COPY row of COPY_COLUMNS."""
    return b"".join((
        _FIELD_COUNT, _pack_len(16), archive_id.bytes, _bytea(sealed.ciphertext), _bytea(sealed.nonce),
        _bytea(sealed.wrapped_key), _bytea(sealed.kek_id.encode()), _VERSION_1, _bytea(nid), _bytea(phone),
        _bytea(mac), _TRUE if consent else _FALSE, _timestamp(verified_at), tail,
    ))


# A good line travels from a worker as a plain tuple (cheap to pickle): these are its fields.
# ``NEW`` is what inserting it as a new archive takes: its binary COPY row (PostgreSQL) or
# (archive id, Sealed) for bulk_create.
LINE, NID, PHONE, MAC, CONSENT, PLAINTEXT, VERIFIED_AT, NEW = range(8)


def prepare_line(line_no: int, raw: bytes, *, now: datetime, copy_tail: bytes | None) -> tuple:
    """One line -> a sealed archive (an 8-tuple, see LINE..NEW), or (line number, error messages)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return line_no, ["not valid JSON"]
    clean, errors = validate_archive(data, extra=("verified_at",))
    if errors:
        return line_no, flatten_errors(errors)
    if not clean["national_id"]:
        return line_no, ["national_id: This field is required for an import (it is the upsert key)."]
    verified_at = now
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
    if copy_tail is None:
        new = (archive_id, sealed)
    else:
        new = copy_row(archive_id=archive_id, sealed=sealed, nid=nid, phone=phone, mac=mac, consent=consent,
                       verified_at=verified_at, tail=copy_tail)
    return (line_no, nid, phone, mac, consent, plaintext, verified_at, new)


def _prepare_chunk(chunk: tuple[int, list[bytes]], now: datetime, copy_tail: bytes | None) -> list:
    start, lines = chunk
    return [prepare_line(start + offset, raw, now=now, copy_tail=copy_tail)
            for offset, raw in enumerate(lines) if raw.strip()]


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


def _prepared_batches(lines: Iterable[bytes], *, batch_size: int, workers: int, now: datetime, copy_tail: bytes | None):
    """(lines in the chunk, results) in file order; at most 2 x workers chunks in flight, so the
    workers prepare the next batches while this process writes one."""
    chunks = _chunks(lines, batch_size)
    if connection.in_atomic_block:
        workers = 0  # forking means closing this connection, which would end the caller's transaction
    if workers <= 0:
        for chunk in chunks:
            yield len(chunk[1]), _prepare_chunk(chunk, now, copy_tail)
        return
    # Loaded here, the keys are in the children's memory from the fork: none of them reads them again.
    keys.keyring()
    blind_index.national_id_index("0")  # loads the blind-index key
    connections.close_all()  # never share a database socket with forked children
    context = multiprocessing.get_context("fork")
    with context.Pool(workers) as pool:
        pending: deque = deque()
        for chunk in chunks:
            pending.append((len(chunk[1]), pool.apply_async(_prepare_chunk, (chunk, now, copy_tail))))
            if len(pending) >= 2 * workers:
                count, result = pending.popleft()
                yield count, result.get()
        while pending:
            count, result = pending.popleft()
            yield count, result.get()


# --- steps 2 and 3: the database ----------------------------------------------------------------


def _in_chunks(values: list) -> Iterator[list]:
    for start in range(0, len(values), _LOOKUP_CHUNK):
        yield values[start:start + _LOOKUP_CHUNK]


def _existing(nids: list[bytes]) -> dict[bytes, tuple]:
    """national_id_bidx -> (id, content_mac, source, consent) of the archives already there."""
    found: dict[bytes, tuple] = {}
    for part in _in_chunks(nids):
        for nid, *rest in Archive.objects.filter(national_id_bidx__in=part).values_list(
            "national_id_bidx", "id", "content_mac", "source", "consent_share_with_120"
        ):
            found[bytes(nid)] = tuple(rest)
    return found


def _phone_holders(phones: list[bytes]) -> dict[bytes, bytes | None]:
    """phone_bidx -> national_id_bidx of the archive that has the phone."""
    held: dict[bytes, bytes | None] = {}
    for part in _in_chunks(phones):
        for phone, nid in Archive.objects.filter(phone_bidx__in=part).values_list("phone_bidx", "national_id_bidx"):
            held[bytes(phone)] = None if nid is None else bytes(nid)
    return held


_UPDATED_FIELDS = (
    "ciphertext", "nonce", "wrapped_key", "kek_id", "version", "phone_bidx", "content_mac",
    "consent_share_with_120", "consent_changed_at", "verified_at", "updated_at",
)


class _Batch:
    """Classify and write one batch, in one transaction."""

    def __init__(self, stats: ImportStats, report: Callable[[int, list[str]], None], now: datetime, use_copy: bool):
        self.stats, self.report, self.now, self.use_copy = stats, report, now, use_copy
        # Insert the whole batch before looking anything up, while batches keep turning out all
        # new (a first import): the lookups would cost more than the insert itself.
        self.optimistic = True

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
                self.bad(result[LINE], [PHONE_TAKEN])
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
        """Insert the new, update the changed. Returns the counts (merged into the totals only
        once the transaction commits)."""
        outcome = {"inserted": 0, "updated": 0, "unchanged": 0, "kept_citizen": 0, "skipped_concurrent": 0, "bad": []}
        if self.optimistic and self._insert_all(rows):
            outcome["inserted"] = len(rows)
            return outcome
        new, changed = self._classify(rows, outcome)
        self.optimistic = len(new) == len(rows)
        if new:
            self._insert(new)
            outcome["inserted"] = len(new)
        if changed:
            self._update(changed, outcome)
        return outcome

    def _insert_all(self, rows: list[tuple]) -> bool:
        """Insert every row as a new archive, or nothing (False) if one is there already."""
        try:
            with transaction.atomic():
                self._insert(rows)
        except IntegrityError:
            return False
        return True

    def _classify(self, rows: list[tuple], outcome: dict) -> tuple[list[tuple], dict[uuid.UUID, tuple]]:
        """(new rows, changed rows by archive id); counts the unchanged, the kept and the bad."""
        existing = _existing([row[NID] for row in rows])
        new: list[tuple] = []
        changed: dict[uuid.UUID, tuple] = {}
        for row in rows:
            found = existing.get(row[NID])
            if found is None:
                new.append(row)
                continue
            archive_id, mac, source, consent = found
            if source != Source.IMPORT:
                outcome["kept_citizen"] += 1
            elif bytes(mac) == row[MAC] and consent == row[CONSENT]:
                outcome["unchanged"] += 1
            else:
                changed[archive_id] = row
        # Only a row that is written can take a phone: the unchanged and the kept need no look-up.
        holders = _phone_holders([row[PHONE] for row in (*new, *changed.values()) if row[PHONE] is not None])

        def taken(row: tuple) -> bool:
            if row[PHONE] in holders and holders[row[PHONE]] != row[NID]:
                outcome["bad"].append((row[LINE], [PHONE_TAKEN]))
                return True
            return False

        return [row for row in new if not taken(row)], {key: row for key, row in changed.items() if not taken(row)}

    def _insert(self, rows: list[tuple]) -> None:
        if self.use_copy:
            # COPY takes the rows the workers encoded, several times faster than an INSERT;
            # a unique index it hits raises IntegrityError like an INSERT would.
            with connection.cursor() as cursor, connection.wrap_database_errors:
                with cursor.cursor.copy(_COPY_SQL) as copy:
                    copy.write(b"".join([_COPY_HEADER, *(row[NEW] for row in rows), _COPY_TRAILER]))
            return
        now = self.now
        Archive.objects.bulk_create([
            Archive(
                id=archive_id, owner=None, ciphertext=sealed.ciphertext, nonce=sealed.nonce,
                wrapped_key=sealed.wrapped_key, kek_id=sealed.kek_id, version=1, national_id_bidx=row[NID],
                phone_bidx=row[PHONE], content_mac=row[MAC], consent_share_with_120=row[CONSENT],
                consent_changed_at=now, verified_at=row[VERIFIED_AT], source=Source.IMPORT, created_at=now,
                updated_at=now,
            )
            for row in rows
            for archive_id, sealed in (row[NEW],)
        ])

    def _update(self, changed: dict[uuid.UUID, tuple], outcome: dict) -> None:
        """Lock the changed archives, then re-check, re-seal and update them: what was read
        unlocked may have changed since, what is read locked cannot until this transaction ends."""
        now = self.now
        versions: list[ArchiveVersion] = []
        updates: list[Archive] = []
        locked = Archive.objects.select_for_update().filter(pk__in=list(changed)).values_list(
            "id", "version", "source", "content_mac", "consent_share_with_120", "consent_changed_at",
            "ciphertext", "nonce", "wrapped_key", "kek_id", "updated_at",
        )
        seen = 0
        for archive_id, version, source, mac, consent, consent_changed_at, *sealed, written_at in locked:
            seen += 1
            row = changed[archive_id]
            if source != Source.IMPORT:
                outcome["kept_citizen"] += 1
                continue
            if bytes(mac) == row[MAC] and consent == row[CONSENT]:
                outcome["unchanged"] += 1
                continue
            ciphertext, nonce, wrapped_key, kek_id = sealed
            versions.append(ArchiveVersion(
                archive_id=archive_id, version=version, ciphertext=ciphertext, nonce=nonce, wrapped_key=wrapped_key,
                kek_id=kek_id, source=source, written_at=written_at, superseded_at=now,
            ))
            fresh = crypto.seal(row[PLAINTEXT], archive_id=archive_id, version=version + 1)
            updates.append(Archive(
                id=archive_id, ciphertext=fresh.ciphertext, nonce=fresh.nonce, wrapped_key=fresh.wrapped_key,
                kek_id=fresh.kek_id, version=version + 1, phone_bidx=row[PHONE], content_mac=row[MAC],
                consent_share_with_120=row[CONSENT], consent_changed_at=consent_changed_at if consent == row[CONSENT] else now,
                verified_at=row[VERIFIED_AT], updated_at=now,
            ))
        outcome["skipped_concurrent"] += len(changed) - seen  # deleted since the lookup
        ArchiveVersion.objects.bulk_create(versions)
        # A small batch_size: bulk_update's CASE WHEN grows with the square of the rows per statement.
        Archive.objects.bulk_update(updates, _UPDATED_FIELDS, batch_size=100)
        outcome["updated"] += len(updates)


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
    # The one difference between the databases: PostgreSQL loads new archives with COPY.
    use_copy = connection.vendor == "postgresql"
    batch = _Batch(stats, report or (lambda line, messages: None), now, use_copy)
    copy_tail = _copy_tail(now) if use_copy else None
    for count, prepared in _prepared_batches(lines, batch_size=batch_size, workers=workers, now=now, copy_tail=copy_tail):
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
