"""Encrypted health archives, their history, access grants, and the hash-chained access log.

Nothing in these tables is health data in plaintext: archive contents are AES-256-GCM ciphertext
(see crypto.py), lookups go through keyed HMAC blind indexes (see blind_index.py), and the access
log records who read which archive for which case, never what they read.

This app knows nothing of dispatch: a grant carries an opaque ``case_ref`` (e.g. ``"case:42"``)
that dispatch opens and closes as the case moves.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

GENESIS_HASH = "0" * 64
# The access log is kept at least this long; nothing deletes younger entries.
ACCESS_LOG_RETENTION = timedelta(days=183)


class Source(models.TextChoices):
    CITIZEN = "citizen", "Entered by the citizen"
    IMPORT = "import", "Imported from the health platform"


class Archive(models.Model):
    """One person's archive. ``owner`` is the citizen account it belongs to; an imported archive
    has none until it is linked (see services.archive_link_owner)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="health_archive"
    )
    # Envelope: ciphertext of the canonical JSON under a per-version data key, which is wrapped
    # by the key-encryption key ``kek_id``. Associated data: archive id + version.
    ciphertext = models.BinaryField()
    nonce = models.BinaryField(max_length=12)
    wrapped_key = models.BinaryField(max_length=60)
    kek_id = models.CharField(max_length=32)
    version = models.PositiveIntegerField(default=1)
    # Blind indexes: HMAC-SHA256 under HEALTH_BLIND_INDEX_KEY. NULLs never collide, so "unique where set".
    # Only VERIFIED identifiers (imported from the health platform, kept when an imported archive is
    # linked to its owner) are unique: they are what an import upserts by.
    national_id_bidx = models.BinaryField(max_length=32, null=True, blank=True, unique=True)
    phone_bidx = models.BinaryField(max_length=32, null=True, blank=True, unique=True)
    # What the citizen typed into their own archive: a claim, not proof. Not unique (anyone may type
    # anyone's ID without learning whether it is taken) and ignored by imports, so a squatter can
    # neither learn that an archive exists nor block the real person's import.
    claimed_national_id_bidx = models.BinaryField(max_length=32, null=True, blank=True)
    claimed_phone_bidx = models.BinaryField(max_length=32, null=True, blank=True)
    content_mac = models.BinaryField(max_length=32)
    consent_share_with_120 = models.BooleanField(default=False)
    consent_changed_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True, help_text="When the contents were last confirmed.")
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.CITIZEN)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "health archive"
        indexes = [
            # Partial: imported archives (the bulk of the table) carry no claim and cost the import nothing here.
            models.Index(
                fields=["claimed_national_id_bidx"], name="archive_claimed_nid",
                condition=Q(claimed_national_id_bidx__isnull=False),
            ),
            models.Index(
                fields=["claimed_phone_bidx"], name="archive_claimed_phone", condition=Q(claimed_phone_bidx__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"Archive {self.pk} v{self.version}"


class ArchiveVersion(models.Model):
    """A superseded version, kept encrypted exactly as it was (its own wrapped data key)."""

    archive = models.ForeignKey(Archive, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    ciphertext = models.BinaryField()
    nonce = models.BinaryField(max_length=12)
    wrapped_key = models.BinaryField(max_length=60)
    kek_id = models.CharField(max_length=32)
    source = models.CharField(max_length=8, choices=Source.choices)
    written_at = models.DateTimeField()
    superseded_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["archive", "version"], name="archive_version_unique")]

    def __str__(self) -> str:
        return f"Archive {self.archive_id} v{self.version} (superseded)"


class GrantRole(models.TextChoices):
    DISPATCHER = "dispatcher", "Dispatcher handling the case"
    CREW = "crew", "Crew of the assigned unit"
    HOSPITAL = "hospital", "Destination hospital"


class OverrideReview(models.TextChoices):
    NONE = "", "No override"
    PENDING = "pending", "Override pending review"
    REVIEWED = "reviewed", "Override reviewed"


class AccessGrant(models.Model):
    """Permission for one staff member to read one patient's archive for one case, while the case
    is open. Opened and closed by dispatch; checked on every read."""

    case_ref = models.CharField(max_length=64)
    grantee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    role = models.CharField(max_length=16, choices=GrantRole.choices)
    patient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    purpose = models.CharField(max_length=64)
    # Break-glass: a dispatcher reads without the patient's consent, with a reason, flagged for review.
    override_reason = models.CharField(max_length=500, blank=True)
    override_review = models.CharField(max_length=8, choices=OverrideReview.choices, blank=True, default="")
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    # The case stage (dispatch's case status) the grant was opened for, or last seen at while it was
    # valid. An expired grant is replaced silently only when the case has moved on to another stage;
    # otherwise a person must renew it with a reason.
    stage = models.CharField(max_length=32, blank=True, default="")
    renewal_reason = models.CharField(max_length=500, blank=True)
    renewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    renewed_at = models.DateTimeField(null=True, blank=True)
    # The read already in the access log for this grant (archive, version, basis, purpose): a
    # re-delivery of the same summary to the same reader is not a new read. Set in the same
    # transaction as the log append.
    logged_read = models.CharField(max_length=96, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["case_ref", "grantee"], condition=Q(closed_at__isnull=True), name="grant_one_open_per_reader"
            )
        ]
        indexes = [
            models.Index(fields=["grantee", "case_ref"], name="grant_reader_case"),
            models.Index(fields=["case_ref", "closed_at"], name="grant_case_open"),
            models.Index(fields=["override_review"], name="grant_override_review"),
        ]

    def __str__(self) -> str:
        return f"{self.role} {self.grantee_id} on {self.case_ref}"


class AccessLogQuerySet(models.QuerySet):
    def delete(self):
        cutoff = timezone.now() - ACCESS_LOG_RETENTION
        if self.filter(at__gt=cutoff).exists():
            raise PermissionError(
                "access log entries are kept at least 183 days; use audit.prune_access_log for older ones"
            )
        return super().delete()


class AccessLogEntry(models.Model):
    """One read of an archive by someone other than its owner. ``hash`` = HMAC-SHA256 (key
    ACCESS_LOG_HMAC_KEY) over the canonical entry including ``prev_hash``: editing or deleting any
    entry breaks the chain, and signed checkpoints outside the database catch a cut tail (audit.py).
    Plain id columns, not foreign keys: deleting a user must never rewrite (or cascade into) the log.
    No health data here."""

    seq = models.BigIntegerField(unique=True)
    at = models.DateTimeField()
    reader_id = models.BigIntegerField()
    reader_username = models.CharField(max_length=150)
    role = models.CharField(max_length=16)
    case_ref = models.CharField(max_length=64)
    purpose = models.CharField(max_length=64)
    archive_id = models.UUIDField()
    patient_id = models.BigIntegerField()
    override = models.BooleanField(default=False)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = AccessLogQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "access log entries"
        indexes = [
            models.Index(fields=["patient_id", "-seq"], name="accesslog_patient"),
            models.Index(fields=["at"], name="accesslog_at"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.reader_username} {self.case_ref}"

    def delete(self, *args, **kwargs):
        if self.at > timezone.now() - ACCESS_LOG_RETENTION:
            raise PermissionError("access log entries are kept at least 183 days")
        return super().delete(*args, **kwargs)


class AccessLogHead(models.Model):
    """The chain head, one row (id=1). Appenders lock it, so the chain stays linear under
    concurrent writers. ``anchor_*`` is where verification starts after old entries are pruned."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default=GENESIS_HASH)
    anchor_seq = models.BigIntegerField(default=0)
    anchor_hash = models.CharField(max_length=64, default=GENESIS_HASH)
