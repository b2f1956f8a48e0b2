"""Read queries of health records (no decryption here, except the owner's own history)."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone as dt_timezone
from typing import Any, NamedTuple

from django.db import connection
from django.db.models import Q

from health_records import blind_index, crypto
from health_records.prepared import prepared_cursor
from health_records.models import AccessGrant, AccessLogEntry, Archive, ArchiveVersion, OverrideReview


def access_log_of(*, owner, limit: int = 100, before_seq: int | None = None) -> list[dict[str, Any]]:
    """Who read this citizen's archive, newest first (the citizen's own view)."""
    query = AccessLogEntry.objects.filter(patient_id=owner.pk).order_by("-seq")
    if before_seq is not None:
        query = query.filter(seq__lt=before_seq)
    return [
        {
            "seq": entry.seq,
            "at": entry.at.isoformat(),
            "reader": entry.reader_username,
            "role": entry.role,
            "case_ref": entry.case_ref,
            "purpose": entry.purpose,
            "override": entry.override,
        }
        for entry in query[:limit]
    ]


def has_archive(*, owner) -> bool:
    return Archive.objects.filter(owner=owner).exists()


def archive_id_of(*, owner) -> str | None:
    value = Archive.objects.filter(owner=owner).values_list("pk", flat=True).first()
    return str(value) if value else None


def history_of(*, owner) -> list[dict[str, Any]]:
    """The owner's superseded versions, decrypted, oldest first (for the owner only)."""
    rows = ArchiveVersion.objects.filter(archive__owner=owner).order_by("version")
    result = []
    for row in rows:
        plaintext = crypto.open_sealed(
            ciphertext=row.ciphertext, nonce=row.nonce, wrapped_key=row.wrapped_key, kek_id=row.kek_id,
            archive_id=row.archive_id, version=row.version,
        )
        result.append({"version": row.version, "written_at": row.written_at.isoformat(), "data": crypto.decode(plaintext)})
    return result


def archives_matching(*, national_id: str | None = None, phone: str | None = None) -> list[Archive]:
    """An operator's search: archives whose verified (imported) OR claimed (citizen-typed)
    identifier is this national ID or phone, through the blind indexes. Verified ones first."""
    query = Q(pk__in=[])
    if national_id:
        nid = blind_index.national_id_index(national_id)
        query |= Q(national_id_bidx=nid) | Q(claimed_national_id_bidx=nid)
    if phone:
        ph = blind_index.phone_index(phone)
        query |= Q(phone_bidx=ph) | Q(claimed_phone_bidx=ph)
    rows = list(Archive.objects.filter(query).only("pk", "national_id_bidx", "phone_bidx")[:100])
    rows.sort(key=lambda row: (row.national_id_bidx is None and row.phone_bidx is None, str(row.pk)))
    return rows


def open_grants(*, case_ref: str):
    return AccessGrant.objects.filter(case_ref=case_ref, closed_at__isnull=True)


def overrides_pending_review():
    return AccessGrant.objects.filter(override_review=OverrideReview.PENDING).order_by("opened_at")


class SealedArchive(NamedTuple):
    """An archive row as a read needs it, still encrypted: plain values, no model instance."""

    id: uuid.UUID
    ciphertext: bytes
    nonce: bytes
    wrapped_key: bytes
    kek_id: str
    version: int
    consent_share_with_120: bool
    verified_at: datetime | None
    updated_at: datetime

    @property
    def pk(self) -> uuid.UUID:
        return self.id


class GrantView(NamedTuple):
    """A reader's grant on a case, with what a read needs: the override flag of the case and the
    grant's patient's archive row (still encrypted; None when the patient has none)."""

    id: int
    role: str
    patient_id: int
    closed_at: datetime | None
    expires_at: datetime
    override_declared: bool
    archive: SealedArchive | None
    reader_active: bool = False
    logged_read: str = ""


_GRANT = AccessGrant._meta.db_table
_ARCHIVE = Archive._meta.db_table
_USER = AccessGrant._meta.get_field("grantee").related_model._meta.db_table
# The hot path of every staff read, as one hand-written statement in SQL both databases speak:
# the ORM spent more time building this query than PostgreSQL spends running it. On PostgreSQL it
# is prepared once per connection (prepared_cursor).
_GRANTS_SQL = f"""
SELECT g.id, g.role, g.patient_id, g.closed_at, g.expires_at,
    EXISTS (SELECT 1 FROM {_GRANT} o WHERE o.case_ref = g.case_ref AND o.patient_id = g.patient_id
            AND o.role = 'dispatcher' AND o.closed_at IS NULL AND o.expires_at > %s AND o.override_reason <> ''),
    u.is_active, g.logged_read,
    a.id, a.ciphertext, a.nonce, a.wrapped_key, a.kek_id, a.version, a.consent_share_with_120, a.verified_at, a.updated_at
FROM {_GRANT} g JOIN {_USER} u ON u.id = g.grantee_id LEFT JOIN {_ARCHIVE} a ON a.owner_id = g.patient_id
WHERE g.case_ref = %s AND g.grantee_id = %s
"""


def _aware(value: datetime | None) -> datetime | None:
    # PostgreSQL returns aware datetimes; SQLite keeps naive UTC text (Django's USE_TZ storage).
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt_timezone.utc)


def grants_for_read(*, case_ref: str, reader_id: int, now: datetime) -> list[GrantView]:
    """Every grant (open or closed) of this reader on this case, in one query."""
    with prepared_cursor() as cursor:
        cursor.execute(_GRANTS_SQL, [connection.ops.adapt_datetimefield_value(now), case_ref, reader_id])
        rows = cursor.fetchall()
    views = []
    for gid, role, patient_id, closed_at, expires_at, override, active, logged, *archive in rows:
        sealed = None
        if archive[0] is not None:
            archive_id, ciphertext, nonce, wrapped_key, kek_id, version, consent, verified_at, updated_at = archive
            sealed = SealedArchive(
                archive_id if isinstance(archive_id, uuid.UUID) else uuid.UUID(archive_id), ciphertext, nonce,
                wrapped_key, kek_id, version, bool(consent), _aware(verified_at), _aware(updated_at),
            )
        views.append(GrantView(gid, role, patient_id, _aware(closed_at), _aware(expires_at), bool(override), sealed,
                               bool(active), logged))
    return views


def why_read_not_marked(*, grant_id: int, key: str, now: datetime) -> str | None:
    """After a conditional mark of a read on a grant matched nothing: None if the grant is open
    and already carries this read (a concurrent reader of the same grant logged it), else why not."""
    row = (
        AccessGrant.objects.filter(pk=grant_id)
        .values_list("closed_at", "expires_at", "logged_read", "grantee__is_active")
        .first()
    )
    if row is None or row[0] is not None:
        return "grant_closed"
    closed_at, expires_at, logged_read, active = row
    if not active:
        return "reader_inactive"
    if expires_at <= now:
        return "grant_expired"
    return None if logged_read == key else "grant_closed"
