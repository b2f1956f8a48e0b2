"""Staff REST endpoints: the dispatcher's queue, units and crews, hospitals and admissions.
Thin: validate, check the object, call a service or selector, serialize."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from dispatch import archive_access, geo, idempotency, lookups, selectors, services, surge
from dispatch.surge_api import CentreSerializer
from dispatch.errors import Conflict
from dispatch.events import DISPATCH_STREAM, ambulance_stream, hospital_stream
from dispatch.inputs import (
    REASON_MAX_LENGTH,
    REASON_MIN_LENGTH,
    REASON_MIN_LETTERS,
    FixInputSerializer,
    IdField,
    flag_param,
    int_param,
    validate_reason_words,
)
from dispatch.models import ACTIVE_CASE_STATUSES, Capability, CaseStatus, EdStatus
from dispatch.permissions import IsDispatcher, IsStaff
from dispatch.serializers import (
    AdmissionSerializer,
    AmbulanceSerializer,
    CaseDetailSerializer,
    CaseMessageSerializer,
    CaseSerializer,
    HospitalSerializer,
    admission_payload,
    hospital_payload,
    message_payload,
    staff_case_payload,
    unit_payload,
)
from health_records import fhir


class CaseQueueSerializer(serializers.Serializer):
    last_seq = serializers.IntegerField(help_text="Newest seq of the dispatch stream when this snapshot was read.")
    count = serializers.IntegerField()
    results = CaseDetailSerializer(many=True)
    units = AmbulanceSerializer(
        many=True, help_text="Every unit with its status and last fix: with results, all a console's map and table need."
    )
    hospitals = HospitalSerializer(many=True, help_text="Every hospital with its ED status and free beds.")
    messages = CaseMessageSerializer(
        many=True, help_text="The texts of silent calls on the cases listed, oldest first (case.message events add to them)."
    )
    centre = CentreSerializer(help_text="Surge mode, declared or proposed (centre.surge_changed events replace it).")


class RecommendationSerializer(serializers.Serializer):
    ambulance = AmbulanceSerializer()
    distance_m = serializers.FloatField()
    eta_s = serializers.IntegerField(help_text="Travel time to the case; for a unit about to be free, from its hospital.")
    expected_free_at = serializers.DateTimeField(
        allow_null=True,
        help_text="Surge only: a unit at the hospital is offered with when it is expected free (arrival + HANDOVER_S). "
        "Null for an available unit. Assigning it closes its current case as the crew's 'available' press would.",
    )
    free_in_s = serializers.IntegerField(allow_null=True, help_text="Seconds until expected_free_at (0: free now); null for an available unit.")
    reserved = serializers.BooleanField(
        help_text="The last SURGE_RESERVE_UNITS available units are held for priority SURGE_RESERVE_PRIORITY and better "
        "(whenever the fleet is down to them, or in surge only with SURGE_RESERVE_ALWAYS off), and this case is less "
        "urgent. Advisory: assigning still works (the dispatcher may know better)."
    )


class AssignInputSerializer(serializers.Serializer):
    ambulance = IdField()


class CrewStatusInputSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=services.CREW_STATUSES)
    hospital = IdField(required=False, allow_null=True)
    case = IdField(
        required=False,
        allow_null=True,
        help_text="The case the crew saw when pressing; 409 assignment_changed when the unit holds another one now.",
    )


class AcknowledgeInputSerializer(serializers.Serializer):
    registration_no = serializers.RegexField(r"^[A-Za-z0-9._/-]{1,64}$", max_length=64)


class HospitalSuggestionSerializer(serializers.Serializer):
    hospital = HospitalSerializer(help_text="With its ED status and free beds, for the crew to choose by.")
    eta_s = serializers.IntegerField()
    capable = serializers.BooleanField()


class HealthSummaryBlockSerializer(serializers.Serializer):
    available = serializers.BooleanField()
    reason = serializers.ChoiceField(
        choices=["not_for_self", "no_account", "not_on_case", "no_archive", "no_consent", "no_grant", "grant_closed", "grant_expired", "wrong_patient", "reader_inactive", "unavailable"],
        required=False,
        help_text="Why no summary is shown.",
    )
    summary = serializers.DictField(
        required=False,
        help_text="Allergies, conditions, medications, blood type, devices, pregnancy, directives, contacts; "
        "read for you now and logged in the patient's access log.",
    )


class AssignmentSerializer(serializers.Serializer):
    last_seq = serializers.IntegerField(help_text="Newest seq of /ws/ambulances/{id}/ when this was read.")
    unit = AmbulanceSerializer(help_text="The unit itself: status and last fix (unit.* events update it).")
    case = CaseSerializer(allow_null=True)
    admission = AdmissionSerializer(allow_null=True)
    suggested_hospitals = HospitalSuggestionSerializer(many=True)
    health_summary = HealthSummaryBlockSerializer(allow_null=True)


def _statuses(param: str | None) -> list[str] | None:
    if not param:
        return None
    if param == "active":
        return None
    wanted = [s.strip() for s in param.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in CaseStatus.values]
    if unknown:
        raise ValidationError({"status": [f"Unknown status {', '.join(unknown)}; use {', '.join(CaseStatus.values)} or active."]})
    return wanted


class DispatchCaseListView(APIView):
    permission_classes = [IsDispatcher]

    @extend_schema(
        summary="Dispatcher queue, in working order",
        operation_id="v1_dispatch_cases_list",
        description=selectors.QUEUE_ORDER_RULE + " The order of `results` is the contract; consoles show it as given.",
        parameters=[
            OpenApiParameter("status", str, description="Comma-separated statuses, or 'active' (default)."),
            OpenApiParameter("limit", int, description="At most this many, the first in working order (1-1000, default 200)."),
        ],
        responses=CaseQueueSerializer,
    )
    def get(self, request):
        statuses = _statuses(request.query_params.get("status"))
        limit = int_param(request, "limit", default=200, low=1, high=1000)
        # Read the stream position before the rows: an event racing this read is replayed on
        # resume, and replaying a state the snapshot already shows is harmless.
        last_seq = selectors.stream_last_seq(DISPATCH_STREAM)
        cases = selectors.case_queue(statuses=statuses, limit=limit)
        return Response(
            {
                "last_seq": last_seq,
                "count": len(cases),
                "results": [staff_case_payload(case) for case in cases],
                # Everything else the dispatch stream carries events about, read at the same
                # position, so a console applying those events has something to apply them to.
                "units": [unit_payload(unit) for unit in selectors.all_units()],
                "hospitals": [hospital_payload(hospital) for hospital in selectors.all_hospitals()],
                "messages": [message_payload(m) for m in selectors.messages_of_cases([case.pk for case in cases])],
                "centre": surge.centre_payload(),
            }
        )


class CaseWithHealthSerializer(CaseDetailSerializer):
    health_summary = HealthSummaryBlockSerializer(read_only=True)

    class Meta(CaseDetailSerializer.Meta):
        fields = (*CaseDetailSerializer.Meta.fields, "health_summary")


class OverrideInputSerializer(serializers.Serializer):
    reason = serializers.CharField(
        max_length=REASON_MAX_LENGTH,
        help_text=f"Why the archive is needed without consent, in words: at least {REASON_MIN_LENGTH} characters, "
        f"{REASON_MIN_LETTERS} or more of them letters (any script).",
    )

    def validate_reason(self, value: str) -> str:
        return validate_reason_words(value)


class DispatchCaseDetailView(APIView):
    permission_classes = [IsDispatcher]

    @extend_schema(summary="One case in full, with its admission and the patient's health summary", responses=CaseWithHealthSerializer)
    def get(self, request, case_id: int):
        case = lookups.case_or_404(case_id)
        summary = archive_access.health_summary_for(case=case, reader=request.user)
        if summary.get("available"):
            # The archive may raise the priority, decided here where the read is already granted
            # and paid for (dispatch.triage), never on the tap path.
            case = services.case_raise_from_archive(case_id=case.pk, summary=summary["summary"]) or case
        return Response({**staff_case_payload(case), "health_summary": summary})


class HealthOverrideView(APIView):
    permission_classes = [IsDispatcher]

    @extend_schema(
        summary="Emergency override (break-glass): read the archive without consent, with a reason",
        description="Opens the caller's archive to everyone on this case while it is active. Flagged for review; "
        "the citizen sees it in their access log.",
        request=OverrideInputSerializer,
        responses=HealthSummaryBlockSerializer,
    )
    def post(self, request, case_id: int):
        case = lookups.case_or_404(case_id)
        # What no reason can change is said first, so nobody writes a justification for nothing.
        if case.status not in ACTIVE_CASE_STATUSES:
            raise Conflict(f"The case is {case.status}; its health data is closed.", code="case_not_open")
        if not case.for_self:
            raise Conflict("The caller called for someone else; their archive is not the patient's.", code="not_for_self")
        data = OverrideInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(
            archive_access.health_summary_for(case=case, reader=request.user, override_reason=data.validated_data["reason"])
        )


class RecommendationsView(APIView):
    permission_classes = [IsDispatcher]

    @extend_schema(
        summary="Ranked available units for a case; in surge mode also units about to be free",
        responses=RecommendationSerializer(many=True),
    )
    def get(self, request, case_id: int):
        case = lookups.case_or_404(case_id)
        if not geo.is_valid_point(case.lat, case.lon):
            # A row written before positions were validated (or by hand): say so, do not crash.
            raise Conflict(
                "The case's stored position is not a valid WGS-84 point, so no unit can be ranked for it; "
                "assign a unit by hand or wait for the caller's next location.",
                code="case_position_invalid",
            )
        ranked = selectors.recommend_units(lat=case.lat, lon=case.lon)
        offered = [
            {
                "ambulance": AmbulanceSerializer(r.ambulance).data, "distance_m": round(r.distance_m, 1), "eta_s": r.eta_s,
                "expected_free_at": None, "free_in_s": None, "reserved": False,
            }
            for r in ranked
        ]
        if surge.surge_active():
            # In surge the nearest help may be a crew finishing at a hospital: offered beside the
            # available units, best first by when each could be there (free in + travel).
            soon = surge.units_about_to_be_free(lat=case.lat, lon=case.lon, now=timezone.now(), count=settings.RECOMMENDATION_COUNT)
            offered += [
                {
                    "ambulance": AmbulanceSerializer(f.ambulance).data, "distance_m": round(f.distance_m, 1), "eta_s": f.eta_s,
                    "expected_free_at": f.expected_free_at, "free_in_s": f.free_in_s,
                }
                for f in soon
            ]
            offered.sort(key=lambda o: o["eta_s"] + (o["free_in_s"] or 0))
        reserved = surge.reserve_holds(priority=case.priority)
        for offer in offered:
            offer["reserved"] = reserved
        return Response(offered)


class AssignView(APIView):
    permission_classes = [IsDispatcher]

    @extend_schema(summary="Send a unit (409 when it is no longer available)", request=AssignInputSerializer, responses=CaseSerializer)
    def post(self, request, case_id: int):
        data = AssignInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        case = services.unit_assign(case_id=case_id, ambulance_id=data.validated_data["ambulance"])
        return Response(CaseSerializer(case).data)


class AmbulanceListView(APIView):
    permission_classes = [IsStaff]

    @extend_schema(summary="All units", responses=AmbulanceSerializer(many=True))
    def get(self, request):
        return Response(AmbulanceSerializer(selectors.all_units(), many=True).data)


class AmbulanceDetailView(APIView):
    permission_classes = [IsStaff]

    @extend_schema(summary="One unit", responses=AmbulanceSerializer)
    def get(self, request, ambulance_id: int):
        return Response(AmbulanceSerializer(lookups.unit_or_404(ambulance_id)).data)


class AssignmentView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(summary="The crew's current case", responses=AssignmentSerializer)
    def get(self, request, ambulance_id: int):
        last_seq = selectors.stream_last_seq(ambulance_stream(ambulance_id))
        # Read after last_seq: a change racing this read is replayed on resume (harmless).
        unit = lookups.unit_for_crew(request.user, ambulance_id)
        case = selectors.current_case_of_unit(ambulance_id)
        admission = selectors.open_admission_of_case(case.pk) if case else None
        suggestions = (
            selectors.suggest_hospitals(lat=case.lat, lon=case.lon, complaint=case.complaint) if case else []
        )
        return Response(
            {
                "last_seq": last_seq,
                "unit": unit_payload(unit),
                "case": staff_case_payload(case) if case else None,
                "admission": admission_payload(admission) if admission else None,
                "suggested_hospitals": [
                    {"hospital": hospital_payload(s.hospital), "eta_s": s.eta_s, "capable": s.capable}
                    for s in suggestions
                ],
                "health_summary": archive_access.health_summary_for(case=case, reader=request.user) if case else None,
            }
        )


class AmbulanceStatusView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="Crew status button; 'transporting' opens the admission (上车即入院)",
        request=CrewStatusInputSerializer,
        description=(
            "Send an `Idempotency-Key` header (any unique string per press) so that a press retried after a lost "
            "answer is applied once: the same key again returns the first answer (with `Idempotent-Replayed: true`) "
            "and changes nothing; the same key with a different body is refused with 422. Send `case` (the case "
            "the crew saw) so that a press delayed in a tunnel cannot land on a case assigned meanwhile."
        ),
        parameters=[OpenApiParameter(idempotency.HEADER, str, OpenApiParameter.HEADER, required=False)],
        responses=AmbulanceSerializer,
    )
    def post(self, request, ambulance_id: int):
        lookups.unit_for_crew(request.user, ambulance_id)
        key = idempotency.key_from(request)
        data = CrewStatusInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        given = data.validated_data
        values = {"status": given["status"], "hospital": given.get("hospital"), "case": given.get("case")}
        answer, replayed = services.crew_press(
            ambulance_id=ambulance_id,
            status=values["status"],
            hospital_id=values["hospital"],
            case_id=values["case"],
            key=key,
            fingerprint=idempotency.fingerprint(values),
        )
        response = Response(answer)
        if replayed:
            response["Idempotent-Replayed"] = "true"
        return response


class AmbulanceLocationView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(summary="Unit GPS fix", request=FixInputSerializer, responses=AmbulanceSerializer)
    def post(self, request, ambulance_id: int):
        lookups.unit_for_crew(request.user, ambulance_id, dispatcher_too=False)
        data = FixInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        unit = services.unit_report_location(ambulance_id=ambulance_id, fix=data.to_fix())
        return Response(AmbulanceSerializer(unit).data)


class HospitalListView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(summary="Hospitals", responses=HospitalSerializer(many=True))
    def get(self, request):
        return Response(HospitalSerializer(selectors.all_hospitals(), many=True).data)


class HospitalStatusInputSerializer(serializers.Serializer):
    ed_status = serializers.ChoiceField(choices=EdStatus.choices, required=False)
    ed_free_beds = serializers.IntegerField(min_value=0, max_value=10_000, required=False)
    unavailable_capabilities = serializers.ListField(
        child=serializers.ChoiceField(choices=Capability.choices),
        required=False,
        max_length=len(Capability.choices),
        help_text='Capabilities out of service for now (e.g. ["pci"] while the cath lab is down), replacing the '
        "previous list; [] restores all. Each must be one of the hospital's capabilities. Suggestions skip the "
        "hospital for complaints needing them, without diverting the whole ED.",
    )

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("Send ed_status, ed_free_beds, unavailable_capabilities, or several.")
        return attrs


class HospitalStatusView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="The emergency department declares diversion (分流), its free beds, or capabilities out of service",
        request=HospitalStatusInputSerializer,
        responses=HospitalSerializer,
    )
    def post(self, request, hospital_id: int):
        lookups.hospital_for_staff(
            request.user,
            hospital_id,
            dispatcher_too=False,
            refusal="Only this hospital's staff may declare its emergency department's status.",
        )
        data = HospitalStatusInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        hospital = services.hospital_set_status(hospital_id=hospital_id, **data.validated_data)
        return Response(HospitalSerializer(hospital).data)


class AdmissionWithHealthSerializer(AdmissionSerializer):
    health_summary = HealthSummaryBlockSerializer(read_only=True)

    class Meta(AdmissionSerializer.Meta):
        fields = (*AdmissionSerializer.Meta.fields, "health_summary")


class AdmissionFeedSerializer(serializers.Serializer):
    last_seq = serializers.IntegerField()
    count = serializers.IntegerField()
    results = AdmissionWithHealthSerializer(many=True)
    hospital = HospitalSerializer(help_text="The hospital itself (hospital.status_changed events update it).")


class HospitalAdmissionsView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="A hospital's incoming patients",
        parameters=[OpenApiParameter("include_closed", bool, description="Also list handed-over and cancelled.")],
        responses=AdmissionFeedSerializer,
    )
    def get(self, request, hospital_id: int):
        include_closed = flag_param(request, "include_closed")
        last_seq = selectors.stream_last_seq(hospital_stream(hospital_id))
        # Read after last_seq: a change racing this read is replayed on resume (harmless).
        hospital = lookups.hospital_for_staff(
            request.user, hospital_id, refusal="Only this hospital's staff (or a dispatcher) may read its feed."
        )
        admissions = selectors.admissions_of_hospital(hospital_id, include_closed=include_closed)
        results = [
            {**admission_payload(a), "health_summary": archive_access.health_summary_for(case=a.case, reader=request.user)}
            for a in admissions
        ]
        return Response(
            {"last_seq": last_seq, "count": len(admissions), "results": results, "hospital": hospital_payload(hospital)}
        )


class AdmissionFhirView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="The incoming patient's summary as an HL7 FHIR R4 Bundle (International Patient Summary)",
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request, admission_id: int):
        admission = lookups.admission_for_staff(
            request.user,
            admission_id,
            refusal="Only the destination hospital (or a dispatcher) may read this patient's summary.",
        )
        block = archive_access.health_summary_for(case=admission.case, reader=request.user)
        if not block["available"]:
            status_code = 503 if block["reason"] == "unavailable" else 404 if block["reason"] == "no_archive" else 403
            return Response({"detail": f"No health summary: {block['reason']}.", "code": block["reason"]}, status=status_code)
        bundle = fhir.bundle_for_summary(block["summary"])
        return Response(bundle, content_type="application/fhir+json")


class AcknowledgeView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="The hospital acknowledges with its registration number",
        request=AcknowledgeInputSerializer,
        responses=AdmissionSerializer,
    )
    def post(self, request, admission_id: int):
        lookups.admission_for_staff(
            request.user,
            admission_id,
            dispatcher_too=False,
            refusal="Only the destination hospital may acknowledge this admission.",
        )
        data = AcknowledgeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        admission = services.admission_acknowledge(
            admission_id=admission_id, registration_no=data.validated_data["registration_no"], user=request.user
        )
        return Response(AdmissionSerializer(admission).data)

