"""Staff REST endpoints about health-archive access on a case (beyond reading the summary, which
comes with the case itself): renewing access after its time limit.

Thin: validate, check the case, call dispatch.archive_access (which calls health_records' services).
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from dispatch import archive_access, lookups
from dispatch.errors import Conflict
from dispatch.inputs import REASON_MAX_LENGTH, REASON_MIN_LENGTH, REASON_MIN_LETTERS, validate_reason_words
from dispatch.models import ACTIVE_CASE_STATUSES
from dispatch.permissions import IsDispatcher
from health_records import services as health_records


class HealthRenewInputSerializer(serializers.Serializer):
    reason = serializers.CharField(
        max_length=REASON_MAX_LENGTH,
        help_text=f"Why access to the patient's archive is still needed, in words: at least {REASON_MIN_LENGTH} "
        f"characters, {REASON_MIN_LETTERS} or more of them letters (any script). Kept on the grants for review, "
        "never written to the application log.",
    )

    def validate_reason(self, value: str) -> str:
        return validate_reason_words(value)


class HealthRenewSerializer(serializers.Serializer):
    renewed = serializers.IntegerField(help_text="How many expired grants on this case were renewed.")
    expires_at = serializers.DateTimeField(help_text="When the renewed grants expire.")


class HealthRenewView(APIView):
    permission_classes = [IsDispatcher]

    @extend_schema(
        summary="Renew expired health-archive access on an open case, with a reason",
        description="A grant expires after HEALTH_GRANT_MAX_HOURS even while the case stays open; until a person "
        "renews it, the health summary says `grant_expired`. This renews every expired grant of the case "
        "(dispatcher, crew, hospital) for another period. The renewal is logged and flagged with its reason; "
        "the next read is a new entry in the patient's access log.",
        request=HealthRenewInputSerializer,
        responses={
            200: HealthRenewSerializer,
            400: OpenApiResponse(description="The reason is missing or not words."),
            404: OpenApiResponse(description="No such case."),
            409: OpenApiResponse(description="The case is not open, or no grant on it has expired."),
        },
    )
    def post(self, request, case_id: int):
        case = lookups.case_or_404(case_id)
        if case.status not in ACTIVE_CASE_STATUSES:
            raise Conflict(f"The case is {case.status}; its health data is closed.", code="case_not_open")
        data = HealthRenewInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        # AccessDenied (403, its own code) answers through the exception handler; an InvalidGrant
        # is worded for this endpoint: its reason field, or a conflict when nothing has expired.
        try:
            grants = archive_access.renew_case_grants(case=case, actor=request.user, reason=data.validated_data["reason"])
        except health_records.InvalidGrant as invalid:
            if invalid.code == "nothing_to_renew":
                raise Conflict("No health-archive access on this case has expired.", code="nothing_to_renew") from None
            raise ValidationError({"reason": [invalid.detail]}, code=invalid.code) from None
        return Response({"renewed": len(grants), "expires_at": max(g.expires_at for g in grants)})
