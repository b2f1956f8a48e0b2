"""The tamper-evident access log: every read of an archive by someone other than its owner.

Each entry holds who read (id, username, role), for which case and purpose, when, which archive,
and whether it was a break-glass override; never what was read. ``hash`` is HMAC-SHA256, keyed with
``ACCESS_LOG_HMAC_KEY``, over the canonical form of the entry ("v2;" + length-prefixed fields)
ending with ``prev_hash``, the previous entry's hash. Someone who can write to the database but
does not hold the key can neither edit an entry nor recompute the chain after an edit.

The chain alone cannot show that its newest entries were dropped (delete them and move the head
back: what is left is a perfectly valid chain). So the chain is also anchored outside the
database: signed checkpoints ``(seq, hash, at)``, one small Ed25519-signed file each, in
``ACCESS_LOG_CHECKPOINT_DIR`` - an append-only directory the database user cannot rewrite.
``manage.py checkpoint_access_log`` writes one (cron, every minute), and the append that lands on
a multiple of ``ACCESS_LOG_CHECKPOINT_EVERY`` writes one after its commit. ``manage.py
verify_access_log`` checks the HMAC chain, every checkpoint's signature, that every checkpoint's
(seq, hash) is in the chain, and that the chain reaches the newest checkpoint.

Appends take the chain-head row's lock (``AccessLogHead``, one row), so writers are serialized and
the chain is linear whatever the number of workers. On PostgreSQL an append is a single prepared
statement (one round trip) that also re-checks and locks the reader's grant, marks the read as
logged on it (so that the same read is logged once) and computes the HMAC in SQL. Entries are
kept at least 183 days: ``prune_access_log`` refuses anything younger and moves the verification
anchor past what it removes (checkpoints older than the anchor stay valid).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import logging
import os
import re
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone as dt_timezone
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from health_records import keys
from health_records.prepared import prepared_cursor
from health_records.models import ACCESS_LOG_RETENTION, GENESIS_HASH, AccessGrant, AccessLogEntry, AccessLogHead

logger = logging.getLogger(__name__)

__all__ = [
    "AccessLogEntry",
    "AccessLogHead",
    "append_entry",
    "entry_hash",
    "verify_chain",
    "write_checkpoint",
    "checkpoint_now",
    "CannotVerify",
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
            str(archive_id if isinstance(archive_id, uuid.UUID) else uuid.UUID(str(archive_id))), str(int(patient_id)),
            "1" if override else "0",
        )
    )


def entry_hash(
    *, seq: int, at: datetime, reader_id: int, reader_username: str, role: str, case_ref: str, purpose: str,
    archive_id, patient_id: int, override: bool, prev_hash: str, key: bytes | None = None,
) -> str:
    """HMAC-SHA256 (hex) over "v2;" + the length-prefixed fields in a fixed order, prev_hash last.

    ``key`` defaults to ACCESS_LOG_HMAC_KEY.
    """
    middle = _middle(at=at, reader_id=reader_id, reader_username=reader_username, role=role, case_ref=case_ref,
                     purpose=purpose, archive_id=archive_id, patient_id=patient_id, override=override)
    canonical = "v2;" + _lp(str(int(seq))) + middle + _lp(prev_hash)
    key = keys.access_log_hmac_key() if key is None else key
    return hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()


@functools.lru_cache(maxsize=4)
def _hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC's two padded keys (RFC 2104): HMAC(K, m) = H((K ^ opad) || H((K ^ ipad) || m)).

    PostgreSQL has no hmac() without pgcrypto, but sha256(bytea) is built in: with these two
    values as parameters it computes the same HMAC in plain SQL."""
    block = 64  # SHA-256's block size; our keys are 32 bytes, so never hashed down first
    padded = key.ljust(block, b"\0")
    return bytes(b ^ 0x36 for b in padded), bytes(b ^ 0x5C for b in padded)


_GRANT = AccessGrant._meta.db_table
_USER = AccessGrant._meta.get_field("grantee").related_model._meta.db_table

