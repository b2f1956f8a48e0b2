"""manage.py verify_access_log - check the access log's keyed chain against its signed checkpoints."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from health_records import audit

EXIT_INTACT, EXIT_TAMPERED, EXIT_CANNOT_VERIFY = 0, 1, 2


class Command(BaseCommand):
    help = (
        "Verify the archive access log: the HMAC-SHA256 chain from the anchor (ACCESS_LOG_HMAC_KEY), the Ed25519 "
        "signature of every checkpoint in ACCESS_LOG_CHECKPOINT_DIR (ACCESS_LOG_VERIFY_KEY, the public key, is "
        "enough: an auditor needs no signing key), that every checkpoint's (seq, hash) is in the chain (a rewrite "
        "before it is caught), and that the chain reaches the newest checkpoint (a cut tail is caught). Exit status: "
        "0 intact; 1 tampered (names the first bad entry or the checkpoint that disagrees); 2 cannot verify (a key or "
        "the checkpoint directory is missing)."
    )

    def handle(self, *args, **options):
        try:
            result = audit.verify_chain()
        except audit.CannotVerify as exc:
            raise CommandError(f"cannot verify the access log: {exc}", returncode=EXIT_CANNOT_VERIFY) from None
        if not result.ok:
            raise CommandError(result.describe(), returncode=EXIT_TAMPERED)
        self.stdout.write(result.describe())
