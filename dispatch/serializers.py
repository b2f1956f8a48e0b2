"""Output serializers: one per entity and audience, used by REST snapshots and stream events alike.

The ``*_payload`` functions at the end are the one place each entity's wire form is built: every
REST snapshot and every stream event goes through them, so a console that applies events to a
snapshot ends up equal to a fresh snapshot (tests/test_event_contract.py proves it).
"""

from __future__ import annotations

import math

from django.db import models
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from dispatch.models import UNIT_SERVING_STATUSES, Admission, Ambulance, Case, CaseLocation, Hospital, Station


class FiniteFloatField(serializers.FloatField):
    """A stored float that is not finite (NaN written by hand on PostgreSQL) goes out as null:
    strict JSON cannot carry it, and one bad row must not turn every read of it into a 500."""

    def to_representation(self, value):
        value = super().to_representation(value)
        return value if math.isfinite(value) else None


class ModelSerializer(serializers.ModelSerializer):
    serializer_field_mapping = {**serializers.ModelSerializer.serializer_field_mapping, models.FloatField: FiniteFloatField}


MILESTONE_FIELDS = (
    "received_at",
    "notified_at",
    "en_route_at",
    "on_scene_at",
    "left_scene_at",
    "at_destination_at",
    "transfer_of_care_at",
    "back_in_service_at",
    "cancelled_at",
    "closed_at",
)


class StationSerializer(ModelSerializer):
    class Meta:
        model = Station
        fields = ("id", "code", "name_zh", "name_en", "district", "lat", "lon")


class HospitalSerializer(ModelSerializer):
    class Meta:
        model = Hospital
        fields = ("id", "code", "name_zh", "name_en", "lat", "lon", "capabilities", "ed_status", "ed_free_beds")


class BlankAsNullCharField(serializers.CharField):
    """An optional text column (blank when unknown) goes out as null, as caller_phone does."""

    def __init__(self, **kwargs):
        super().__init__(read_only=True, allow_null=True, **kwargs)

    def to_representation(self, value):
        return super().to_representation(value) if value else None


_UNIT_PHONE_HELP = "The unit's on-board phone (digits; a mobile or a fixed line), or null when none is on record."


class AmbulanceSerializer(ModelSerializer):
    station = serializers.SlugRelatedField(slug_field="code", read_only=True)
    phone = BlankAsNullCharField(help_text=_UNIT_PHONE_HELP)

    class Meta:
        model = Ambulance
        fields = ("id", "call_sign", "station", "level", "status", "phone", "lat", "lon", "position_at", "status_at")


class UnitBriefSerializer(ModelSerializer):
    """The unit inside a staff case or admission: the hospital and the dispatcher ring its phone."""

    phone = BlankAsNullCharField(help_text=_UNIT_PHONE_HELP)

    class Meta:
        model = Ambulance
        fields = ("id", "call_sign", "status", "phone", "lat", "lon", "position_at")


class HospitalBriefSerializer(ModelSerializer):
    class Meta:
        model = Hospital
        fields = ("id", "code", "name_zh", "name_en", "lat", "lon")


class LocationSerializer(ModelSerializer):
    class Meta:
        model = CaseLocation
        fields = ("lat", "lon", "accuracy_m", "altitude_m", "floor", "source", "crs", "fix_time", "received_at")


class AdmissionSerializer(ModelSerializer):
    case = serializers.IntegerField(source="case_id", read_only=True)
    hospital = serializers.IntegerField(source="hospital_id", read_only=True)
    ambulance = UnitBriefSerializer(read_only=True)
    complaint = serializers.CharField(source="case.complaint", read_only=True)
    for_self = serializers.BooleanField(source="case.for_self", read_only=True)
    case_status = serializers.CharField(source="case.status", read_only=True)

    class Meta:
        model = Admission
        fields = (
            "id",
            "case",
            "hospital",
            "ambulance",
            "status",
            "complaint",
            "for_self",
            "case_status",
            "eta_s",
            "eta_at",
            "registration_no",
            "acknowledged_at",
            "opened_at",
            "updated_at",
        )


def live_eta_s(case: Case) -> int | None:
    """Seconds until the case's unit reaches where it is heading now: the scene while dispatched or
    en route, the destination hospital while transporting; None otherwise. Computed from the stored
    positions, so every payload built after the same fix says the same number."""
    from dispatch.models import CaseStatus
    from dispatch.selectors import eta_between

    unit = case.ambulance
    if unit is None:
        return None
    if case.status in (CaseStatus.DISPATCHED, CaseStatus.EN_ROUTE):
        return eta_between(unit.lat, unit.lon, case.lat, case.lon)
    if case.status == CaseStatus.TRANSPORTING and case.hospital is not None:
        return eta_between(unit.lat, unit.lon, case.hospital.lat, case.hospital.lon)
    return None


def live_eta_target(case: Case) -> str | None:
    from dispatch.models import CaseStatus

    if case.ambulance is None:
        return None
    if case.status in (CaseStatus.DISPATCHED, CaseStatus.EN_ROUTE):
        return "scene"
    if case.status == CaseStatus.TRANSPORTING and case.hospital is not None:
        return "hospital"
    return None


