"""manage.py import_archives FILE.jsonl - bulk import from the city health platform."""

from __future__ import annotations

import os
import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from health_records import importer


class Command(BaseCommand):
    help = (
        "Import health archives from a JSON Lines file (one archive per line, the API's fields plus an optional "
        "verified_at; national_id required). Streams any size, encrypts, writes in batches (COPY on PostgreSQL), "
        "upserts by the national-ID blind index so a re-run changes nothing, and reports bad rows by line number "
        "without stopping. Imported archives have no owner until linked to a verified citizen account."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="Path of the .jsonl file")
        parser.add_argument("--batch-size", type=int, default=2000, help="Archives per transaction (default 2000)")
        parser.add_argument(
            "--workers", type=int, default=min(os.cpu_count() or 2, 64),
            help="Processes that validate and encrypt in parallel while this one writes to the database "
            "(0: do it all in this process). Default: one per core.",
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar")
        parser.add_argument("--fail-on-bad-rows", action="store_true", help="Exit with status 3 if any row was bad")

    def handle(self, *args, file: str, batch_size: int, workers: int, no_progress: bool, fail_on_bad_rows: bool, **options):
        if not os.path.isfile(file):
            raise CommandError(f"{file}: no such file")
        if not 1 <= batch_size <= 50000:
            raise CommandError("--batch-size must be between 1 and 50000")
        if not 0 <= workers <= 64:
            raise CommandError("--workers must be between 0 and 64")
        total = importer.count_lines(file)
        bar = tqdm(total=total, unit=" archives", unit_scale=True, disable=no_progress, file=self.stderr._out, smoothing=0.1)

        def report(line: int, messages: list[str]) -> None:
            for message in messages:
                bar.write(f"line {line}: {message}", file=self.stderr._out)

        started = time.perf_counter()
        try:
            stats = importer.import_file(file, batch_size=batch_size, workers=workers, progress=bar.update, report=report)
        finally:
            bar.close()
        elapsed = time.perf_counter() - started
        rate = stats.lines / elapsed if elapsed else 0.0
        self.stdout.write(f"{stats.describe()} in {elapsed:.1f} s ({rate:,.0f} lines/s)")
        if stats.bad and fail_on_bad_rows:
            raise CommandError(f"{stats.bad} bad rows", returncode=3)
