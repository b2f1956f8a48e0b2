"""The citizen's own health archive: read, replace, and see who read it.

Plain JSON over TLS; encrypted at rest by ``health_records``. Views stay thin: the services
validate, encrypt, and decide.
"""

from __future__ import annotations

import logging

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import APIException, NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from dispatch import permissions
from dispatch.inputs import int_param
from dispatch.models import CrewMember, HospitalStaff
from health_records import selectors, services
from health_records.crypto import ArchiveCryptoError
from health_records.models import AccessLogEntry
from health_records.serializers import AccessLogSerializer, ArchiveOutSerializer, ArchiveSerializer

logger = logging.getLogger(__name__)


class IsCitizen(permissions.IsCitizen):
    message = "Only citizens have a health archive."


class ArchiveUnavailable(APIException):
    # Not an ApplicationError: a key or ciphertext failure is the operators' problem, not a refusal.
    # Its alarm (with archive and key id) is already logged by crypto; say nothing more to the client.
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Your health archive cannot be decrypted right now; the operators have been alerted."
    default_code = "archive_unavailable"


class HealthArchiveView(APIView):
    permission_classes = [IsCitizen]

    @extend_schema(
        summary="My health archive",
        description="The citizen's own archive, decrypted. 404 until one has been saved with PUT.",
        responses={
            200: ArchiveOutSerializer,
            404: OpenApiResponse(description="No archive yet."),
            503: OpenApiResponse(description="The archive cannot be decrypted (key problem); operators are alerted."),
        },
    )
    def get(self, request):
        try:
            archive = services.archive_get_own(owner=request.user)
        except ArchiveCryptoError:
            raise ArchiveUnavailable() from None
        if archive is None:
            raise NotFound("You have no health archive yet. Save one with PUT /api/v1/me/health-archive.", code="no_archive")
        return Response(archive)

    @extend_schema(
        summary="Save my health archive",
        description=(
            "Creates or replaces the whole archive (every field you leave out is cleared). Each field is validated "
            "and a 400 names the ones at fault. Saving marks the archive as verified now; a change keeps the "
            "previous version, encrypted. `consent_share_with_120` stays off until you turn it on. The national ID and "
            "phone you enter are recorded as yours to state; they give no access to any other archive."
        ),
        request=ArchiveSerializer,
        responses={
            200: ArchiveOutSerializer,
            201: ArchiveOutSerializer,
            400: OpenApiResponse(description="A field is invalid; the body names it."),
            409: OpenApiResponse(description="Two saves of your own archive crossed; retry. (Never about identifiers: "
                                 "a national ID or phone is yours to state, and it is not checked against other archives.)"),
            413: OpenApiResponse(description="Request body too large."),
        },
    )
    def put(self, request):
        # ArchiveInvalid (400) and ArchiveConflict (409) answer through the exception handler.
        try:
            archive, created = services.archive_put(owner=request.user, data=request.data)
        except ArchiveCryptoError:
            raise ArchiveUnavailable() from None
        return Response(archive, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class HealthArchiveAccessLogView(APIView):
    permission_classes = [IsCitizen]

    @extend_schema(
        summary="Who read my health archive",
        description=(
            "Every read of your archive by 120 staff, newest first: who, in which role, for which case and "
            "purpose, when, and whether under an emergency override. Entries are kept at least 6 months."
        ),
        parameters=[
            OpenApiParameter("limit", int, description="At most this many entries (1-500, default 100)."),
            OpenApiParameter("before", int, description="Only entries older than this seq (paging)."),
        ],
        responses={200: AccessLogSerializer, 400: OpenApiResponse(description="Bad limit or before.")},
    )
    def get(self, request):
        limit = int_param(request, "limit", default=100, low=1, high=500)
        before = int_param(request, "before", default=None, low=1, high=2**62)
        entries = selectors.access_log_of(owner=request.user, limit=limit + 1, before_seq=before)
        more = len(entries) > limit
        entries = entries[:limit]
        _name_readers(entries)
        return Response({"entries": entries, "next_before": entries[-1]["seq"] if more else None})


def _name_readers(entries: list[dict]) -> None:
    """Add ``reader_display``: what the citizen recognises (120 dispatcher, a unit's call sign, a
    hospital's name) instead of a staff username. Computed now from the reader's current binding:
    the log itself stores only ids and names, so it never has to be rewritten."""
    # The selector (health_records) knows nothing of units and hospitals; one query maps back.
    reader_of = dict(AccessLogEntry.objects.filter(seq__in=[e["seq"] for e in entries]).values_list("seq", "reader_id"))
    ids = set(reader_of.values())
    units = dict(CrewMember.objects.filter(user_id__in=ids).values_list("user_id", "ambulance__call_sign"))
    hospitals = {
        user_id: f"{name_zh} {name_en}"
        for user_id, name_zh, name_en in HospitalStaff.objects.filter(user_id__in=ids).values_list(
            "user_id", "hospital__name_zh", "hospital__name_en"
        )
    }
    for entry in entries:
        reader_id = reader_of.get(entry["seq"])
        role = entry["role"]
        if role == "crew":
            sign = units.get(reader_id)
            entry["reader_display"] = f"{sign} crew 车组" if sign else "Ambulance crew 急救车组"
        elif role == "hospital":
            entry["reader_display"] = hospitals.get(reader_id) or "Hospital staff 医院"
        else:
            entry["reader_display"] = "120 dispatcher 120调度员"