class CaseSerializer(ModelSerializer):
    """The staff view of a case (dispatcher, crew of its unit, its hospital). No health data:
    that is added per recipient at delivery time, never stored in an event."""

    # A tap: the citizen account's phone and name; a call taken by phone (no account): as typed.
    caller_phone = serializers.SerializerMethodField()
    caller_name = serializers.SerializerMethodField()
    # Offline reverse geocoding of the latest fix (dispatch.geocoding.place_of: pure, cached).
    address = serializers.SerializerMethodField(help_text="District and nearest known place of the latest fix.")
    district = serializers.SerializerMethodField(help_text="The district (区/县/市) of the latest fix, or null.")
    ambulance = UnitBriefSerializer(read_only=True, allow_null=True)
    hospital = HospitalBriefSerializer(read_only=True, allow_null=True)
    eta_s = serializers.SerializerMethodField(
        help_text="Seconds until the unit reaches the scene (dispatched, en route) or the hospital (transporting); "
        "null otherwise. Updated on the unit's fixes."
    )
    eta_target = serializers.SerializerMethodField(help_text="What eta_s counts down to: scene, hospital or null.")
    admission = serializers.SerializerMethodField(
        help_text="The case's newest admission (status, ETA, the hospital's registration number), or null."
    )

    class Meta:
        model = Case
        fields = (
            "id",
            "status",
            "for_self",
            "complaint",
            "note",
            "caller_phone",
            "caller_name",
            "source",
            "reported_address",
            "address",
            "district",
            "lat",
            "lon",
            "accuracy_m",
            "ambulance",
            "eta_s",
            "eta_target",
            "hospital",
            "cancel_reason",
            *MILESTONE_FIELDS,
            "updated_at",
            "admission",
        )

    def get_eta_s(self, case: Case) -> int | None:
        return live_eta_s(case)

    @extend_schema_field(AdmissionSerializer(allow_null=True))
    def get_admission(self, case: Case) -> dict | None:
        from dispatch.selectors import latest_admission_of_case

        prefetched = getattr(case, "_prefetched_objects_cache", {}).get("admissions")
        if prefetched is not None:
            admission = next(iter(prefetched), None)
        else:
            admission = latest_admission_of_case(case.pk)
        return AdmissionSerializer(admission).data if admission else None

    def get_eta_target(self, case: Case) -> str | None:
        return live_eta_target(case)

    def get_caller_phone(self, case: Case) -> str | None:
        return case.caller.phone if case.caller_id else (case.caller_phone or None)

    def get_caller_name(self, case: Case) -> str:
        return case.caller.first_name if case.caller_id else case.caller_name

    def get_address(self, case: Case) -> str | None:
        from dispatch.geocoding import place_of

        return place_of(case.lat, case.lon)["label"]

    def get_district(self, case: Case) -> str | None:
        from dispatch.geocoding import place_of

        return place_of(case.lat, case.lon)["district"]


class CitizenUnitSerializer(serializers.Serializer):
    """The unit as its caller sees it. Live fields are null once the unit no longer serves the case
    (see UNIT_SERVING_STATUSES): the caller keeps who came, not where that crew is now."""

    id = serializers.IntegerField()
    call_sign = serializers.CharField()
    status = serializers.CharField(allow_null=True)
    lat = serializers.FloatField(allow_null=True)
    lon = serializers.FloatField(allow_null=True)
    position_at = serializers.DateTimeField(allow_null=True)


class CitizenCaseSerializer(ModelSerializer):
    """What the caller sees: who is coming, from where, and when."""

    ambulance = serializers.SerializerMethodField()
    hospital = HospitalBriefSerializer(read_only=True, allow_null=True)
    eta_s = serializers.SerializerMethodField()

    class Meta:
        model = Case
        fields = (
            "id",
            "status",
            "for_self",
            "complaint",
            "note",
            "lat",
            "lon",
            "accuracy_m",
            "ambulance",
            "eta_s",
            "hospital",
            "received_at",
            "notified_at",
            "en_route_at",
            "on_scene_at",
            "left_scene_at",
            "at_destination_at",
            "cancelled_at",
            "closed_at",
            "updated_at",
        )

    @extend_schema_field(CitizenUnitSerializer(allow_null=True))
    def get_ambulance(self, case: Case) -> dict | None:
        if case.ambulance is None:
            return None
        data = UnitBriefSerializer(case.ambulance).data
        # The crew's phone is for the hospital and the dispatcher; the caller rings 120.
        data.pop("phone", None)
        if case.status not in UNIT_SERVING_STATUSES:
            data.update(status=None, lat=None, lon=None, position_at=None)
        return data

    def get_eta_s(self, case: Case) -> int | None:
        # While transporting the caller (or the family beside them) wants the hospital's ETA.
        return live_eta_s(case)


class CaseDetailSerializer(CaseSerializer):
    """One case in full for a dispatcher. The same as the staff view: kept as a name because the
    API schema and other modules refer to it."""

    class Meta(CaseSerializer.Meta):
        pass


# --- the one builder per entity and audience (REST snapshots and stream events) ----------------


def staff_case_payload(case: Case) -> dict:
    """A case for dispatchers and its crew: the staff view with its admission and live ETA."""
    return dict(CaseSerializer(case).data)


def citizen_case_payload(case: Case) -> dict:
    return dict(CitizenCaseSerializer(case).data)


def unit_payload(unit: Ambulance) -> dict:
    """A unit with its last fix (lat, lon, position_at: when the fix was taken in) and status."""
    return dict(AmbulanceSerializer(unit).data)


def admission_payload(admission: Admission) -> dict:
    return dict(AdmissionSerializer(admission).data)


def hospital_payload(hospital: Hospital) -> dict:
    return dict(HospitalSerializer(hospital).data)
