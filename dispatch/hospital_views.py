"""The hospital's admission board (院前接收): the page at /console/hospital/ and the one read it needs
besides the admission feed, today's arrivals (GET /api/v1/hospitals/{id}/arrivals)."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role
from dispatch import lookups, selectors
from dispatch.inputs import moment_param
from dispatch.models import AdmissionStatus, Complaint, EdStatus, UnitStatus
from dispatch.serializers import AdmissionSerializer, admission_payload, hospital_payload
from dispatch.views import refused

# Display labels ("English 中文") for the board's script, from the models' own choices.
BOARD_LABELS = {
    "complaint": dict(Complaint.choices),
    "admission_status": dict(AdmissionStatus.choices),
    "ed_status": dict(EdStatus.choices),
    "unit_status": dict(UnitStatus.choices),
}

# "Today" is the board's day, which only the board knows (the server stores UTC); it says when its
# day began. Bounded so that the endpoint stays a day's list, not a history search.
ARRIVALS_MAX_AGE = timedelta(hours=48)
ARRIVALS_DEFAULT_AGE = timedelta(hours=24)
ARRIVALS_LIMIT = 200


@never_cache
@ensure_csrf_cookie  # the board's fetch() calls send it back as X-CSRFToken
@login_required
def hospital_board(request):
    user = request.user
    if user.role != Role.HOSPITAL:
        return refused(request, _("Only hospital staff may open the admission board."))
    hospital_id = selectors.hospital_of_staff(user)
    if hospital_id is None:
        return refused(
            request,
            _(
                "Your account is not linked to a hospital yet, so there is no admission board to show. "
                "Ask the 120 centre's operator to link it to your hospital, then sign in again."
            ),
            title=_("No hospital linked"),
        )
    hospital = selectors.hospital_with_load(hospital_id)
    board = {
        "hospital": hospital_payload(hospital),
        "labels": BOARD_LABELS,
        "ws_path": f"/ws/hospitals/{hospital_id}/",
        "login_url": "/accounts/login/",
        # A ward PC's clock may be off by minutes (or days): the board counts ETAs on the server's time.
        "server_time": serializers.DateTimeField().to_representation(timezone.now()),
    }
    return TemplateResponse(request, "hospital/board.html", {"hospital": hospital, "board": board})


# --- today's arrivals --------------------------------------------------------------------------


class ArrivalsSerializer(serializers.Serializer):
    now = serializers.DateTimeField(help_text="The server's time of this answer: the board counts ETAs against it, not the PC's clock.")
    since = serializers.DateTimeField(help_text="The start of the listed period (the board's local midnight).")
    count = serializers.IntegerField()
    results = AdmissionSerializer(many=True, help_text="Handed-over admissions, newest first; never any health data.")


class HospitalArrivalsView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Today's arrivals at a hospital (handed over), without health data",
        description="The patients this hospital took over since `since` (default: the last 24 hours), newest "
        "first, at most 200. The same entries as the admission feed, but never a health summary: care has "
        "passed to the hospital's own records.",
        parameters=[
            OpenApiParameter(
                "since",
                str,
                description="ISO 8601 with a UTC offset, at most 48 hours ago; the board sends its local midnight.",
            )
        ],
        responses=ArrivalsSerializer,
    )
    def get(self, request, hospital_id: int):
        lookups.hospital_for_staff(
            request.user, hospital_id, refusal="Only this hospital's staff (or a dispatcher) may read its arrivals."
        )
        now = timezone.now()
        since = moment_param(request, "since", default=now - ARRIVALS_DEFAULT_AGE)
        if since < now - ARRIVALS_MAX_AGE:
            raise ValidationError({"since": [f"At most {int(ARRIVALS_MAX_AGE.total_seconds() // 3600)} hours ago."]})
        arrivals = selectors.arrivals_of_hospital(hospital_id, since=since, limit=ARRIVALS_LIMIT)
        return Response(
            {
                "now": serializers.DateTimeField().to_representation(now),
                "since": serializers.DateTimeField().to_representation(since),
                "count": len(arrivals),
                # The payload the stream carries for the same admission: a board applying events stays equal to this.
                "results": [admission_payload(a) for a in arrivals],
            }
        )
