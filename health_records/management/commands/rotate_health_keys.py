"""manage.py rotate_health_keys - re-wrap every data key under the newest key-encryption key."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from health_records import keys, services
from health_records.crypto import ArchiveCryptoError


class Command(BaseCommand):
    help = (
        "Re-wrap every archive data key (current and past versions) under the primary key of HEALTH_KEYS "
        "(HEALTH_KEY_PRIMARY, or the last listed). Ciphertexts do not change. Online and resumable: run it with the "
        "old and new keys both in HEALTH_KEYS; once it reports nothing left, the old key can be removed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument("--check", action="store_true", help="Only show how many data keys each key id wraps")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, batch_size: int, check: bool, no_progress: bool, **options):
        ring = keys.keyring()
        counts = services.rewrap_pending()
        for kek_id, count in sorted(counts.items()):
            live = "primary" if kek_id == ring.primary_id else ("live" if kek_id in ring.keks else "NOT CONFIGURED")
            self.stdout.write(f"  {kek_id}: {count} data keys ({live})")
        pending = sum(count for kek_id, count in counts.items() if kek_id != ring.primary_id)
        if check:
            self.stdout.write(f"{pending} data keys to re-wrap under {ring.primary_id!r}")
            return
        if not 1 <= batch_size <= 100000:
            raise CommandError("--batch-size must be between 1 and 100000")
        with tqdm(total=pending, unit=" keys", disable=no_progress, file=self.stderr._out) as bar:
            try:
                done = services.rotate_keys(batch_size=batch_size, progress=bar.update)
            except ArchiveCryptoError as exc:
                raise CommandError(f"stopped: archive {exc.archive_id}: {exc} (what was done so far is kept; fix the keys and re-run)") from None
        self.stdout.write(f"re-wrapped {done} data keys under {ring.primary_id!r}")
