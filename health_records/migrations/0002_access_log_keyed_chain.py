"""Re-chain the access log under the keyed hash (HMAC-SHA256, canonical prefix "v2;").

The unkeyed v1 chain could be rewritten by anyone with write access to the database: edit an
entry, recompute every SHA-256 after it, done. This migration first verifies the v1 chain from the
anchor and refuses to go on if it is already broken (re-chaining would launder the tampering),
then recomputes every entry's hash with ``ACCESS_LOG_HMAC_KEY``. An empty log needs no key.

The hash functions are frozen here on purpose: the migration must keep computing exactly these
bytes whatever later versions of ``health_records.audit`` do.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import timezone as dt_timezone

from django.db import migrations

GENESIS_HASH = "0" * 64
BATCH = 2000
FIELDS = (
    "seq", "at", "reader_id", "reader_username", "role", "case_ref", "purpose", "archive_id", "patient_id",
    "override",
)


class ChainBroken(RuntimeError):
    pass


def _lp(value: str) -> str:
    return f"{len(value.encode())}:{value};"


def _canonical(prefix: str, entry, prev_hash: str) -> bytes:
    at = entry.at.astimezone(dt_timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    parts = (
        str(int(entry.seq)), at, str(int(entry.reader_id)), entry.reader_username, entry.role, entry.case_ref,
        entry.purpose, str(uuid.UUID(str(entry.archive_id))), str(int(entry.patient_id)),
        "1" if entry.override else "0", prev_hash,
    )
    return (prefix + "".join(_lp(part) for part in parts)).encode()


def _v1(entry, prev_hash: str, key: bytes) -> str:
    return hashlib.sha256(_canonical("v1;", entry, prev_hash)).hexdigest()


def _v2(entry, prev_hash: str, key: bytes) -> str:
    return hmac.new(key, _canonical("v2;", entry, prev_hash), hashlib.sha256).hexdigest()


def _rechain(apps, *, old, new, old_name: str, new_name: str) -> None:
    Entry = apps.get_model("health_records", "AccessLogEntry")
    Head = apps.get_model("health_records", "AccessLogHead")
    head = Head.objects.select_for_update().filter(pk=1).first()
    anchor_seq = head.anchor_seq if head else 0
    if not Entry.objects.filter(seq__gt=anchor_seq).exists():
        return  # nothing to re-chain: no key needed (fresh databases, test databases)
    if head is None:
        raise ChainBroken("the access log has entries but no chain head row; refusing to re-chain it")

    from health_records import keys

    key = keys.access_log_hmac_key()
    old_prev = new_prev = head.anchor_hash
    expected = anchor_seq + 1
    last_seq = anchor_seq
    while True:
        batch = list(Entry.objects.filter(seq__gte=expected).order_by("seq")[:BATCH])
        if not batch:
            break
        for entry in batch:
            if entry.seq != expected:
                raise ChainBroken(f"entries #{expected}..#{entry.seq - 1} are missing (deleted)")
            if entry.prev_hash != old_prev or old(entry, old_prev, key) != entry.hash:
                raise ChainBroken(f"entry #{entry.seq} does not match its {old_name} hash (edited)")
            old_prev = entry.hash
            entry.prev_hash = new_prev
            entry.hash = new(entry, new_prev, key)
            new_prev = entry.hash
            expected += 1
            last_seq = entry.seq
        Entry.objects.bulk_update(batch, ["prev_hash", "hash"], batch_size=BATCH)
    if head.last_seq != last_seq or head.last_hash != old_prev:
        raise ChainBroken(
            f"the chain ends at #{last_seq} but its head says #{head.last_seq}: entries were deleted from the end"
        )
    head.last_hash = new_prev
    head.save(update_fields=["last_hash"])


def _guarded(apps, **kwargs) -> None:
    try:
        _rechain(apps, **kwargs)
    except ChainBroken as exc:
        raise RuntimeError(
            f"access log: the existing {kwargs['old_name']} chain is already broken: {exc}. Refusing to re-chain it "
            f"under {kwargs['new_name']} - that would make the tampering verify. Investigate (the "
            "verify_access_log of the release that wrote the log names the entry), restore the log from a backup, then "
            "migrate again. Nothing was changed."
        ) from None


def forwards(apps, schema_editor):
    _guarded(apps, old=_v1, new=_v2, old_name="unkeyed SHA-256 (v1)", new_name="HMAC-SHA256 (v2)")


def backwards(apps, schema_editor):
    _guarded(apps, old=_v2, new=_v1, old_name="HMAC-SHA256 (v2)", new_name="unkeyed SHA-256 (v1)")


class Migration(migrations.Migration):

    dependencies = [
        ("health_records", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(forwards, backwards),
    ]
