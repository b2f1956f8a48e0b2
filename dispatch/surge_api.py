"""Surge endpoints (issue 8): merge a duplicate, declare surge mode, the waiting list by district,
mass unit updates. Thin: validate, call dispatch.surge, serialize."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from dispatch import surge
from dispatch.inputs import IdField
from dispatch.permissions import IsDispatcher, IsSupervisor
from dispatch.serializers import CaseSerializer, staff_case_payload


class CentreSerializer(serializers.Serializer):
    active = serializers.BooleanField(help_text="Surge mode is on: queue strictly by priority, units about to be free offered.")
    reason = serializers.CharField(allow_blank=True, help_text="Why the supervisor declared it (blank when off).")
    declared_at = serializers.DateTimeField(allow_null=True)
    declared_by = serializers.CharField(allow_null=True, help_text="The declaring supervisor's display name.")
    proposed = serializers.BooleanField(
        help_text="The service proposes surge: at least propose_at priority-1/2 cases wait unassigned (withdrawn at half)."
    )
    propose_at = serializers.IntegerField(help_text="SURGE_PROPOSE_UNASSIGNED.")


class SurgeInputSerializer(serializers.Serializer):
    active = serializers.BooleanField(help_text="true declares surge mode, false ends it.")
    reason = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default="",
        help_text="Why (required to declare): e.g. 'rainstorm, 40 calls waiting'.",
    )

    def validate(self, attrs):
        attrs["reason"] = " ".join(attrs.get("reason", "").split())
        if attrs["active"] and not attrs["reason"]:
            raise serializers.ValidationError({"reason": ["Say why surge mode is declared."]})
        return attrs


class SurgeView(APIView):
    permission_classes = [IsDispatcher]

    @extend_schema(summary="The centre's surge mode (declared or proposed)", responses=CentreSerializer)
    def get(self, request):
        return Response(surge.centre_payload())

    @extend_schema(
        summary="Declare or end surge mode (shift supervisor only)",
        description="Announced to every dispatcher as centre.surge_changed. In surge the queue is ordered strictly by "
        "priority, recommendations also offer units about to be free, and such a unit may be assigned at once.",
        request=SurgeInputSerializer,
        responses={200: CentreSerializer, 403: OpenApiResponse(description="Not a shift supervisor.")},
    )
    def post(self, request):
        if not IsSupervisor().has_permission(request, self):
            self.permission_denied(request, message=IsSupervisor.message)
        data = SurgeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        surge.surge_set(active=data.validated_data["active"], reason=data.validated_data["reason"], by=request.user)
        return Response(surge.centre_payload())


class MergeInputSerializer(serializers.Serializer):
    into = IdField(help_text="The case that stays (its unit serves both callers).")


class MergeResultSerializer(serializers.Serializer):
    merged = CaseSerializer(help_text="This case, now cancelled with merged_into and the reason.")
    into = CaseSerializer(help_text="The case that stays.")


class MergeView(APIView):
    permission_classes = [IsDispatcher]

    @extend_schema(
        summary="Merge a duplicate into another case (one unit serves both callers)",
        description="The case named in the URL is cancelled with the reason and merged_into; both cases' streams get "
        "case.merged. 400 when `into` is this case or unknown. 409 when this case already has its own unit "
        "(case_has_unit: merge the other way round), can no longer be cancelled (case_not_mergeable), or the case to "
        "merge into is transporting, at the hospital, closed or cancelled (merge_target_closed).",
        request=MergeInputSerializer,
        responses={200: MergeResultSerializer, 409: OpenApiResponse(description="One of the cases moved on.")},
    )
    def post(self, request, case_id: int):
        data = MergeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        merged, kept = surge.case_merge(case_id=case_id, into_id=data.validated_data["into"])
        return Response({"merged": staff_case_payload(merged), "into": staff_case_payload(kept)})


class DistrictCountSerializer(serializers.Serializer):
    district = serializers.CharField(allow_null=True, help_text="The district (区/县/市); null when the position has none.")
    district_en = serializers.CharField(allow_null=True)
    total = serializers.IntegerField()
    by_priority = serializers.DictField(child=serializers.IntegerField(), help_text='Counts by priority: {"1": n, … "4": n}.')
    oldest_received_at = serializers.DateTimeField(help_text="When the longest-waiting case there was received.")


class DistrictQueueView(APIView):
    permission_classes = [IsDispatcher]

    @extend_schema(
        summary="Cases waiting for a unit, by district and priority",
        description="Most priority-1 cases first, then priority 2, then total, then the longest wait.",
        responses=DistrictCountSerializer(many=True),
    )
    def get(self, request):
        return Response(DistrictCountSerializer(surge.waiting_by_district(), many=True).data)


class BulkStatusInputSerializer(serializers.Serializer):
    ambulances = serializers.ListField(
        child=IdField(), min_length=1, max_length=500,
        help_text="Unit ids.",
    )
    status = serializers.ChoiceField(choices=surge.BULK_STATUSES)
    reason = serializers.CharField(max_length=200, help_text="Why, e.g. 'Jinshui Road flooded'.")

    def validate_reason(self, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise serializers.ValidationError("Say why.")
        return value


class BulkUnitResultSerializer(serializers.Serializer):
    ambulance = serializers.IntegerField()
    changed = serializers.BooleanField()
    status = serializers.CharField(allow_null=True, help_text="The unit's status now.")
    code = serializers.ChoiceField(choices=["changed", "unchanged", "unit_busy", "not_found"])
    detail = serializers.CharField()


class BulkStatusResultSerializer(serializers.Serializer):
    changed = serializers.ListField(child=serializers.IntegerField())
    not_changed = serializers.ListField(child=serializers.IntegerField())
    results = BulkUnitResultSerializer(many=True)


class BulkUnitStatusView(APIView):
    permission_classes = [IsSupervisor]

    @extend_schema(
        summary="Put several units out of service or back at once (shift supervisor only)",
        description="One transaction, one unit.status_changed per unit changed. A unit on a case is refused "
        "(unit_busy: its crew clears the case first), never stranded with a patient; unknown ids are not_found; "
        "the answer lists each unit's outcome.",
        request=BulkStatusInputSerializer,
        responses=BulkStatusResultSerializer,
    )
    def post(self, request):
        data = BulkStatusInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        given = data.validated_data
        results = surge.units_bulk_status(
            ambulance_ids=given["ambulances"], status=given["status"], reason=given["reason"], by=request.user
        )
        return Response(
            {
                "changed": [r["ambulance"] for r in results if r["changed"]],
                "not_changed": [r["ambulance"] for r in results if not r["changed"]],
                "results": results,
            }
        )