# PostgreSQL: one statement, so one round trip and its own transaction when none is open. It
# locks the reader's grant if it still allows the read (open, unexpired, active reader and, for a
# read to be logged once, not already carrying this read's key), then locks the chain head,
# computes the entry's HMAC in SQL (the same bytes as entry_hash), advances the head, inserts the
# entry and marks the read on the grant - or does nothing at all.
#
# Locks are taken grant first, head second, everywhere. A concurrent append for the same read
# waits on the grant's lock; PostgreSQL then re-checks the grant's conditions against the row as
# the first writer committed it, finds the key there and writes nothing: one entry, never two.
# The grant is marked last, and only if the entry was inserted: a missing head row (a fresh or
# flushed database) must not leave a read marked as logged with no entry behind it.
# The last column says whether the grant allowed the append (always true without a grant).
_GRANT_CHECK = f"""g AS (
    SELECT gr.id FROM {_GRANT} gr
    WHERE gr.id = %(grant_id)s AND gr.closed_at IS NULL AND gr.expires_at > %(at)s{{read_key_check}}
        AND EXISTS (SELECT 1 FROM {_USER} u WHERE u.id = gr.grantee_id AND u.is_active)
    FOR NO KEY UPDATE OF gr
), """
_APPEND_PG_TEMPLATE = f"""
WITH {{grant_check}}old AS (
    SELECT last_seq, last_hash FROM {_HEAD} WHERE id = 1{{grant_allows}} FOR UPDATE
), new AS (
    UPDATE {_HEAD} SET last_seq = old.last_seq + 1,
        last_hash = encode(sha256(%(hmac_outer)s::bytea || sha256(%(hmac_inner)s::bytea || convert_to(
            'v2;' || octet_length((old.last_seq + 1)::text) || ':' || (old.last_seq + 1)::text || ';'
            || %(middle)s || octet_length(old.last_hash) || ':' || old.last_hash || ';', 'UTF8'))), 'hex')
    FROM old WHERE {_HEAD}.id = 1
    RETURNING {_HEAD}.last_seq AS seq, {_HEAD}.last_hash AS hash, old.last_hash AS prev_hash
), entry AS (
    INSERT INTO {_ENTRY} (seq, at, reader_id, reader_username, role, case_ref, purpose, archive_id, patient_id,
        override, prev_hash, hash)
    SELECT new.seq, %(at)s, %(reader_id)s, %(reader_username)s, %(role)s, %(case_ref)s, %(purpose)s,
        %(archive_id)s, %(patient_id)s, %(override)s, new.prev_hash, new.hash
    FROM new
    RETURNING seq, hash
){{mark}}
SELECT (SELECT seq FROM entry), (SELECT hash FROM entry), {{allowed}}
"""
_APPEND_PG = _APPEND_PG_TEMPLATE.format(grant_check="", grant_allows="", mark="", allowed="TRUE")
_APPEND_PG_GRANT = _APPEND_PG_TEMPLATE.format(
    grant_check=_GRANT_CHECK.format(read_key_check=""), grant_allows=" AND EXISTS (SELECT 1 FROM g)", mark="",
    allowed="EXISTS (SELECT 1 FROM g)",
)
_APPEND_PG_READ = _APPEND_PG_TEMPLATE.format(
    grant_check=_GRANT_CHECK.format(read_key_check=" AND gr.logged_read <> %(read_key)s"),
    grant_allows=" AND EXISTS (SELECT 1 FROM g)",
    mark=f""", mark AS (
    UPDATE {_GRANT} SET logged_read = %(read_key)s WHERE id = %(grant_id)s AND EXISTS (SELECT 1 FROM entry)
)""",
    allowed="EXISTS (SELECT 1 FROM g)",
)


def _ensure_head() -> None:
    """The chain head's row, made if missing (a fresh or flushed database); a concurrent maker wins."""
    AccessLogHead.objects.bulk_create([AccessLogHead(id=1)], ignore_conflicts=True)


