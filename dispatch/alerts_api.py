"""Alert snapshots: what a console shows before it listens for alert.raised / alert.cleared."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from dispatch import alerts, lookups, selectors
from dispatch.events import DISPATCH_STREAM, hospital_stream
from dispatch.permissions import IsDispatcher
from dispatch.serializers import AlertSerializer


class AlertListSerializer(serializers.Serializer):
    last_seq = serializers.IntegerField(
        help_text="Newest seq of the stream (/ws/dispatch/ or /ws/hospitals/{id}/) when this snapshot was read: "
        "resume from it and apply alert.raised (replace by id) and alert.cleared (drop by id)."
    )
    count = serializers.IntegerField()
    results = AlertSerializer(many=True, help_text="Raised alerts, oldest first; pending clocks are never listed.")


class DispatchAlertsView(APIView):
    permission_classes = [IsDispatcher]

    @extend_schema(
        summary="Open alerts for dispatchers",
        description="Every raised alert (case unassigned too long, crew not rolling, hospital not answering, unit GPS "
        "silent, surge proposed), oldest first. Thresholds: ALERT_UNASSIGNED_S (by priority), ALERT_NOT_ROLLING_S, "
        "ALERT_ADMISSION_ACK_S, ALERT_GPS_SILENT_S.",
        responses=AlertListSerializer,
    )
    def get(self, request):
        # last_seq first: an alert raised while this is read is replayed on resume (harmless).
        last_seq = selectors.stream_last_seq(DISPATCH_STREAM)
        results = alerts.alerts_snapshot(alerts.open_alerts())
        return Response({"last_seq": last_seq, "count": len(results), "results": results})


class HospitalAlertsView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="A hospital's open alerts",
        description="Incoming patients this hospital has not acknowledged in time (admission_unacknowledged); asked "
        "again every ALERT_ADMISSION_ACK_S until someone acknowledges. For its staff and dispatchers.",
        responses=AlertListSerializer,
    )
    def get(self, request, hospital_id: int):
        lookups.hospital_for_staff(
            request.user, hospital_id, refusal="Only this hospital's staff (or a dispatcher) may read its alerts."
        )
        last_seq = selectors.stream_last_seq(hospital_stream(hospital_id))
        results = alerts.alerts_snapshot(alerts.open_alerts(hospital_id=hospital_id))
        return Response({"last_seq": last_seq, "count": len(results), "results": results})
