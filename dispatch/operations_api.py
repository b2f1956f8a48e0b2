"""The dispatcher's operations on a live case: reassign its unit, choose its destination.

Cancel stays at ``POST /api/v1/cases/{id}/cancel`` (the caller or a dispatcher) and a unit goes out
of service or back at ``POST /api/v1/ambulances/{id}/status`` (its crew or a dispatcher): one
endpoint per change, whoever makes it. Thin: validate, call a service, serialize."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from dispatch import services
from dispatch.inputs import IdField
from dispatch.permissions import IsDispatcher
from dispatch.serializers import CaseSerializer


class ReassignInputSerializer(serializers.Serializer):
    ambulance = IdField(help_text="The unit to send instead.")
    replacing = IdField(
        required=False,
        allow_null=True,
        help_text="The unit the dispatcher saw on the case; 409 if another dispatcher changed it meanwhile.",
    )


class HospitalInputSerializer(serializers.Serializer):
    hospital = IdField()


class ReassignView(APIView):
    permission_classes = [IsDispatcher]

    @extend_schema(
        summary="Release the case's unit and send another (409 on races)",
        request=ReassignInputSerializer,
        responses={200: CaseSerializer, 409: OpenApiResponse(description="The case or the unit moved on meanwhile.")},
    )
    def post(self, request, case_id: int):
        data = ReassignInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        case = services.case_reassign(
            case_id=case_id,
            ambulance_id=data.validated_data["ambulance"],
            replacing_id=data.validated_data.get("replacing"),
        )
        return Response(CaseSerializer(case).data)


class CaseHospitalView(APIView):
    permission_classes = [IsDispatcher]

    @extend_schema(
        summary="Choose or change the destination hospital (moves an open admission)",
        request=HospitalInputSerializer,
        responses={200: CaseSerializer, 409: OpenApiResponse(description="The case can no longer change destination.")},
    )
    def post(self, request, case_id: int):
        data = HospitalInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        case = services.case_set_hospital(case_id=case_id, hospital_id=data.validated_data["hospital"])
        return Response(CaseSerializer(case).data)
