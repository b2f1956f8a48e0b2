"""Dispatcher endpoints for calls taken by phone and for addresses.

``POST /api/v1/dispatch/cases`` creates a case for a caller on the phone, placed by a typed address
(forward geocoding; the console offers the candidates of ``GET /api/v1/geocode``) or by a point
picked on the map. ``GET /api/v1/geocode/reverse`` names a point.
"""

from __future__ import annotations

import re

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from dispatch import geo, geocoding, idempotency, services
from dispatch.api import DispatchCaseListView
from dispatch.inputs import StrictFloatField, float_param, validated_body
from dispatch.models import Complaint, Crs, LocationSource
from dispatch.permissions import IsDispatcher
from dispatch.phones import normalize_caller_phone
from dispatch.serializers import CaseSerializer, staff_case_payload
from dispatch.triage_api import TriageAnswersSerializer

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class PhonedInCallSerializer(serializers.Serializer):
    caller_phone = serializers.CharField(
        max_length=32, help_text="The caller's number: a mainland mobile (as registration) or a fixed line."
    )
    caller_name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    address = serializers.CharField(
        max_length=300,
        required=False,
        allow_blank=True,
        default="",
        help_text="What the caller said. Without lat/lon the best forward-geocoding candidate places the case.",
    )
    lat = StrictFloatField(min_value=-90, max_value=90, required=False)
    lon = StrictFloatField(min_value=-180, max_value=180, required=False)
    crs = serializers.ChoiceField(choices=Crs.choices, default=Crs.WGS84)
    accuracy_m = StrictFloatField(min_value=0, max_value=100_000, required=False, allow_null=True)
    complaint = serializers.ChoiceField(choices=Complaint.choices, default=Complaint.UNKNOWN)
    note = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")
    for_self = serializers.BooleanField(default=True, help_text="False when the caller rings for someone else.")
    triage = TriageAnswersSerializer(required=False, help_text="The caller's answers to the first questions; they raise the priority.")
    silent = serializers.BooleanField(default=False, help_text="The caller cannot speak (e.g. a text relay): text, do not call back.")

    def validate_caller_phone(self, value: str) -> str:
        phone = normalize_caller_phone(value)
        if phone is None:
            raise serializers.ValidationError(
                "Enter a mainland China mobile (e.g. 13800138000) or a fixed line with its area code (e.g. 0371-66668888)."
            )
        return phone

    def validate_caller_name(self, value: str) -> str:
        if _CONTROL.search(value):
            raise serializers.ValidationError("The name contains control characters.")
        return value.strip()

    def validate_address(self, value: str) -> str:
        if _CONTROL.search(value):
            raise serializers.ValidationError("The address contains control characters.")
        return value.strip()

    def validate(self, attrs):
        attrs = super().validate(attrs)
        has_lat, has_lon = "lat" in attrs, "lon" in attrs
        if has_lat != has_lon:
            missing = "lon" if has_lat else "lat"
            raise serializers.ValidationError({missing: ["Give lat and lon together."]})
        if has_lat:
            lat, lon, crs = attrs["lat"], attrs["lon"], attrs["crs"]
            if crs != Crs.WGS84 and not geo.near_china(lat, lon):
                raise serializers.ValidationError({"crs": [f"{crs} is a datum of maps of China; this point is far outside China."]})
            wgs_lat, wgs_lon = geo.to_wgs84(lat, lon, crs)
            if not geo.is_valid_point(wgs_lat, wgs_lon):
                raise serializers.ValidationError({"lat": ["Not a valid WGS-84 point after conversion."]})
            attrs["point"] = (wgs_lat, wgs_lon, LocationSource.MANUAL)
            return attrs
        if not attrs["address"]:
            raise serializers.ValidationError(
                {"address": ["Give the caller's address, or lat and lon (a point picked on the map)."]}
            )
        candidates = geocoding.forward(attrs["address"], limit=1)
        if not candidates:
            raise serializers.ValidationError(
                {"address": ["No known place matches this address: pick the place on the map, or try a nearby landmark."]}
            )
        attrs["point"] = (candidates[0]["lat"], candidates[0]["lon"], LocationSource.MANUAL)
        attrs["crs"] = Crs.WGS84
        return attrs


