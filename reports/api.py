"""GET /api/v1/reports/intervals: response intervals by priority, district and hour, for supervisors."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from dispatch.inputs import moment_param
from dispatch.intervals import CENTRE_ZONE, intervals_report
from dispatch.permissions import IsSupervisor

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
            for field_name, messages in (data or {}).items():
                writer.writerow([field_name, " ".join(messages) if isinstance(messages, list) else messages])
            return out.getvalue().encode()
        ends = {i["name"]: (i["start"], i["end"]) for i in data["intervals"]}
        writer = csv.DictWriter(out, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for dimension in ("priority", "district", "hour"):
            for row in data[f"by_{dimension}"]:
                start, end = ends[row["interval"]]
                writer.writerow({"dimension": dimension, "start": start, "end": end, **row})
        return out.getvalue().encode()


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
        # A bare date is a whole centre day (Beijing time); "to" a date includes it.
        end = moment_param(request, "to", default=now, local_zone=CENTRE_ZONE, day_end=True)
        start = moment_param(request, "from", default=end - timedelta(hours=24), local_zone=CENTRE_ZONE)
        if start >= end:
            raise ValidationError({"from": ["'from' must be before 'to'."]})
        if end - start > MAX_SPAN:
            raise ValidationError({"from": [f"The window may span at most {MAX_SPAN.days} days."]})
        response = Response(intervals_report(start=start, end=end))
        if getattr(request, "accepted_renderer", None) and request.accepted_renderer.format == "csv":
            response["Content-Disposition"] = 'attachment; filename="response-intervals.csv"'
        return response
