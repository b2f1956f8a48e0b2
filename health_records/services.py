"""Every state change of health records: one function per use case, each owning its transaction.

Who may read an archive:
- its owner, always (``archive_get_own``);
- a staff member only through ``archive_read_for_grant``: an active account, an open, unexpired
  access grant for that reader on that case, naming that patient, and either the patient's consent
  to share with 120 or a break-glass override declared by a dispatcher on the case (with a reason,
  flagged for review). The summary is handed over only once its read is in the hash-chained access
  log; the append re-checks the grant in the same transaction, so a grant closed meanwhile refuses.
  The same read delivered again (same reader, grant, archive version, basis and purpose: a replayed
  event, a refreshed console) is logged once.

Dispatch opens grants (``grant_open``) as people join a case and closes them all when the case
closes or is cancelled (``grants_close``). A grant that expires on a case still at the same stage
stays expired until a person renews it with a reason (``grant_renew``). This module never imports
dispatch.

Identifiers a citizen types into their own archive are claims (``claimed_*_bidx``): they confer
nothing, are never refused as "taken" (which would tell a stranger that the person has an archive)
and never stand in the way of an import, which upserts by the verified indexes only.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta
from typing import Any, Callable

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from config.errors import ApplicationError
from health_records import audit, blind_index, crypto, keys, selectors
from health_records.models import (
    AccessGrant,
    Archive,
    ArchiveVersion,
    GrantRole,
    OverrideReview,
    Source,
)
from health_records.validation import ARCHIVE_FIELDS, reason_problem, validate_archive

logger = logging.getLogger(__name__)

# The summary a crew, dispatcher or hospital sees: what matters in an emergency, not identifiers.
SUMMARY_FIELDS = (
    "name",
    "sex",
    "date_of_birth",
    "blood_type",
    "allergies",
    "chronic_conditions",
    "medications",
    "implanted_devices",
    "pregnancy",
    "advance_directives",
    "emergency_contacts",
    "family_doctor",
    "past_surgeries",
)


class HealthRecordsError(ApplicationError):
    code = "health_records_error"


class ArchiveInvalid(HealthRecordsError):
    """Field errors in the shape of a DRF validation error (400, the body is the errors)."""

    code = "invalid"

    def __init__(self, errors: dict):
        super().__init__("The archive has invalid fields.")
        self.errors = errors

    def body(self) -> dict[str, Any]:
        return self.errors


class ArchiveConflict(ArchiveInvalid):
    """Two saves of one archive crossed (409)."""

    status_code = 409
    code = "conflict"


class AccessDenied(HealthRecordsError):
    """A staff read that is not allowed. ``code``: no_grant, grant_closed, grant_expired,
    wrong_patient, no_consent, reader_inactive."""

    status_code = 403
    code = "access_denied"


class InvalidGrant(HealthRecordsError, ValueError):
    code = "invalid_grant"


def _grant_roles_of(user) -> frozenset[str]:
    """The grant roles ``user``'s account may hold. This app knows only its own roles (GrantRole):
    which accounts fill them is the project's to say, through HEALTH_GRANT_ROLES_OF (a dotted
    path to ``f(user) -> set of GrantRole values``; dispatch maps its account roles). Unset, no
    account holds any: deny by default."""
    path = getattr(settings, "HEALTH_GRANT_ROLES_OF", None)
    if not path:
        return frozenset()
    return frozenset(import_string(path)(user))


def grant_max_age() -> timedelta:
    # A safety net only: dispatch closes grants when the case ends.
    return timedelta(hours=getattr(settings, "HEALTH_GRANT_MAX_HOURS", 24))


# --- the citizen's own archive ------------------------------------------------------------


def _view(archive: Archive, data: dict[str, Any]) -> dict[str, Any]:
    view = {name: data.get(name) for name in ARCHIVE_FIELDS}
    view.update(
        consent_share_with_120=archive.consent_share_with_120,
        verified_at=archive.verified_at.isoformat() if archive.verified_at else None,
        updated_at=archive.updated_at.isoformat(),
        version=archive.version,
    )
    return view


def _decrypt(archive: Archive | selectors.SealedArchive) -> dict[str, Any]:
    plaintext = crypto.open_sealed(
        ciphertext=archive.ciphertext,
        nonce=archive.nonce,
        wrapped_key=archive.wrapped_key,
        kek_id=archive.kek_id,
        archive_id=archive.pk,
        version=archive.version,
    )
    return crypto.decode(plaintext)


def archive_put(*, owner, data) -> tuple[dict[str, Any], bool]:
    """Create or replace the owner's archive. Returns (archive view, created).

    Validates every field (ArchiveInvalid with DRF-shaped errors), encrypts under a fresh data
    key, keeps the superseded version (encrypted) in ArchiveVersion, all in one transaction.
    Saving unchanged contents only confirms them (``verified_at``) and writes no new version.
    The national ID and phone typed here are recorded as claims only: the same answer whether or
    not another archive carries them, and the verified indexes (from an import) are left as they are.
    """
    clean, errors = validate_archive(data)
    if errors:
        raise ArchiveInvalid(errors)
    consent = clean.pop("consent_share_with_120")
    plaintext = crypto.encode(clean)
    nid = blind_index.national_id_index(clean["national_id"])
    phone = blind_index.phone_index(clean["phone"])
    mac = blind_index.content_mac(plaintext)
    now = timezone.now()
    try:
        with transaction.atomic():
            archive = Archive.objects.select_for_update().filter(owner=owner).first()
            created = archive is None
            if created:
                archive = Archive(id=crypto.new_archive_id(), owner=owner, version=1, created_at=now)
            if created or bytes(archive.content_mac) != mac:
                if not created:
                    ArchiveVersion.objects.create(
                        archive=archive,
                        version=archive.version,
                        ciphertext=archive.ciphertext,
                        nonce=archive.nonce,
                        wrapped_key=archive.wrapped_key,
                        kek_id=archive.kek_id,
                        source=archive.source,
                        written_at=archive.updated_at,
                        superseded_at=now,
                    )
                    archive.version += 1
                sealed = crypto.seal(plaintext, archive_id=archive.pk, version=archive.version)
                archive.ciphertext, archive.nonce = sealed.ciphertext, sealed.nonce
                archive.wrapped_key, archive.kek_id = sealed.wrapped_key, sealed.kek_id
                archive.claimed_national_id_bidx, archive.claimed_phone_bidx, archive.content_mac = nid, phone, mac
                archive.updated_at = now
                archive.source = Source.CITIZEN
            if created or archive.consent_share_with_120 != consent:
                archive.consent_share_with_120 = consent
                archive.consent_changed_at = now
            archive.verified_at = now
            archive.save(force_insert=created)
    except IntegrityError:
        # Only the owner's own concurrent first save can collide (one archive per owner).
        raise ArchiveConflict({"non_field_errors": ["Your archive was saved at the same moment; please retry."]}) from None
    logger.info("health archive %s saved by its owner (user %s), version %s", archive.pk, owner.pk, archive.version)
    return _view(archive, clean), created


def archive_get_own(*, owner) -> dict[str, Any] | None:
    """The owner's archive, decrypted; None if they have none. Crypto failures raise, loudly."""
    archive = Archive.objects.filter(owner=owner).first()
    if archive is None:
        return None
    return _view(archive, _decrypt(archive))