class GeocodeCandidateSerializer(serializers.Serializer):
    label = serializers.CharField()
    lat = serializers.FloatField()
    lon = serializers.FloatField()
    district = serializers.CharField(allow_null=True)
    district_en = serializers.CharField(allow_null=True, help_text="`district` in English, for pages shown in English.")


class ReversePlaceSerializer(serializers.Serializer):
    label = serializers.CharField(allow_null=True, help_text="District and nearest known place (Chinese names).")
    label_en = serializers.CharField(allow_null=True)
    district = serializers.CharField(allow_null=True)
    district_en = serializers.CharField(allow_null=True)
    place = serializers.CharField(allow_null=True)
    distance_m = serializers.IntegerField(allow_null=True)



class DispatchCasesView(DispatchCaseListView):
    """The dispatcher queue (GET, unchanged) plus calls taken by phone (POST)."""

    @extend_schema(
        summary="A call taken by phone: a case placed by address or by a point on the map",
        operation_id="v1_dispatch_cases_create",
        description=(
            "Same lifecycle, events (`case.created`) and streams as a tap. The case has no citizen account, so no "
            "health archive (its summary says `no_account`). Send an `Idempotency-Key` header to make a retried "
            "create return the first case (`Idempotent-Replayed: true`)."
        ),
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
        request=PhonedInCallSerializer,
        responses={
            201: CaseSerializer,
            400: OpenApiResponse(description="A field is invalid (the body names it), or the address matches no place."),
            422: OpenApiResponse(description="Idempotency-Key reused with a different body."),
        },
    )
    def post(self, request):
        key = idempotency.key_from(request)
        data = validated_body(PhonedInCallSerializer, request)
        values = data.validated_data
        lat, lon, source = values["point"]
        case, created = services.case_create_phoned_in(
            taken_by=request.user,
            caller_phone=values["caller_phone"],
            caller_name=values["caller_name"],
            reported_address=values["address"],
            fix=services.Fix(lat=lat, lon=lon, crs=values["crs"], accuracy_m=values.get("accuracy_m"), source=source),
            for_self=values["for_self"],
            complaint=values["complaint"],
            note=values["note"],
            triage=values.get("triage"),
            silent=values["silent"],
            idempotency_key=key,
            fingerprint=idempotency.fingerprint(request.data),
        )
        response = Response(staff_case_payload(case), status=status.HTTP_201_CREATED)
        if not created:
            response["Idempotent-Replayed"] = "true"
        return response


class GeocodeView(APIView):
    permission_classes = [IsDispatcher]

    @extend_schema(
        summary="Places matching a typed address (GEOCODER: offline gazetteer or a self-hosted Nominatim)",
        parameters=[OpenApiParameter("q", str, required=True, description="What the caller said, Chinese or English.")],
        responses=GeocodeCandidateSerializer(many=True),
    )
    def get(self, request):
        query = (request.query_params.get("q") or "").strip()
        if not query:
            raise ValidationError({"q": ["Type part of an address or a place name."]})
        if len(query) > 200 or _CONTROL.search(query):
            raise ValidationError({"q": ["Use at most 200 printable characters."]})
        return Response(geocoding.forward(query))


class ReverseGeocodeView(APIView):
    permission_classes = [IsDispatcher]

    @extend_schema(
        summary="A human place for a WGS-84 point: district and nearest known place",
        parameters=[
            OpenApiParameter("lat", float, required=True),
            OpenApiParameter("lon", float, required=True),
        ],
        responses=ReversePlaceSerializer,
    )
    def get(self, request):
        lat = float_param(request, "lat", low=-90.0, high=90.0)
        lon = float_param(request, "lon", low=-180.0, high=180.0)
        return Response(geocoding.reverse(lat, lon))
