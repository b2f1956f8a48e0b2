"""manage.py verify_access_log - check the hash chain of the archive access log."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from health_records import audit


class Command(BaseCommand):
    help = "Walk the access log's hash chain; name the first broken entry and exit non-zero if any is found."

    def handle(self, *args, **options):
        result = audit.verify_chain()
        if not result.ok:
            raise CommandError(result.describe(), returncode=2)
        self.stdout.write(result.describe())
