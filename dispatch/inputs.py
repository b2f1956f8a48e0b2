"""Input validation shared by every endpoint that takes a position."""

from __future__ import annotations

import math
from datetime import timedelta

from django.utils import timezone
from rest_framework import serializers

from dispatch import geo
from dispatch.models import Crs, LocationSource
from dispatch.services import Fix


class StrictFloatField(serializers.FloatField):
    """A JSON number, finite: no booleans, no strings, no NaN or Infinity."""

    default_error_messages = {
        "invalid": "A number is required.",
        "not_finite": "Must be a finite number.",
    }

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        try:
            # A JSON integer may have hundreds of digits: too big for a float is not finite.
            finite = math.isfinite(data)
        except OverflowError:
            finite = False
        if not finite:
            self.fail("not_finite")
        return super().to_internal_value(data)


class FixInputSerializer(serializers.Serializer):
    lat = StrictFloatField(min_value=-90, max_value=90)
    lon = StrictFloatField(min_value=-180, max_value=180)
    crs = serializers.ChoiceField(choices=Crs.choices, default=Crs.WGS84)
    accuracy_m = StrictFloatField(min_value=0, max_value=100_000, required=False, allow_null=True)
    altitude_m = StrictFloatField(min_value=-500, max_value=10_000, required=False, allow_null=True)
    floor = serializers.CharField(max_length=16, required=False, allow_blank=True, default="")
    source = serializers.ChoiceField(choices=LocationSource.choices, required=False, allow_blank=True, default="")
    fix_time = serializers.DateTimeField(required=False, allow_null=True, default=None)

    def validate_fix_time(self, value):
        if value is not None and value > timezone.now() + timedelta(minutes=5):
            raise serializers.ValidationError("The fix time is in the future.")
        return value

    def to_fix(self) -> Fix:
        data = self.validated_data
        lat, lon = geo.to_wgs84(data["lat"], data["lon"], data["crs"])
        return Fix(
            lat=lat,
            lon=lon,
            crs=data["crs"],
            accuracy_m=data.get("accuracy_m"),
            altitude_m=data.get("altitude_m"),
            floor=data.get("floor", ""),
            source=data.get("source", ""),
            fix_time=data.get("fix_time"),
        )
