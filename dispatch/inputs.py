"""Input validation shared by the endpoints: ids, positions, query parameters, and the rule for
reasons a person must give in words (break-glass, grant renewal)."""

from __future__ import annotations

import copy
import math
import unicodedata
from datetime import datetime, time, timedelta, tzinfo
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import MaxLengthValidator, MaxValueValidator, MinValueValidator, ProhibitNullCharactersValidator
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.fields import SkipField
from rest_framework.validators import ProhibitSurrogateCharactersValidator

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
        return {name: _shallow_copy(field) for name, field in built.items()}


def _shallow_copy(field):
    # What copy.copy gives a DRF field (a new instance sharing the attribute values), without the
    # pickle protocol's dozen calls on the way: it was most of what binding a request's fields cost.
    if hasattr(type(field), "__copy__"):
        return copy.copy(field)
    twin = object.__new__(type(field))
    twin.__dict__.update(field.__dict__)
    return twin


class PlainBodiesFast:
    """For input serializers on a hot path (the tap, a unit's GPS fix): a body of plain JSON values
    is read by a plan built once per class instead of DRF's per-field machinery (about 60 Python
    calls a field: empty-value checks, validators as objects, SkipField). The plan accepts only
    what it can answer exactly as DRF would; anything else (a wrong type, a value out of range,
    text with a NUL, a field kind it does not know being present) goes to DRF's own
    ``to_internal_value``, so every refusal and its wording stay DRF's.
    tests/test_plain_bodies_fast.py compares the two on thousands of bodies."""

    def to_internal_value(self, data):
        if type(data) is dict and not getattr(self.root, "partial", False):
            plan = type(self).__dict__.get("_plain_body_plan")
            if plan is None:
                plan = type(self)._plain_body_plan = _plain_body_plan(self)
            attrs = _read_plainly(self, plan, data)
            if attrs is not None:
                return attrs
        return super().to_internal_value(data)


# One step per writable field: (name, kind, limits, required, default, allow_null, validate method
# or None). The kinds read a present value; a field of any other kind is handled only when absent.
_FLOAT, _CHOICE, _TEXT, _BOOL, _OTHER = "float", "choice", "text", "bool", "other"


def _plain_body_plan(serializer: serializers.Serializer) -> tuple:
    plan = []
    for field in serializer._writable_fields:
        kind, limits = _plain_kind(field) if field.source == field.field_name else (_OTHER, None)
        # A default to be called (or read from context) is DRF's to give: such a field must be sent.
        required = field.required or (field.default is not serializers.empty and callable(field.default))
        validate = f"validate_{field.field_name}"
        validate = validate if callable(getattr(type(serializer), validate, None)) else None
        plan.append((field.field_name, kind, limits, required, field.default, field.allow_null, validate))
    return tuple(plan)


def _plain_kind(field: serializers.Field) -> tuple[str, Any]:
    """How the plan reads a present value of this field, and with which limits; _OTHER: DRF reads it."""
    if type(field) is StrictFloatField:
        bounds = ((MaxValueValidator, field.max_value), (MinValueValidator, field.min_value))
        if _validators_are(field, {(check, limit) for check, limit in bounds if limit is not None}):
            return _FLOAT, (field.min_value, field.max_value)
    elif type(field) is serializers.ChoiceField:
        if not field.validators:
            return _CHOICE, (field.allow_blank, dict(field.choice_strings_to_values))
    elif type(field) is serializers.CharField:
        # DRF's own three: the length of the stripped text, no NUL, no surrogate.
        expected = {(ProhibitNullCharactersValidator, None), (ProhibitSurrogateCharactersValidator, None)}
        if field.max_length is not None:
            expected.add((MaxLengthValidator, field.max_length))
        if field.trim_whitespace and field.min_length is None and _validators_are(field, expected):
            return _TEXT, (field.allow_blank, field.max_length)
    elif type(field) is serializers.BooleanField:
        if not field.validators:
            return _BOOL, None
    return _OTHER, None


def _validators_are(field, expected: set[tuple[type, Any]]) -> bool:
    """The field's validators are exactly these (class, limit) pairs (limit None: one without)."""
    actual = {(type(v), getattr(v, "limit_value", None)) for v in field.validators}
    return len(field.validators) == len(expected) and actual == expected


def _read_plainly(serializer, plan: tuple, data: dict) -> dict | None:
    """The validated attrs DRF would give, or None where DRF must answer."""
    attrs = {}
    for name, kind, limits, required, default, allow_null, validate in plan:
        value = data.get(name, serializers.empty)
        if value is serializers.empty:
            if required:
                return None
            if default is serializers.empty:
                continue  # DRF's SkipField: absent from the attrs, and no validate_<name>
            value = default
        elif value is None:
            if not allow_null:
                return None
        elif kind == _FLOAT:
            if type(value) is not float and type(value) is not int:
                return None
            try:
                number = float(value)
            except OverflowError:
                return None
            low, high = limits
            if not math.isfinite(number) or (low is not None and number < low) or (high is not None and number > high):
                return None
            value = number
        elif kind == _CHOICE:
            allow_blank, choices = limits
            if type(value) is not str:
                return None
            if value == "" and allow_blank:
                pass
            elif value in choices:
                value = choices[value]
            else:
                return None
        elif kind == _TEXT:
            allow_blank, max_length = limits
            if type(value) is not str:
                return None
            value = value.strip()
            if value == "":
                if not allow_blank:
                    return None
            elif "\x00" in value or (max_length is not None and len(value) > max_length) or not _encodable(value):
                return None
        elif kind == _BOOL:
            if type(value) is not bool:
                return None
        else:
            return None
        if validate is not None:
            try:
                value = getattr(serializer, validate)(value)
            except (ValidationError, DjangoValidationError, SkipField):
                return None
        attrs[name] = value
    return attrs


def _encodable(text: str) -> bool:
    # ProhibitSurrogateCharactersValidator's rule: no code point in U+D800-U+DFFF, which is
    # exactly what strict UTF-8 refuses to encode.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class FixInputSerializer(PlainBodiesFast, FieldsBuiltOnce, serializers.Serializer):
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