def archive_link_owner(*, archive_id, owner) -> Archive:
    """Link an imported (ownerless) archive to a citizen account.

    Not automatic on registration: phone numbers are not verified at sign-up, so matching by
    phone would hand a stranger's archive to whoever registers their number first. Call this from
    a verified flow (operator, or an SMS one-time code once that exists).
    """
    with transaction.atomic():
        archive = Archive.objects.select_for_update().get(pk=archive_id)
        if archive.owner_id not in (None, owner.pk):
            raise InvalidGrant("this archive already belongs to another account", code="already_linked")
        if Archive.objects.filter(owner=owner).exclude(pk=archive.pk).exists():
            raise InvalidGrant("this account already has an archive", code="already_has_archive")
        archive.owner = owner
        archive.save(update_fields=["owner"])
    return archive


def archive_find(*, national_id: str | None = None, phone: str | None = None) -> Archive | None:
    """Find an archive row (still encrypted) by a VERIFIED identifier (imported from the health
    platform) through the blind index; never by plaintext, never by a citizen's mere claim (see
    selectors.archives_matching for an operator's search, which shows both)."""
    if national_id:
        return Archive.objects.filter(national_id_bidx=blind_index.national_id_index(national_id)).first()
    if phone:
        return Archive.objects.filter(phone_bidx=blind_index.phone_index(phone)).first()
    return None


