"""manage.py generate_archives N --out FILE.jsonl - realistic synthetic archives."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from health_records import synthetic


class Command(BaseCommand):
    help = "Write N realistic synthetic Zhengzhou health archives (valid IDs, plausible names, allergies, medications) as JSON Lines."

    def add_arguments(self, parser):
        parser.add_argument("n", type=int, help="How many archives")
        parser.add_argument("--out", required=True, help="Output .jsonl path")
        parser.add_argument("--seed", type=int, default=120, help="Random seed: the same seed gives the same file")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, n: int, out: str, seed: int, no_progress: bool, **options):
        if not 0 <= n <= 100_000_000:
            raise CommandError("N must be between 0 and 100,000,000")
        with tqdm(total=n, unit=" archives", unit_scale=True, disable=no_progress, file=self.stderr._out) as bar:
            synthetic.write_jsonl(out, n, seed=seed, progress=bar.update)
        self.stdout.write(f"wrote {n} archives to {out} (seed {seed})")