def append_entry(
    *, reader, role: str, case_ref: str, purpose: str, archive_id, patient_id: int, override: bool,
    grant_id: int | None = None, read_key: str | None = None,
) -> tuple[int, str] | None:
    """Append one entry to the chain; returns (seq, hash).

    With ``grant_id``, the entry is written only if that grant is still open and unexpired and its
    reader still active at the moment of the append (else nothing is written and None is
    returned): a read is delivered only when its entry is in the log. With ``read_key`` too, the
    grant is marked with it (``AccessGrant.logged_read``) in the same statement or transaction as
    the entry, and nothing is written (None) if the grant already carries it: the same read is
    logged once, however many workers deliver it at the same moment. The caller tells "already
    logged" from "grant gone" afterwards (selectors.why_read_not_marked).

    Safe with or without an open transaction, and under concurrent writers (the grant's row, then
    the chain head's, are locked). Every ACCESS_LOG_CHECKPOINT_EVERY-th entry is checkpointed once
    its transaction commits.
    """
    if read_key is not None and grant_id is None:
        raise ValueError("read_key marks a grant: give grant_id too")
    at = timezone.now()
    key = keys.access_log_hmac_key()
    fields = {
        "at": at, "reader_id": reader.pk, "reader_username": reader.get_username(), "role": role,
        "case_ref": case_ref, "purpose": purpose,
        "archive_id": archive_id if isinstance(archive_id, uuid.UUID) else uuid.UUID(str(archive_id)),
        "patient_id": patient_id, "override": override,
    }
    if connection.vendor == "postgresql":
        inner, outer = _hmac_pads(key)
        params = dict(fields, grant_id=grant_id, read_key=read_key, middle=_middle(**fields),
                      hmac_inner=inner, hmac_outer=outer)
        sql = _APPEND_PG if grant_id is None else _APPEND_PG_GRANT if read_key is None else _APPEND_PG_READ
        # Prepared: parsing and planning this statement every time cost more than running it.
        with prepared_cursor() as cursor:
            cursor.execute(sql, params)
            seq, digest, allowed = cursor.fetchone()
            if seq is None and allowed:
                # The grant allows it but there is no head row yet (a fresh or flushed database):
                # make one and try once more. Nothing was written or marked by the first try.
                _ensure_head()
                cursor.execute(sql, params)
                seq, digest, allowed = cursor.fetchone()
        if seq is None:
            return None
        seq = int(seq)
    else:
        # Elsewhere (SQLite: no data-modifying CTEs, no sha256), the same steps through the ORM in
        # one transaction. The head is written first, which takes the database's write lock before
        # anything is read from it.
        with transaction.atomic():
            if grant_id is not None and not _grant_allows(grant_id=grant_id, at=at, read_key=read_key):
                return None
            head = AccessLogHead.objects.filter(pk=1)
            if not head.update(last_seq=F("last_seq") + 1):
                _ensure_head()
                head.update(last_seq=F("last_seq") + 1)
            seq, prev_hash = head.values_list("last_seq", "last_hash").get()
            digest = entry_hash(seq=seq, prev_hash=prev_hash, key=key, **fields)
            AccessLogEntry.objects.bulk_create([AccessLogEntry(seq=seq, prev_hash=prev_hash, hash=digest, **fields)])
            head.update(last_hash=digest)
    every = settings.ACCESS_LOG_CHECKPOINT_EVERY
    if every and seq % every == 0:
        # After commit: a checkpoint must never sign an entry that a rollback then removes.
        transaction.on_commit(lambda: _checkpoint_after_append(seq=seq, digest=digest, at=at))
    return seq, digest


def _grant_allows(*, grant_id: int, at: datetime, read_key: str | None) -> bool:
    """SQLite path, inside the append's transaction (SQLite serializes writers on the database)."""
    grants = AccessGrant.objects.filter(
        pk=grant_id, closed_at__isnull=True, expires_at__gt=at, grantee__is_active=True
    )
    if read_key is None:
        return grants.exists()
    # A write statement runs under SQLite's one writer lock and sees every committed mark: of two
    # concurrent appends of the same read, the second matches nothing.
    return grants.exclude(logged_read=read_key).update(logged_read=read_key) == 1


def _checkpoint_after_append(*, seq: int, digest: str, at: datetime) -> None:
    # The read was already logged and committed: a checkpoint that cannot be written must not
    # fail it. It is loud instead, and the next one (or the cron command) covers this entry.
    try:
        write_checkpoint(seq=seq, digest=digest, at=at)
    except (OSError, ImproperlyConfigured, CheckpointConflict) as exc:
        logger.error("access log checkpoint at #%s not written: %s", seq, exc)


