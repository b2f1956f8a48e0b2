"""GET /api/v1/reports/intervals: response intervals by priority, district and hour, for supervisors."""

from __future__ import annotations

import csv
import io
from datetime import datetime, time, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from dispatch.permissions import IsSupervisor
from dispatch.intervals import CENTRE_ZONE, intervals_report

MAX_SPAN = timedelta(days=92)
CSV_FIELDS = ["dimension", "key", "interval", "start", "end", "count", "p50_s", "p90_s"]


class IntervalsCsvRenderer(BaseRenderer):
    """The report as one table: a row per dimension, group and interval (opens in a spreadsheet)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        out = io.StringIO()
        if not isinstance(data, dict) or "intervals" not in data:
            # An error answer: its fields as a two-column table, still a CSV.
            writer = csv.writer(out)
            writer.writerow(["field", "error"])
            for field_name, message in (data or {}).items():
                writer.writerow([field_name, message])
            return out.getvalue().encode()
        ends = {i["name"]: (i["start"], i["end"]) for i in data["intervals"]}
        writer = csv.DictWriter(out, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for dimension in ("priority", "district", "hour"):
            for row in data[f"by_{dimension}"]:
                start, end = ends[row["interval"]]
                writer.writerow({"dimension": dimension, "start": start, "end": end, **row})
        return out.getvalue().encode()


def _moment(name: str, value: str | None, default: datetime, *, end: bool = False) -> datetime:
    if not value:
        return default
    # A bare date first: parse_datetime would also read "2021-07-20" (as midnight), losing "whole day".
    try:
        day = parse_date(value) if len(value) == 10 else None
        moment = None if day else parse_datetime(value)
    except ValueError:  # well formed but impossible, e.g. 2021-13-40
        day = moment = None
    if moment is None:
        if day is None:
            raise ValidationError({name: f"{name!r} must be an ISO 8601 date or date-time, e.g. 2021-07-20 or 2021-07-20T18:00+08:00."})
        # A bare date is a whole centre day (Beijing time); "to" includes it.
        moment = datetime.combine(day + timedelta(days=1 if end else 0), time.min, tzinfo=CENTRE_ZONE)
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=CENTRE_ZONE)
    return moment


_ROW = inline_serializer(
    "IntervalRow",
    {
        "key": serializers.CharField(help_text="The group: priority (1–4), district name, or local hour (0–23, Beijing time)."),
        "interval": serializers.CharField(help_text="Interval name, see `intervals`."),
        "count": serializers.IntegerField(help_text="Cases with both stamps."),
        "p50_s": serializers.FloatField(help_text="Median, seconds."),
        "p90_s": serializers.FloatField(help_text="90th percentile, seconds."),
    },
    many=True,
)


class IntervalsView(APIView):
    permission_classes = [IsSupervisor]
    renderer_classes = [JSONRenderer, IntervalsCsvRenderer]

    @extend_schema(
        summary="Response intervals (NEMSIS eTimes) by priority, district and hour",
        description=(
            "For cases received in [from, to): each interval between two NEMSIS eTimes stamps "
            "(eTimes.01 call received → .03 unit notified → .05 en route → .06 on scene → .09 left scene → "
            ".11 at destination → .12 transfer of care) with its count, median and 90th percentile in "
            "seconds, grouped by priority, district (where the caller was) and local hour (Beijing time). "
            "Shift supervisors only. `?format=csv` or `Accept: text/csv` gives the same as one CSV table."
        ),
        parameters=[
            OpenApiParameter("from", OpenApiTypes.STR, description="Start (ISO date or date-time; a date is 00:00 Beijing time). Default: 24 hours before `to`."),
            OpenApiParameter("to", OpenApiTypes.STR, description="End, exclusive (a date includes that whole day). Default: now."),
            OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "csv"], description="`csv` for the CSV export."),
        ],
        responses={
            200: inline_serializer(
                "IntervalsReport",
                {
                    "from": serializers.DateTimeField(),
                    "to": serializers.DateTimeField(),
                    "cases": serializers.IntegerField(help_text="Cases received in the window."),
                    "intervals": inline_serializer(
                        "IntervalDefinition",
                        {
                            "name": serializers.CharField(),
                            "start": serializers.CharField(help_text="NEMSIS element of the start stamp, e.g. eTimes.01."),
                            "end": serializers.CharField(help_text="NEMSIS element of the end stamp."),
                            "label": serializers.CharField(),
                        },
                        many=True,
                    ),
                    "by_priority": _ROW,
                    "by_district": _ROW,
                    "by_hour": _ROW,
                },
            ),
            400: OpenApiResponse(description="`from` or `to` is not a date, or the window is empty or longer than 92 days."),
            403: OpenApiResponse(description="Not a shift supervisor."),
        },
    )
    def get(self, request):
        now = timezone.now()
        end = _moment("to", request.query_params.get("to"), now, end=True)
        start = _moment("from", request.query_params.get("from"), end - timedelta(hours=24))
        if start >= end:
            raise ValidationError({"from": "'from' must be before 'to'."})
        if end - start > MAX_SPAN:
            raise ValidationError({"from": "The window may span at most 92 days."})
        response = Response(intervals_report(start=start, end=end))
        if getattr(request, "accepted_renderer", None) and request.accepted_renderer.format == "csv":
            response["Content-Disposition"] = 'attachment; filename="response-intervals.csv"'
        return response
