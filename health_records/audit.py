"""The tamper-evident access log: every read of an archive by someone other than its owner.

Each entry holds who read (id, username, role), for which case and purpose, when, which archive,
and whether it was a break-glass override; never what was read. ``hash`` is SHA-256 over the
canonical form of the entry (length-prefixed fields) ending with ``prev_hash``, the previous entry's hash, so editing an
entry, deleting one, or cutting the tail is detectable (``manage.py verify_access_log``).

Appends take the chain-head row's lock (``AccessLogHead``, one row), so writers are serialized and
the chain is linear whatever the number of workers. On PostgreSQL an append is a single statement
(one round trip) that also re-checks the reader's grant. Entries are kept
at least 183 days: ``prune_access_log`` refuses anything younger and moves the verification
anchor past what it removes.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone

from django.db import connection, transaction
from django.utils import timezone

from health_records.models import ACCESS_LOG_RETENTION, GENESIS_HASH, AccessGrant, AccessLogEntry, AccessLogHead

__all__ = [
    "AccessLogEntry",
    "AccessLogHead",
    "append_entry",
    "entry_hash",
    "verify_chain",
    "prune_access_log",
]

_HEAD = AccessLogHead._meta.db_table
_ENTRY = AccessLogEntry._meta.db_table


def _at_text(at: datetime) -> str:
    return at.astimezone(dt_timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _lp(value: str) -> str:
    """Length-prefixed field: unambiguous whatever the value holds, and easy to build in SQL."""
    return f"{len(value.encode())}:{value};"


def _middle(*, at: datetime, reader_id, reader_username, role, case_ref, purpose, archive_id, patient_id, override) -> str:
    return "".join(
        _lp(part)
        for part in (
            _at_text(at), str(int(reader_id)), reader_username, role, case_ref, purpose,
            str(uuid.UUID(str(archive_id))), str(int(patient_id)), "1" if override else "0",
        )
    )


def entry_hash(
    *, seq: int, at: datetime, reader_id: int, reader_username: str, role: str, case_ref: str, purpose: str,
    archive_id, patient_id: int, override: bool, prev_hash: str,
) -> str:
    """SHA-256 (hex) over "v1;" + the length-prefixed fields in a fixed order, prev_hash last."""
    middle = _middle(at=at, reader_id=reader_id, reader_username=reader_username, role=role, case_ref=case_ref,
                     purpose=purpose, archive_id=archive_id, patient_id=patient_id, override=override)
    canonical = "v1;" + _lp(str(int(seq))) + middle + _lp(prev_hash)
    return hashlib.sha256(canonical.encode()).hexdigest()


_GRANT = AccessGrant._meta.db_table

# PostgreSQL: one statement, so one round trip and its own transaction when none is open. It
# re-checks the grant, locks the chain head, computes the entry's hash in SQL (the same bytes as
# entry_hash), advances the head and inserts the entry - or does nothing if the grant is gone.
_APPEND_PG = f"""
WITH g AS (
    SELECT 1 FROM {_GRANT} WHERE id = %(grant_id)s AND closed_at IS NULL AND expires_at > %(at)s
), old AS (
    SELECT last_seq, last_hash FROM {_HEAD} WHERE id = 1 AND EXISTS (SELECT 1 FROM g) FOR UPDATE
), new AS (
    UPDATE {_HEAD} SET last_seq = old.last_seq + 1,
        last_hash = encode(sha256(convert_to(
            'v1;' || octet_length((old.last_seq + 1)::text) || ':' || (old.last_seq + 1)::text || ';'
            || %(middle)s || octet_length(old.last_hash) || ':' || old.last_hash || ';', 'UTF8')), 'hex')
    FROM old WHERE {_HEAD}.id = 1
    RETURNING {_HEAD}.last_seq AS seq, {_HEAD}.last_hash AS hash, old.last_hash AS prev_hash
)
INSERT INTO {_ENTRY} (seq, at, reader_id, reader_username, role, case_ref, purpose, archive_id, patient_id,
    override, prev_hash, hash)
SELECT new.seq, %(at)s, %(reader_id)s, %(reader_username)s, %(role)s, %(case_ref)s, %(purpose)s, %(archive_id)s,
    %(patient_id)s, %(override)s, new.prev_hash, new.hash
