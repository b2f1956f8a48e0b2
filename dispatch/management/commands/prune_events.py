"""Delete event rows older than the retention window (EVENT_RETENTION_HOURS).

Run it from cron or a systemd timer, e.g. hourly. Stream counters are kept: a console that resumes
from a number older than the retained log is answered with ``resync`` (it refetches the snapshot),
and new events keep counting where the stream left off, never reusing a number.

The retained log of each stream stays a suffix (no holes): an event's ``at`` is taken when its
change begins, its ``seq`` when it writes, so two writers can commit seq N with a later ``at``
than seq N+1. After the time-based pass, anything below a deleted number of the same stream goes too.
Deletes run in batches, each its own short transaction, so writers are never held up for long.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from dispatch.models import Event

STREAMS_PER_STATEMENT = 200


def prune_events(*, older_than: timedelta, batch_size: int = 5000) -> int:
    """Delete events older than ``older_than``; returns how many rows went."""
    cutoff = timezone.now() - older_than
    deleted = 0
    horizon: dict[str, int] = {}
    while True:
        batch = list(
            Event.objects.filter(at__lt=cutoff).order_by("pk").values_list("pk", "stream", "seq")[:batch_size]
        )
        if not batch:
            break
        with transaction.atomic():
            deleted += Event.objects.filter(pk__in=[pk for pk, _, _ in batch]).delete()[0]
        for _, stream, seq in batch:
            if seq > horizon.get(stream, 0):
                horizon[stream] = seq
    # Stragglers: a younger ``at`` under an older ``seq`` (see the module docstring).
    streams = sorted(horizon.items())
    for start in range(0, len(streams), STREAMS_PER_STATEMENT):
        condition = Q()
        for stream, upto in streams[start : start + STREAMS_PER_STATEMENT]:
            condition |= Q(stream=stream, seq__lt=upto)
        with transaction.atomic():
            deleted += Event.objects.filter(condition).delete()[0]
    return deleted


class Command(BaseCommand):
    help = "Delete events older than EVENT_RETENTION_HOURS (stream counters are kept; old resumes get resync)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--hours",
            type=float,
            default=None,
            help=f"Retention in hours (default: EVENT_RETENTION_HOURS = {settings.EVENT_RETENTION_HOURS}).",
        )
        parser.add_argument("--batch-size", type=int, default=5000, help="Rows deleted per transaction (default 5000).")

    def handle(self, *args, hours, batch_size, **options):
        hours = settings.EVENT_RETENTION_HOURS if hours is None else hours
        if hours < 0:
            raise CommandError("--hours must be 0 or more")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        deleted = prune_events(older_than=timedelta(hours=hours), batch_size=batch_size)
        self.stdout.write(f"Deleted {deleted} event(s) older than {hours:g} h.")