# --- signed checkpoints -------------------------------------------------------------------------

CHECKPOINT_FORMAT = "onekey120-access-log-checkpoint/1"
_CHECKPOINT_NAME = re.compile(r"^(\d{15})-([0-9a-f]{16})\.json$")


class CannotVerify(Exception):
    """A key, the checkpoint directory or the signing key is missing: nothing can be concluded."""


class CheckpointConflict(Exception):
    """The directory already holds a checkpoint for this seq with another hash."""


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    at: str  # the checkpointed entry's time (ISO, UTC)
    signed_at: str
    name: str

    @property
    def at_time(self) -> datetime:
        return datetime.strptime(self.at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt_timezone.utc)


def checkpoint_dir() -> Path:
    value = settings.ACCESS_LOG_CHECKPOINT_DIR
    if not value:
        raise ImproperlyConfigured(
            "ACCESS_LOG_CHECKPOINT_DIR must be set when DEBUG is off: signed access-log checkpoints are kept "
            "there, in a directory the database user cannot rewrite"
        )
    return Path(value)


def check_configuration() -> None:
    """Refuse to start (DEBUG off) without the access log's keys, or without a checkpoint directory
    when appends are to write checkpoints."""
    log_keys = keys.access_log_keys()
    if log_keys.hmac_key == keys.keyring().blind_index_key:
        # One key, two jobs: knowing it for one purpose would forge the other.
        raise ImproperlyConfigured("ACCESS_LOG_HMAC_KEY must be its own key, not HEALTH_BLIND_INDEX_KEY")
    if settings.ACCESS_LOG_CHECKPOINT_EVERY:
        checkpoint_dir()


def _signed_bytes(*, seq: int, digest: str, at: str, signed_at: str) -> bytes:
    return f"{CHECKPOINT_FORMAT}\nseq={seq}\nhash={digest}\nat={at}\nsigned_at={signed_at}\n".encode()


def _checkpoint_name(seq: int, digest: str) -> str:
    return f"{seq:015d}-{digest[:16]}.json"


def write_checkpoint(*, seq: int, digest: str, at: datetime) -> Path:
    """Sign (seq, hash, at) into a new file of the checkpoint directory; never overwrites one.

    Idempotent for the same (seq, hash). Raises CheckpointConflict if a checkpoint of this seq
    with another hash is there: the chain was rewritten (or keys mixed up), which verification
    reports."""
    signing_key = keys.access_log_keys().signing_key
    if signing_key is None:
        raise ImproperlyConfigured("ACCESS_LOG_SIGNING_KEY is needed to write checkpoints (only ACCESS_LOG_VERIFY_KEY is set)")
    directory = checkpoint_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / _checkpoint_name(seq, digest)
    if path.exists():
        return path
    for other in directory.glob(f"{seq:015d}-*.json"):
        raise CheckpointConflict(f"{other.name} already signs entry #{seq} with another hash")
    body = {"format": CHECKPOINT_FORMAT, "seq": seq, "hash": digest, "at": _at_text(at),
            "signed_at": _at_text(timezone.now())}
    signature = signing_key.sign(_signed_bytes(seq=seq, digest=digest, at=body["at"], signed_at=body["signed_at"]))
    body["signature"] = base64.b64encode(signature).decode()
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".checkpoint-")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(body, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o444)
        try:
            os.link(tmp, path)  # never replaces: a concurrent writer of the same checkpoint wins
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)
    return path