FROM new
RETURNING seq, hash
"""


def _ensure_head(cursor) -> None:
    cursor.execute(
        f"INSERT INTO {_HEAD} (id, last_seq, last_hash, anchor_seq, anchor_hash) VALUES (1, 0, %s, 0, %s) "
        "ON CONFLICT (id) DO NOTHING",
        [GENESIS_HASH, GENESIS_HASH],
    )


def append_entry(
    *, reader, role: str, case_ref: str, purpose: str, archive_id, patient_id: int, override: bool,
    grant_id: int | None = None,
) -> tuple[int, str] | None:
    """Append one entry to the chain; returns (seq, hash).

    With ``grant_id``, the entry is written only if that grant is still open at the moment of
    the append (else nothing is written and None is returned): a read is delivered only when its
    entry is in the log. Safe with or without an open transaction, and under concurrent writers
    (the chain head row is locked).
    """
    at = timezone.now()
    fields = {
        "at": at, "reader_id": reader.pk, "reader_username": reader.get_username(), "role": role,
        "case_ref": case_ref, "purpose": purpose, "archive_id": uuid.UUID(str(archive_id)),
        "patient_id": patient_id, "override": override,
    }
    if connection.vendor == "postgresql":
        params = dict(fields, grant_id=grant_id, middle=_middle(**fields))
        sql = _APPEND_PG
        if grant_id is None:
            sql = sql.replace("AND EXISTS (SELECT 1 FROM g)", "")
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
            if row is None:
                # No head row yet (a fresh or flushed database), or the grant is gone: make sure
                # the head exists and try once more; still nothing means the grant is gone.
                _ensure_head(cursor)
                cursor.execute(sql, params)
                row = cursor.fetchone()
        return (int(row[0]), row[1]) if row else None
    with transaction.atomic(), connection.cursor() as cursor:
        if grant_id is not None and not _grant_open(cursor, grant_id, at):
            return None
        sql = f"UPDATE {_HEAD} SET last_seq = last_seq + 1 WHERE id = 1 RETURNING last_seq, last_hash"
        cursor.execute(sql)
        row = cursor.fetchone()
        if row is None:
            _ensure_head(cursor)
            cursor.execute(sql)
            row = cursor.fetchone()
        seq, prev_hash = int(row[0]), row[1]
        digest = entry_hash(seq=seq, prev_hash=prev_hash, **fields)
        AccessLogEntry(seq=seq, prev_hash=prev_hash, hash=digest, **fields).save(force_insert=True)
        cursor.execute(f"UPDATE {_HEAD} SET last_hash = %s WHERE id = 1", [digest])
    return seq, digest


def _grant_open(cursor, grant_id: int, at: datetime) -> bool:
    return AccessGrant.objects.filter(pk=grant_id, closed_at__isnull=True, expires_at__gt=at).exists()


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    last_seq: int
    broken_seq: int | None = None
    broken_id: int | None = None
    reason: str = ""

    def describe(self) -> str:
        if self.ok:
            return f"access log intact: {self.checked} entries checked, chain head at #{self.last_seq}"
        where = f"entry #{self.broken_seq}" + (f" (row id {self.broken_id})" if self.broken_id else "")
        return f"access log BROKEN at {where}: {self.reason}"


def verify_chain(*, chunk_size: int = 5000) -> VerifyResult:
    """Walk the chain from the anchor; name the first entry that does not follow."""
    head = AccessLogHead.objects.filter(pk=1).first()
    anchor_seq = head.anchor_seq if head else 0
    prev_hash = head.anchor_hash if head else GENESIS_HASH
    expected = anchor_seq + 1
    checked = 0
    columns = (
        "id", "seq", "at", "reader_id", "reader_username", "role", "case_ref", "purpose", "archive_id",
        "patient_id", "override", "prev_hash", "hash",
    )
    rows = AccessLogEntry.objects.filter(seq__gt=anchor_seq).order_by("seq").values_list(*columns)
    for row in rows.iterator(chunk_size=chunk_size):
        entry = dict(zip(columns, row))
        if entry["seq"] != expected:
            return VerifyResult(
                False, checked, expected - 1, entry["seq"], entry["id"],
                f"entries #{expected}..#{entry['seq'] - 1} are missing (deleted)",
            )
        if entry["prev_hash"] != prev_hash:
            return VerifyResult(
                False, checked, expected - 1, entry["seq"], entry["id"],
                "its prev_hash does not match the hash of the entry before it",
            )
        stored = entry.pop("hash")
        entry_id = entry.pop("id")
        if entry_hash(**entry) != stored:
            return VerifyResult(False, checked, expected - 1, entry["seq"], entry_id, "its contents do not match its hash (edited)")
        prev_hash = stored
        expected += 1
        checked += 1
    last = expected - 1
    if head is None:
        if checked:
            return VerifyResult(False, checked, last, None, None, "the chain head row is missing")
        return VerifyResult(True, 0, 0)
    if head.last_seq != last or head.last_hash != prev_hash:
        return VerifyResult(
            False, checked, last, last + 1, None,
            f"the chain ends at #{last} but its head says #{head.last_seq}: entries were deleted from the end",
        )
    return VerifyResult(True, checked, last)


def prune_access_log(*, before: datetime) -> int:
    """Delete entries older than ``before`` (at least 183 days ago) and move the anchor past them."""
    if before > timezone.now() - ACCESS_LOG_RETENTION:
        raise ValueError("access log entries are kept at least 183 days; choose an older cut-off")
    with transaction.atomic():
        head = AccessLogHead.objects.select_for_update().filter(pk=1).first()
        if head is None:
            return 0
        last = AccessLogEntry.objects.filter(at__lt=before, seq__gt=head.anchor_seq).order_by("-seq").first()
        if last is None:
            return 0
        deleted, _ = AccessLogEntry.objects.filter(seq__lte=last.seq).delete()
        head.anchor_seq, head.anchor_hash = last.seq, last.hash
        head.save(update_fields=["anchor_seq", "anchor_hash"])
        return deleted
