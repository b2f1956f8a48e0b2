"""Citizen-typed identifiers become claims; grants remember their case stage, renewals and the
read already logged.

Data: an archive a citizen wrote themselves and that never came from the health platform holds
identifiers nobody verified. They move from the unique (verified) blind indexes to the claimed
ones, so they no longer block an import of the real person's archive. Archives with an imported
past keep their verified indexes (the platform vouched for them) and also get the claim.
"""

from __future__ import annotations

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

BATCH = 2000


def claims_forwards(apps, schema_editor):
    Archive = apps.get_model("health_records", "Archive")
    ArchiveVersion = apps.get_model("health_records", "ArchiveVersion")
    imported_before = set(
        ArchiveVersion.objects.filter(source="import").values_list("archive_id", flat=True).distinct()
    )
    rows = Archive.objects.filter(source="citizen").only("pk", "national_id_bidx", "phone_bidx").order_by("pk")
    last = None
    while True:
        page = rows if last is None else rows.filter(pk__gt=last)
        batch = list(page[:BATCH])
        if not batch:
            break
        for row in batch:
            row.claimed_national_id_bidx, row.claimed_phone_bidx = row.national_id_bidx, row.phone_bidx
            if row.pk not in imported_before:
                row.national_id_bidx = row.phone_bidx = None
        Archive.objects.bulk_update(
            batch, ["claimed_national_id_bidx", "claimed_phone_bidx", "national_id_bidx", "phone_bidx"]
        )
        last = batch[-1].pk


def claims_backwards(apps, schema_editor):
    # Best effort: a claim goes back to the unique index only where nobody else holds it.
    Archive = apps.get_model("health_records", "Archive")
    for row in Archive.objects.filter(source="citizen", national_id_bidx__isnull=True).iterator():
        changed = []
        for claimed, verified in (("claimed_national_id_bidx", "national_id_bidx"), ("claimed_phone_bidx", "phone_bidx")):
            value = getattr(row, claimed)
            if value is not None and not Archive.objects.filter(**{verified: value}).exists():
                setattr(row, verified, value)
                changed.append(verified)
        if changed:
            row.save(update_fields=changed)


class Migration(migrations.Migration):

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("health_records", "0002_access_log_keyed_chain"),
    ]

    operations = [
        migrations.AddField(
            model_name="archive",
            name="claimed_national_id_bidx",
            field=models.BinaryField(blank=True, max_length=32, null=True),
        ),
        migrations.AddField(
            model_name="archive",
            name="claimed_phone_bidx",
            field=models.BinaryField(blank=True, max_length=32, null=True),
        ),
        migrations.AddIndex(
            model_name="archive",
            index=models.Index(
                fields=["claimed_national_id_bidx"], name="archive_claimed_nid",
                condition=models.Q(claimed_national_id_bidx__isnull=False),
            ),
        ),
        migrations.AddIndex(
            model_name="archive",
            index=models.Index(
                fields=["claimed_phone_bidx"], name="archive_claimed_phone",
                condition=models.Q(claimed_phone_bidx__isnull=False),
            ),
        ),
        migrations.AddField(
            model_name="accessgrant",
            name="stage",
            field=models.CharField(blank=True, default="", max_length=32),
        ),
        migrations.AddField(
            model_name="accessgrant",
            name="renewal_reason",
            field=models.CharField(blank=True, max_length=500),
        ),
        migrations.AddField(
            model_name="accessgrant",
            name="renewed_by",
            field=models.ForeignKey(
                blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="accessgrant",
            name="renewed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="accessgrant",
            name="logged_read",
            field=models.CharField(blank=True, default="", max_length=96),
        ),
        migrations.RunPython(claims_forwards, claims_backwards, elidable=False),
    ]
