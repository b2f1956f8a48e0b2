"""Input validation shared by the endpoints: ids, positions, query parameters, and the rule for
reasons a person must give in words (break-glass, grant renewal)."""

from __future__ import annotations

import copy
import math
import unicodedata
from datetime import datetime, time, timedelta, tzinfo

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from dispatch import geo
from dispatch.models import Crs, LocationSource
from dispatch.services import Fix


# Ids are 64-bit database keys: a larger number is malformed, not merely unknown.
MAX_ID = 2**63 - 1


class IdField(serializers.IntegerField):
    """A database id in a request body: 1 to MAX_ID."""

    def __init__(self, **kwargs):
        super().__init__(min_value=1, max_value=MAX_ID, **kwargs)


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


class FieldsBuiltOnce:
    """For input serializers on a hot path (the tap): DRF deep-copies every declared field for each
    instance, re-running each field's constructor, which cost the tap more than validating. Here the
    fields are built once per class and each instance binds shallow copies of them: binding sets a
    field's parent and name on the copy only, and validation leaves the shared parts (choices,
    validators, messages) as it found them."""

    def get_fields(self):
        cls = type(self)
        built = cls.__dict__.get("_fields_built_once")
        if built is None:
            built = super().get_fields()
            cls._fields_built_once = built
        return {name: copy.copy(field) for name, field in built.items()}


class FixInputSerializer(FieldsBuiltOnce, serializers.Serializer):
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

    def validate(self, attrs):
        attrs = super().validate(attrs)
        lat, lon, crs = attrs["lat"], attrs["lon"], attrs["crs"]
        if crs != Crs.WGS84 and not geo.near_china(lat, lon):
            raise serializers.ValidationError(
                {"crs": [f"{crs} is a datum of maps of China and this point is far outside China; send it as wgs84."]}
            )
        # Validate what will be stored, not what was sent: a conversion can push an in-range
        # input out of range, and a stored point outside WGS-84 breaks every later distance.
        wgs_lat, wgs_lon = geo.to_wgs84(lat, lon, crs)
        if not geo.is_valid_point(wgs_lat, wgs_lon):
            problem = f"Converted from {crs} this is not a valid WGS-84 point ({wgs_lat:.6f}, {wgs_lon:.6f})."
            raise serializers.ValidationError({"lat": [problem], "lon": [problem]})
        self._wgs84 = (wgs_lat, wgs_lon)
        return attrs

    def to_fix(self) -> Fix:
        data = self.validated_data
        lat, lon = self._wgs84
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


# A reason someone must give before reading health data is read later by a reviewer and by the
# patient: it has to say something. The browser form's minlength uses the same number.
REASON_MIN_LENGTH = 10
REASON_MIN_LETTERS = 5
REASON_MAX_LENGTH = 500


def validated_body(serializer_class: type[serializers.Serializer], request) -> serializers.Serializer:
    """The request's body, a JSON object, validated by ``serializer_class``; a 400 naming the field
    (or saying the body is no object) otherwise."""
    if not isinstance(request.data, dict):
        raise ValidationError({"non_field_errors": ["Send a JSON object."]})
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer


def validate_reason_words(value: str) -> str:
    """A reason of words: at least REASON_MIN_LENGTH characters, at least REASON_MIN_LETTERS of
    them letters (any script: Latin, CJK...), not one character repeated, no control characters.
    Returns it stripped; raises ValidationError (which DRF names after the field it validates)."""
    if not isinstance(value, str):
        raise serializers.ValidationError("Give the reason as text.")
    text = value.strip()
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in text):
        raise serializers.ValidationError("The reason contains control characters.")
    if len(text) > REASON_MAX_LENGTH:
        raise serializers.ValidationError(f"Keep the reason to at most {REASON_MAX_LENGTH} characters.")
    letters = [ch for ch in text if ch.isalpha()]
    if len(text) < REASON_MIN_LENGTH or len(letters) < REASON_MIN_LETTERS:
        raise serializers.ValidationError(
            f"Say why in words: at least {REASON_MIN_LENGTH} characters, {REASON_MIN_LETTERS} or more of them letters "
            "(e.g. \"unconscious, no one to consent\")."
        )
    if len({ch.casefold() for ch in letters}) < 3:
        raise serializers.ValidationError("Say why in words, not a repeated character.")
    return text


# --- query parameters --------------------------------------------------------------------------
# Each refuses with a 400 naming the parameter, the same way DRF names a body field.


def _refuse(name: str, message: str):
    raise ValidationError({name: [message]})


def int_param(request, name: str, *, default: int | None, low: int, high: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        _refuse(name, "A whole number is required.")
    if not low <= value <= high:
        _refuse(name, f"Use a number from {low} to {high}.")
    return value


def float_param(request, name: str, *, low: float, high: float) -> float:
    """A required number."""
    try:
        value = float(request.query_params.get(name))
    except (TypeError, ValueError):
        _refuse(name, "A number is required.")
    if not low <= value <= high:  # also refuses NaN
        _refuse(name, f"Use a number from {low} to {high}.")
    return value


def flag_param(request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in {"1", "true", "yes"}


def moment_param(
    request, name: str, *, default: datetime, local_zone: tzinfo | None = None, day_end: bool = False
) -> datetime:
    """An ISO 8601 instant, always aware. With ``local_zone`` a bare local time is read in that zone
    and a bare date is that day's midnight there (the next midnight with ``day_end``, so that "to" a
    date includes the day). Without one both are refused: a bare local time is ambiguous."""
    raw = (request.query_params.get(name) or "").strip()
    if not raw:
        return default
    day = moment = None
    try:
        # A bare date first: parse_datetime would also read "2021-07-20" (as midnight), losing "whole day".
        day = parse_date(raw) if local_zone is not None and len(raw) == 10 else None
        moment = None if day else parse_datetime(raw)
    except ValueError:  # well formed but impossible, e.g. 2021-13-40
        day = moment = None
    if day is not None:
        return datetime.combine(day + timedelta(days=1 if day_end else 0), time.min, tzinfo=local_zone)
    if moment is None:
        _refuse(
            name,
            "Give an ISO 8601 date or date and time, e.g. 2021-07-20 or 2021-07-20T18:00+08:00."
            if local_zone is not None
            else "Give an ISO 8601 date and time, e.g. 2026-12-02T00:00:00+08:00.",
        )
    if timezone.is_naive(moment):
        if local_zone is None:
            _refuse(name, "Include a UTC offset (e.g. +08:00 or Z): a bare local time is ambiguous.")
        moment = moment.replace(tzinfo=local_zone)
    return moment