# --- access grants --------------------------------------------------------------------------


def _check_text(value, name: str, max_length: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidGrant(f"{name} must be a non-empty string")
    value = value.strip()
    if len(value) > max_length:
        raise InvalidGrant(f"{name} is longer than {max_length} characters")
    return value


def _account_active(user_id: int) -> bool:
    # Fresh from the database: an account deactivated a second ago must not be read from a
    # cached user object (a socket's scope keeps the one it authenticated with).
    return AccessGrant._meta.get_field("grantee").related_model.objects.filter(pk=user_id, is_active=True).exists()


def grant_open(
    *, case_ref: str, grantee, role: str, patient, purpose: str, override_reason: str | None = None,
    stage: str = "",
) -> AccessGrant:
    """Let ``grantee`` read ``patient``'s archive while ``case_ref`` is open.

    ``role``: dispatcher (the dispatcher handling the case), crew (of the assigned unit) or hospital
    (the destination). It must match the grantee's account role, and the account must be active
    (AccessDenied ``reader_inactive`` otherwise). Opening again for the same reader and case returns
    the open grant. ``stage`` is where the case stands (dispatch passes its status): a grant that
    expired is never silently replaced at the same stage (reads refuse with ``grant_expired`` until
    a person renews it, see grant_renew); once the case has moved on to another stage, a fresh
    grant is opened for it. ``override_reason`` (dispatcher only) declares break-glass access for
    the whole case when the patient has not consented; it is flagged for review.
    Do not open a grant for a case made for someone else (``for_self=False``): the caller is not
    the patient.
    """
    case_ref = _check_text(case_ref, "case_ref", 64)
    purpose = _check_text(purpose, "purpose", 64)
    if not isinstance(stage, str) or len(stage) > 32:
        raise InvalidGrant("stage must be a string of at most 32 characters")
    if role not in GrantRole.values:
        raise InvalidGrant(f"role must be one of {', '.join(GrantRole.values)}")
    if role not in _grant_roles_of(grantee):
        raise InvalidGrant(f"a {role} grant needs an account that may act as {role}", code="role_mismatch")
    if patient is None or patient.pk is None:
        raise InvalidGrant("patient must be a saved user")
    if override_reason is not None:
        override_reason = _check_text(override_reason, "override_reason", 500)
        if role != GrantRole.DISPATCHER:
            raise InvalidGrant("only the dispatcher handling the case may declare an emergency override")
    if not _account_active(grantee.pk):
        _deny("reader_inactive", "This account is deactivated.", reader=grantee, case_ref=case_ref)
    now = timezone.now()
    with transaction.atomic():
        grant = AccessGrant.objects.select_for_update().filter(
            case_ref=case_ref, grantee=grantee, closed_at__isnull=True
        ).first()
        if grant is not None and grant.patient_id != patient.pk:
            # The case now names another patient: close it, open afresh.
            grant.closed_at = now
            grant.save(update_fields=["closed_at"])
            grant = None
        elif grant is not None and grant.expires_at <= now:
            if stage and grant.stage != stage:
                # Expired, but the case has moved on since (a unit assigned, the patient on board):
                # a new stage of care is a new need to know.
                grant.closed_at = now
                grant.save(update_fields=["closed_at"])
                grant = None
            # Same stage: keep the expired grant open and refusing. Replacing it here would make
            # the time limit a no-op for any case that simply stays open.
        elif grant is not None and stage and grant.stage != stage:
            # Remember where the case stands now, so that its expiry at this stage is final.
            grant.stage = stage
            grant.save(update_fields=["stage"])
        if grant is None:
            try:
                # Two consoles of one reader on two workers open the same grant at once; the
                # partial unique index lets one insert win and the other takes its row.
                with transaction.atomic():
                    grant = AccessGrant.objects.create(
                        case_ref=case_ref, grantee=grantee, role=role, patient=patient, purpose=purpose,
                        opened_at=now, expires_at=now + grant_max_age(), stage=stage,
                    )
            except IntegrityError:
                grant = AccessGrant.objects.select_for_update().get(
                    case_ref=case_ref, grantee=grantee, closed_at__isnull=True
                )
        if override_reason and not grant.override_reason:
            grant.override_reason = override_reason
            grant.override_review = OverrideReview.PENDING
            grant.save(update_fields=["override_reason", "override_review"])
            logger.warning(
                "health archive BREAK-GLASS override declared on %s by user %s: flagged for review (grant %s)",
                case_ref, grantee.pk, grant.pk,
            )
    return grant


def grant_renew(*, case_ref: str, actor, reason: str, grantee=None) -> list[AccessGrant]:
    """A person renews the expired grants of a case that is still open, with a reason.

    A dispatcher (or admin) renews every expired open grant of the case, or only ``grantee``'s;
    any other staff member only their own. The reason (words, see validation.reason_problem) is
    kept on each grant for review, and a warning is logged without it (it may describe the
    patient). A renewed grant runs for a full grant_max_age from now, and its next read is logged
    as a new one. Raises InvalidGrant (``invalid_reason``, ``role_mismatch``, ``nothing_to_renew``)
    or AccessDenied (``reader_inactive``).
    """
    case_ref = _check_text(case_ref, "case_ref", 64)
    problem = reason_problem(reason)
    if problem:
        raise InvalidGrant(problem, code="invalid_reason")
    reason = reason.strip()
    actor_roles = _grant_roles_of(actor)
    if not actor_roles:
        raise InvalidGrant("only 120 staff may renew access to a health archive", code="role_mismatch")
    if not _account_active(actor.pk):
        _deny("reader_inactive", "This account is deactivated.", reader=actor, case_ref=case_ref)
    if GrantRole.DISPATCHER not in actor_roles:
        if grantee is not None and grantee.pk != actor.pk:
            raise InvalidGrant("only a dispatcher may renew someone else's access", code="role_mismatch")
        grantee = actor
    now = timezone.now()
    with transaction.atomic():
        query = AccessGrant.objects.select_for_update().filter(
            case_ref=case_ref, closed_at__isnull=True, expires_at__lte=now
        )
        if grantee is not None:
            query = query.filter(grantee=grantee)
        grants = list(query.order_by("pk"))
        if not grants:
            raise InvalidGrant("no expired access grant to renew on this case", code="nothing_to_renew")
        for grant in grants:
            grant.expires_at = now + grant_max_age()
            grant.renewal_reason, grant.renewed_by, grant.renewed_at = reason, actor, now
            grant.logged_read = ""
        AccessGrant.objects.bulk_update(
            grants, ["expires_at", "renewal_reason", "renewed_by", "renewed_at", "logged_read"]
        )
    logger.warning(
        "health archive access RENEWED after expiry on %s by user %s: grants %s (reason kept on the grants)",
        case_ref, actor.pk, ",".join(str(grant.pk) for grant in grants),
    )
    return grants


def grants_close(*, case_ref: str) -> int:
    """End every open grant of a case (closed or cancelled). Returns how many were open."""
    return AccessGrant.objects.filter(case_ref=case_ref, closed_at__isnull=True).update(closed_at=timezone.now())


def override_mark_reviewed(*, grant_id: int, reviewer) -> AccessGrant:
    with transaction.atomic():
        grant = AccessGrant.objects.select_for_update().get(pk=grant_id)
        if grant.override_review != OverrideReview.PENDING:
            raise InvalidGrant("this grant has no override pending review")
        grant.override_review = OverrideReview.REVIEWED
        grant.reviewed_by, grant.reviewed_at = reviewer, timezone.now()
        grant.save(update_fields=["override_review", "reviewed_by", "reviewed_at"])
    return grant


def _deny(code: str, detail: str, *, reader, case_ref: str) -> None:
    logger.warning("health archive access DENIED (%s) reader=%s case=%s", code, reader.pk, case_ref)
    raise AccessDenied(detail, code=code)


def summary_of(archive: Archive | selectors.SealedArchive, data: dict[str, Any], *, override: bool) -> dict[str, Any]:
    summary = {name: data.get(name) for name in SUMMARY_FIELDS}
    summary.update(
        archive_id=str(archive.pk),
        version=archive.version,
        verified_at=archive.verified_at.isoformat() if archive.verified_at else None,
        updated_at=archive.updated_at.isoformat(),
        access_basis="override" if override else "consent",
    )
    return summary


def _read_key(*, archive_id, version: int, override: bool, purpose: str) -> str:
    """What makes two reads "the same read" for the access log (kept on the grant)."""
    canonical = f"{archive_id}|{version}|{'override' if override else 'consent'}|{purpose}"
    return hashlib.sha256(canonical.encode()).hexdigest()


def _log_read(*, grant_id: int, key: str, reader, role: str, case_ref: str, purpose: str, archive_id,
              patient_id: int, override: bool) -> str | None:
    """Append the read to the access log unless this grant already logged the same read.
    None when the read is (now, or already) in the log; else why it cannot be (the grant ended or
    expired, or the reader was deactivated, meanwhile).

    The grant is re-checked and marked with the read's key, and the entry appended, all or nothing
    (on PostgreSQL in one statement, see audit.append_entry). A concurrent read of the same reader
    on the same grant (a second console, another worker) waits for the grant's row lock, then finds
    the key set and appends nothing - one entry, never two; and never zero, since the key only
    becomes visible when the entry commits with it. Only a read that appended nothing pays for a
    second look at the grant, to tell "already logged" (deliver) from "access ended" (refuse).
    """
    appended = audit.append_entry(
        reader=reader, role=role, case_ref=case_ref, purpose=purpose, archive_id=archive_id,
        patient_id=patient_id, override=override, grant_id=grant_id, read_key=key,
    )
    if appended is not None:
        return None
    return selectors.why_read_not_marked(grant_id=grant_id, key=key, now=timezone.now())


def archive_read_for_grant(*, patient, reader, case_ref: str, purpose: str) -> dict[str, Any] | None:
    """The patient's health summary for a staff reader on a case, or None if the patient has no archive.

    Refuses (AccessDenied, logged) an inactive reader, and without an open unexpired grant for
    this reader on this case naming this patient, or without consent or a dispatcher's override on
    the case. Crypto failures raise ArchiveCryptoError (alarm logged) and no data is returned. The
    summary is returned only once its read is in the access log; the same read again (same grant,
    archive version, basis and purpose: a replay, a refresh) is not logged twice.

    The grant, the reader's is_active, the case's override and the archive come in one query
    (selectors.grants_for_read). A read already logged costs nothing more; a first read is one
    more statement on PostgreSQL (re-check and mark the grant, append the entry). Call it outside a
    transaction for the entry to be durable on its own.
    """
    purpose = _check_text(purpose, "purpose", 64)
    now = timezone.now()
    grants = selectors.grants_for_read(case_ref=case_ref, reader_id=reader.pk, now=now)
    # The open grant if there is one; else any closed one, to say why the read is refused.
    grant = next((g for g in grants if g.closed_at is None), None) or (grants[0] if grants else None)
    if grant is None:
        _deny("no_grant", "No access grant for this reader on this case.", reader=reader, case_ref=case_ref)
    if not grant.reader_active:
        _deny("reader_inactive", "This account is deactivated.", reader=reader, case_ref=case_ref)
    if grant.closed_at is not None:
        _deny("grant_closed", "The access grant ended when the case closed.", reader=reader, case_ref=case_ref)
    if grant.expires_at <= now:
        _deny("grant_expired", "The access grant has expired; a dispatcher can renew it with a reason.",
              reader=reader, case_ref=case_ref)
    if grant.patient_id != patient.pk:
        _deny("wrong_patient", "The access grant is for another patient.", reader=reader, case_ref=case_ref)
    archive = grant.archive
    if archive is None:
        return None
    override = not archive.consent_share_with_120
    if override and not grant.override_declared:
        _deny(
            "no_consent",
            "The patient has not consented to share their archive with 120, and no emergency "
            "override was declared on this case.",
            reader=reader,
            case_ref=case_ref,
        )
    data = _decrypt(archive)
    key = _read_key(archive_id=archive.pk, version=archive.version, override=override, purpose=purpose)
    # A key already on the grant in this committed read means its entry is committed too.
    if grant.logged_read != key:
        refused = _log_read(
            grant_id=grant.id, key=key, reader=reader, role=grant.role, case_ref=case_ref, purpose=purpose,
            archive_id=archive.pk, patient_id=patient.pk, override=override,
        )
        if refused:
            _deny(refused, "The access ended before the read was logged.", reader=reader, case_ref=case_ref)
    return summary_of(archive, data, override=override)


# --- keys -------------------------------------------------------------------------------------


def rewrap_pending() -> dict[str, int]:
    """How many data keys (archives + versions) are wrapped by each KEK id."""
    counts: dict[str, int] = {}
    for model in (Archive, ArchiveVersion):
        for kek_id, count in _kek_counts(model):
            counts[kek_id] = counts.get(kek_id, 0) + count
    return counts


def _kek_counts(model):
    from django.db.models import Count

    return model.objects.values_list("kek_id").annotate(n=Count("pk")).order_by()


def rotate_keys(*, batch_size: int = 1000, progress: Callable[[int], None] | None = None) -> int:
    """Re-wrap every data key not under the primary KEK, in batches, each its own transaction.

    Resumable (a re-run continues with what is left) and online: readers accept every live KEK,
    and each batch locks only its own rows. Returns how many keys were re-wrapped.
    """
    ring = keys.keyring()
    primary = ring.primary_id
    done = 0
    for model, archive_of in ((Archive, lambda row: row.pk), (ArchiveVersion, lambda row: row.archive_id)):
        last_pk = None
        while True:
            with transaction.atomic():
                query = model.objects.exclude(kek_id=primary).order_by("pk")
                if last_pk is not None:
                    query = query.filter(pk__gt=last_pk)
                fields = ["pk", "wrapped_key", "kek_id"] + (["archive_id"] if model is ArchiveVersion else [])
                rows = list(query.select_for_update().only(*fields)[:batch_size])
                if not rows:
                    break
                for row in rows:
                    row.wrapped_key, row.kek_id = crypto.rewrap(
                        row.wrapped_key, kek_id=row.kek_id, archive_id=archive_of(row), ring=ring
                    )
                model.objects.bulk_update(rows, ["wrapped_key", "kek_id"])
            last_pk = rows[-1].pk
            done += len(rows)
            if progress:
                progress(len(rows))
    return done
