"""The virtual clock of a replay.

Every service reads the time once through ``django.utils.timezone.now()`` and stamps with it. A
replay of 56 surge hours cannot wait 56 hours, so for its duration ``timezone.now`` answers the
simulation's time instead: the services run unchanged and record exactly the stamps they would
have recorded at that moment. Patched on the module attribute (services call ``timezone.now()``,
looked up at each call); only inside the ``virtual_time`` block, and put back however it ends.
It is process-wide, which is why only the replay command (a process of its own) and tests use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.utils import timezone


class VirtualClock:
    def __init__(self, epoch: datetime):
        self.epoch = epoch
        self.seconds = 0.0

    def now(self) -> datetime:
        return self.epoch + timedelta(seconds=self.seconds)

    def set(self, seconds: float) -> None:
        self.seconds = seconds


@contextmanager
def virtual_time(clock: VirtualClock) -> Iterator[VirtualClock]:
    real_now = timezone.now
    timezone.now = clock.now
    try:
        yield clock
    finally:
        timezone.now = real_now
