"""Response intervals named after NEMSIS eTimes, and their percentiles. One computation for the
reports API, the reports page and the replay's summary."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from django.utils import timezone

# name -> (from stamp, to stamp, eTimes element of each end, label)
INTERVALS: dict[str, tuple[str, str, str, str, str]] = {
    "call_to_notified": ("received_at", "notified_at", "eTimes.01", "eTimes.03", "Tap → unit notified"),
    "notified_to_en_route": ("notified_at", "en_route_at", "eTimes.03", "eTimes.05", "Notified → en route"),
    "en_route_to_on_scene": ("en_route_at", "on_scene_at", "eTimes.05", "eTimes.06", "En route → on scene"),
    "call_to_on_scene": ("received_at", "on_scene_at", "eTimes.01", "eTimes.06", "Tap → on scene"),
    "on_scene_to_left_scene": ("on_scene_at", "left_scene_at", "eTimes.06", "eTimes.09", "On scene → left scene"),
    "left_scene_to_destination": ("left_scene_at", "at_destination_at", "eTimes.09", "eTimes.11", "Left scene → at hospital"),
    "destination_to_transfer": ("at_destination_at", "transfer_of_care_at", "eTimes.11", "eTimes.12", "At hospital → handed over"),
}
STAMPS = sorted({f for spec in INTERVALS.values() for f in spec[:2]})


def percentile(values: list[float], share: float) -> float | None:
    """The value below which ``share`` (a whole percent: 0.5, 0.9, 0.99) of ``values`` lie, linear
    between closest ranks (numpy's default, statistics' "inclusive"); None for no values."""
    if not values:
        return None
    if len(values) == 1:
        return float(values[0])  # statistics.quantiles wants two points before Python 3.13
    return statistics.quantiles(values, n=100, method="inclusive")[round(share * 100) - 1]


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


@dataclass(frozen=True)
class Summary:
    count: int
    p50_s: float | None
    p90_s: float | None
    max_s: float | None

    @classmethod
    def of(cls, values: list[float]) -> Summary:
        return cls(len(values), _round(percentile(values, 0.5)), _round(percentile(values, 0.9)), _round(max(values, default=None)))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def interval_rows(cases: Iterable[dict], *, key) -> list[dict]:
    """Per group (``key(case)``) and interval: count, p50, p90. ``cases`` are dicts of stamps."""
    groups: dict[object, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for case in cases:
        group = key(case)
        for name, (start, end, *_rest) in INTERVALS.items():
            value = seconds_between(case.get(start), case.get(end))
            if value is not None and value >= 0:
                groups[group][name].append(value)
    rows = []
    for group in sorted(groups, key=lambda g: (g is None, str(g) if not isinstance(g, int) else f"{g:06d}")):
        for name in INTERVALS:
            values = groups[group].get(name, [])
            if values:
                summary = Summary.of(values)
                rows.append({"key": group, "interval": name, "count": summary.count, "p50_s": summary.p50_s, "p90_s": summary.p90_s})
    return rows


def district_of(lat: float, lon: float) -> str:
    from dispatch.geocoding import gazetteer

    district = gazetteer().district_at(lat, lon)
    return district.name_en if district else "Outside the districts"


# Storage is UTC; the centre's day (and its busy hours) runs on Beijing time.
CENTRE_ZONE = ZoneInfo("Asia/Shanghai")


def local_hour(moment: datetime) -> int:
    return timezone.localtime(moment, CENTRE_ZONE).hour


def intervals_report(*, start: datetime, end: datetime) -> dict:
    """Cases received in [start, end): intervals by priority, district and local hour."""
    from dispatch.models import Case

    cases = list(
        Case.objects.filter(received_at__gte=start, received_at__lt=end).values("priority", "lat", "lon", *STAMPS)
    )
    for case in cases:
        case["district"] = district_of(case["lat"], case["lon"])
        case["hour"] = local_hour(case["received_at"])
    return {
        "from": start,
        "to": end,
        "cases": len(cases),
        "intervals": [
            {"name": name, "start": spec[2], "end": spec[3], "label": spec[4]} for name, spec in INTERVALS.items()
        ],
        "by_priority": interval_rows(cases, key=lambda c: c["priority"]),
        "by_district": interval_rows(cases, key=lambda c: c["district"]),
        "by_hour": interval_rows(cases, key=lambda c: c["hour"]),
    }
