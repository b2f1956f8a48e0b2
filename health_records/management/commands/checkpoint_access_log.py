"""manage.py checkpoint_access_log - sign the access log's chain head into the checkpoint directory."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from health_records import audit

EXIT_OK, EXIT_TAMPERED, EXIT_CANNOT = 0, 1, 2


class Command(BaseCommand):
    help = (
        "Write a signed checkpoint (seq, hash, at) of the access log's chain head into ACCESS_LOG_CHECKPOINT_DIR, "
        "after checking the entries added since the newest checkpoint (ACCESS_LOG_HMAC_KEY, ACCESS_LOG_SIGNING_KEY). "
        "Run it every minute in production (cron or a systemd timer): entries newer than the newest checkpoint can "
        "be cut from the log undetected, so this bounds that window to one minute. The directory must be "
        "append-only for the application (e.g. owned by the user running this command, 'chattr +a', or synced "
        "off the host); the database user must not be able to rewrite it. Does nothing when the newest checkpoint "
        "already signs the head. Exit status: 0 written or up to date; 1 refused, the log was tampered with (run "
        "verify_access_log); 2 a key or the directory is missing."
    )

    def handle(self, *args, **options):
        try:
            result = audit.checkpoint_now()
        except audit.CannotVerify as exc:
            raise CommandError(f"cannot checkpoint the access log: {exc}", returncode=EXIT_CANNOT) from None
        if result.tampered:
            raise CommandError(result.message, returncode=EXIT_TAMPERED)
        self.stdout.write(result.message)