def _read_checkpoint(path: Path, verify_key) -> Checkpoint:
    """Parse and check one checkpoint file; ValueError says what is wrong with it."""
    match = _CHECKPOINT_NAME.match(path.name)
    if match is None:
        raise ValueError("its name is not <seq>-<hash prefix>.json")
    try:
        body = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ValueError(f"unreadable ({exc.__class__.__name__})") from None
    if not isinstance(body, dict) or body.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"not a {CHECKPOINT_FORMAT} file")
    seq, digest, at, signed_at, signature = (body.get(k) for k in ("seq", "hash", "at", "signed_at", "signature"))
    if not (isinstance(seq, int) and isinstance(digest, str) and isinstance(at, str) and isinstance(signed_at, str)
            and isinstance(signature, str)):
        raise ValueError("a field is missing or of the wrong type")
    try:
        verify_key.verify(
            base64.b64decode(signature, validate=True), _signed_bytes(seq=seq, digest=digest, at=at, signed_at=signed_at)
        )
    except (InvalidSignature, binascii.Error, ValueError):
        raise ValueError("its signature is not valid (forged or altered)") from None
    if int(match.group(1)) != seq or match.group(2) != digest[:16]:
        raise ValueError("its name does not match its signed contents")
    try:
        datetime.strptime(at, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        raise ValueError("its time is malformed") from None
    return Checkpoint(seq=seq, hash=digest, at=at, signed_at=signed_at, name=path.name)


def _checkpoint_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise CannotVerify(f"the checkpoint directory {directory} does not exist (ACCESS_LOG_CHECKPOINT_DIR)")
    # Dot files are a writer's temporary files; every other file is evidence.
    return sorted(path for path in directory.iterdir() if not path.name.startswith("."))


def _keys_or_cannot_verify() -> keys.AccessLogKeys:
    try:
        return keys.access_log_keys()
    except ImproperlyConfigured as exc:
        raise CannotVerify(str(exc)) from None


# --- verification -------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    last_seq: int
    broken_seq: int | None = None
    broken_id: int | None = None
    reason: str = ""
    checkpoints: int = 0
    newest_checkpoint: int | None = None
    checkpoint: str | None = None  # the file that disagrees, when one does
    notes: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        if self.ok:
            text = f"access log intact: {self.checked} entries checked, chain head at #{self.last_seq}"
            if self.newest_checkpoint is not None:
                text += f", {self.checkpoints} signed checkpoints, the newest at #{self.newest_checkpoint}"
            return "\n".join([text, *self.notes])
        if self.checkpoint and self.broken_seq is None:
            return f"access log BROKEN: checkpoint {self.checkpoint}: {self.reason}"
        where = f"entry #{self.broken_seq}" + (f" (row id {self.broken_id})" if self.broken_id else "")
        if self.checkpoint:
            where += f", checkpoint {self.checkpoint}"
        return f"access log BROKEN at {where}: {self.reason}"


_COLUMNS = (
    "id", "seq", "at", "reader_id", "reader_username", "role", "case_ref", "purpose", "archive_id",
    "patient_id", "override", "prev_hash", "hash",
)


@dataclass
class _Walk:
    failure: VerifyResult | None
    checked: int
    last_seq: int
    last_hash: str
    last_at: datetime | None


def _walk(*, start_seq: int, start_hash: str, key: bytes, upto: int | None = None,
          checkpoints: dict[int, list[Checkpoint]] | None = None, chunk_size: int = 5000) -> _Walk:
    """Check the HMAC chain from (start_seq, start_hash); name the first entry that does not follow,
    or the first checkpoint whose (seq, hash) the chain does not hold."""
    checkpoints = checkpoints or {}
    prev_hash, expected, checked, last_at = start_hash, start_seq + 1, 0, None
    rows = AccessLogEntry.objects.filter(seq__gt=start_seq)
    if upto is not None:
        rows = rows.filter(seq__lte=upto)
    for row in rows.order_by("seq").values_list(*_COLUMNS).iterator(chunk_size=chunk_size):
        entry = dict(zip(_COLUMNS, row))

        def broken(reason: str, checkpoint: str | None = None) -> _Walk:
            result = VerifyResult(False, checked, expected - 1, entry["seq"], entry["id"], reason, checkpoint=checkpoint)
            return _Walk(result, checked, expected - 1, prev_hash, last_at)

        if entry["seq"] != expected:
            return broken(f"entries #{expected}..#{entry['seq'] - 1} are missing (deleted)")
        if entry["prev_hash"] != prev_hash:
            return broken("its prev_hash does not match the hash of the entry before it")
        stored = entry["hash"]
        hashed = {name: value for name, value in entry.items() if name not in ("id", "hash")}
        if not hmac.compare_digest(entry_hash(key=key, **hashed), stored):
            return broken("its contents do not match its keyed hash (edited, or rewritten without the key)")
        for checkpoint in checkpoints.get(entry["seq"], ()):
            if checkpoint.hash != stored:
                return broken("a signed checkpoint holds another hash for it: the chain was rewritten", checkpoint.name)
        prev_hash, last_at = stored, entry["at"]
        expected += 1
        checked += 1
    return _Walk(None, checked, expected - 1, prev_hash, last_at)


def verify_chain(*, chunk_size: int = 5000) -> VerifyResult:
    """Verify the whole log: the HMAC chain from the anchor, every checkpoint's signature, that
    every checkpoint's (seq, hash) is in the chain, and that the chain reaches the newest one.

    Raises CannotVerify when a key or the checkpoint directory is missing."""
    log_keys = _keys_or_cannot_verify()
    try:
        directory = checkpoint_dir()
    except ImproperlyConfigured as exc:
        raise CannotVerify(str(exc)) from None
    by_seq: dict[int, list[Checkpoint]] = {}
    for path in _checkpoint_files(directory):
        try:
            checkpoint = _read_checkpoint(path, log_keys.verify_key)
        except ValueError as exc:
            return VerifyResult(False, 0, 0, reason=str(exc), checkpoint=path.name)
        by_seq.setdefault(checkpoint.seq, []).append(checkpoint)
    count = sum(len(group) for group in by_seq.values())
    newest = max(by_seq, default=None)

    head = AccessLogHead.objects.filter(pk=1).first()
    anchor_seq = head.anchor_seq if head else 0
    anchor_hash = head.anchor_hash if head else GENESIS_HASH
    # Pruned entries are gone, but a checkpoint of one still tells when it was written: nothing
    # younger than the retention period may have been pruned. (A day of slack: entries of one
    # moment may commit slightly out of time order.)
    youngest_prunable = timezone.now() - ACCESS_LOG_RETENTION + timedelta(days=1)
    for seq in sorted(s for s in by_seq if s <= anchor_seq):
        for checkpoint in by_seq[seq]:
            if seq == anchor_seq and checkpoint.hash != anchor_hash:
                return VerifyResult(False, 0, anchor_seq, reason=f"it signs #{seq}, the anchor, with another hash: "
                                    "the anchor was moved", checkpoint=checkpoint.name)
            if checkpoint.at_time > youngest_prunable:
                return VerifyResult(
                    False, 0, anchor_seq, reason=f"it signs #{seq} written at {checkpoint.at}, but the log's anchor "
                    f"is #{anchor_seq}: entries younger than {ACCESS_LOG_RETENTION.days} days were removed",
                    checkpoint=checkpoint.name,
                )

    walk = _walk(start_seq=anchor_seq, start_hash=anchor_hash, key=log_keys.hmac_key, checkpoints=by_seq,
                 chunk_size=chunk_size)
    extra = {"checkpoints": count, "newest_checkpoint": newest}
    if walk.failure is not None:
        failure = walk.failure
        return VerifyResult(**{**failure.__dict__, **extra, "checkpoint": failure.checkpoint})
    last = walk.last_seq
    if newest is not None and newest > last:
        name = by_seq[newest][0].name
        return VerifyResult(
            False, walk.checked, last, last + 1, None,
            f"the chain ends at #{last} but checkpoint {name} signs #{newest}: entries were cut from the end",
            checkpoint=name, **extra,
        )
    if head is None:
        if walk.checked:
            return VerifyResult(False, walk.checked, last, None, None, "the chain head row is missing", **extra)
        return VerifyResult(True, 0, 0, **extra)
    if head.last_seq != last or head.last_hash != walk.last_hash:
        return VerifyResult(
            False, walk.checked, last, last + 1, None,
            f"the chain ends at #{last} but its head says #{head.last_seq}: entries were deleted from the end", **extra,
        )
    notes = []
    if newest is None and last > anchor_seq:
        notes.append(f"warning: no signed checkpoint in {directory} yet: cutting entries from the end cannot be "
                     "detected until manage.py checkpoint_access_log runs")
    elif newest is not None and last > newest:
        notes.append(f"{last - newest} entries after the newest checkpoint are covered by the next one")
    return VerifyResult(True, walk.checked, last, notes=tuple(notes), **extra)


@dataclass(frozen=True)
class CheckpointResult:
    written: bool
    seq: int
    message: str
    tampered: bool = False


def checkpoint_now(*, chunk_size: int = 5000) -> CheckpointResult:
    """Sign the chain head, after checking the chain from the newest checkpoint up to it.

    Only what is new since the newest checkpoint is verified, so a run stays cheap however long
    the log. Raises CannotVerify when a key or the directory is missing."""
    log_keys = _keys_or_cannot_verify()
    if log_keys.signing_key is None:
        raise CannotVerify("ACCESS_LOG_SIGNING_KEY is needed to write checkpoints (only ACCESS_LOG_VERIFY_KEY is set)")
    try:
        directory = checkpoint_dir()
    except ImproperlyConfigured as exc:
        raise CannotVerify(str(exc)) from None
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    head = AccessLogHead.objects.filter(pk=1).first()
    if head is None or head.last_seq == head.anchor_seq:
        return CheckpointResult(False, head.last_seq if head else 0, "no entries past the anchor: nothing to checkpoint")
    # The newest checkpoint by name; only its file(s) are read and checked (the directory grows
    # by one file a minute, and reading every file is verify_access_log's job).
    by_seq: dict[int, list[Path]] = {}
    for path in _checkpoint_files(directory):
        match = _CHECKPOINT_NAME.match(path.name)
        if match:
            by_seq.setdefault(int(match.group(1)), []).append(path)
    newest: list[Checkpoint] = []
    for seq in sorted(by_seq, reverse=True):
        valid = []
        for path in by_seq[seq]:
            try:
                valid.append(_read_checkpoint(path, log_keys.verify_key))
            except ValueError:
                continue  # reported by verify_access_log; sign from an older, valid one
        if valid:
            newest = valid
            break
    start_seq, start_hash = head.anchor_seq, head.anchor_hash
    if newest:
        seq = newest[0].seq
        if seq > head.last_seq:
            return CheckpointResult(False, head.last_seq, f"REFUSED: the chain head is at #{head.last_seq} but checkpoint "
                                    f"{newest[0].name} signs #{seq}: entries were cut from the end", tampered=True)
        if seq > head.anchor_seq:
            stored = AccessLogEntry.objects.filter(seq=seq).values_list("hash", flat=True).first()
            for checkpoint in newest:
                if stored != checkpoint.hash:
                    return CheckpointResult(False, seq, f"REFUSED: entry #{seq} is missing or does not hold the hash "
                                            f"checkpoint {checkpoint.name} signs: the chain was rewritten", tampered=True)
            start_seq, start_hash = seq, stored
    if newest and newest[0].seq == head.last_seq:
        return CheckpointResult(False, head.last_seq, f"up to date: checkpoint {newest[0].name} already signs #{head.last_seq}")
    walk = _walk(start_seq=start_seq, start_hash=start_hash, key=log_keys.hmac_key, upto=head.last_seq,
                 chunk_size=chunk_size)
    if walk.failure is not None:
        return CheckpointResult(False, head.last_seq, f"REFUSED: {walk.failure.describe()}", tampered=True)
    if walk.last_seq != head.last_seq or walk.last_hash != head.last_hash or walk.last_at is None:
        return CheckpointResult(
            False, head.last_seq, f"REFUSED: the chain ends at #{walk.last_seq} but its head says #{head.last_seq}: "
            "entries were deleted from the end", tampered=True,
        )
    try:
        path = write_checkpoint(seq=walk.last_seq, digest=walk.last_hash, at=walk.last_at)
    except CheckpointConflict as exc:
        return CheckpointResult(False, walk.last_seq, f"REFUSED: {exc}: the chain was rewritten", tampered=True)
    return CheckpointResult(True, walk.last_seq, f"checkpoint {path.name} signs entry #{walk.last_seq}")


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
