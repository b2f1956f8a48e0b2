"""Output serializers: one per entity and audience, used by REST snapshots and stream events alike."""

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


class AmbulanceSerializer(ModelSerializer):
    station = serializers.SlugRelatedField(slug_field="code", read_only=True)

    class Meta:
        model = Ambulance
        fields = ("id", "call_sign", "station", "level", "status", "lat", "lon", "position_at", "status_at")


class UnitBriefSerializer(ModelSerializer):
    class Meta:
        model = Ambulance
        fields = ("id", "call_sign", "status", "lat", "lon", "position_at")


class HospitalBriefSerializer(ModelSerializer):
    class Meta:
        model = Hospital
        fields = ("id", "code", "name_zh", "name_en", "lat", "lon")


class LocationSerializer(ModelSerializer):
    class Meta:
        model = CaseLocation
        fields = ("lat", "lon", "accuracy_m", "altitude_m", "floor", "source", "crs", "fix_time", "received_at")


class CaseSerializer(ModelSerializer):
    """The staff view of a case (dispatcher, crew of its unit, its hospital). No health data:
    that is added per recipient at delivery time, never stored in an event."""

    caller_phone = serializers.CharField(source="caller.phone", read_only=True, allow_null=True)
    caller_name = serializers.CharField(source="caller.first_name", read_only=True)
    ambulance = UnitBriefSerializer(read_only=True, allow_null=True)
    hospital = HospitalBriefSerializer(read_only=True, allow_null=True)

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
            "lat",
            "lon",
            "accuracy_m",
            "ambulance",
            "hospital",
            "cancel_reason",
            *MILESTONE_FIELDS,
            "updated_at",
        )


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
        if case.status not in UNIT_SERVING_STATUSES:
            data.update(status=None, lat=None, lon=None, position_at=None)
        return data

    def get_eta_s(self, case: Case) -> int | None:
        from dispatch.selectors import unit_eta_to_case

        if case.status not in UNIT_SERVING_STATUSES:
            return None
        return unit_eta_to_case(case)


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


class CaseDetailSerializer(CaseSerializer):
    """One case in full for a dispatcher: the staff view plus the destination hospital's admission
    (status, ETA and the registration number it answered with)."""

    admission = serializers.SerializerMethodField()

    class Meta(CaseSerializer.Meta):
        fields = (*CaseSerializer.Meta.fields, "admission")

    @extend_schema_field(AdmissionSerializer(allow_null=True))
    def get_admission(self, case: Case) -> dict | None:
        from dispatch.selectors import latest_admission_of_case

        prefetched = getattr(case, "_prefetched_objects_cache", {}).get("admissions")
        if prefetched is not None:
            admission = next(iter(prefetched), None)
        else:
            admission = latest_admission_of_case(case.pk)
        return AdmissionSerializer(admission).data if admission else None
