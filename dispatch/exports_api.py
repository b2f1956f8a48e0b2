"""Standard exports for neighbour systems: a case as a NENA EIDO for another 110/119/120 centre, and
the hospital pre-notification as HL7 v2 ADT^A05 for a hospital information system that does not
speak FHIR. Thin: check the object, build, answer."""

from __future__ import annotations

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from dispatch import archive_access, eido, hl7v2, lookups
from dispatch.permissions import IsDispatcher


class CaseEidoView(APIView):
    permission_classes = [IsDispatcher]

    @extend_schema(
        summary="The case as a NENA EIDO (Emergency Incident Data Object) for another centre",
        description=(
            "An EIDO JSON document (NENA-STA-021.1a field names; conveyed as NENA-STA-024 describes) "
            "for handing the incident to, or sharing it with, a neighbouring 110/119/120 centre: "
            "incidentComponent (type = the complaint, priority 1–4, status), callComponent and "
            "callbackComponent (when and how the call came, the number to ring back), locationComponent "
            "(the caller's latest fix, the unit and the destination as PIDF-LO, WGS-84), personComponent "
            "(the caller, and whether they are the patient), emergencyResourceComponent (the unit, its status "
            "and ETA), notesComponent (timeline, cancellation) and mergeComponent. It carries no health data: "
            "no archive field and not the caller's free-text note. Dispatchers only."
        ),
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="The EIDO document."), 404: None},
    )
    def get(self, request, case_id: int):
        return Response(eido.eido_for_case(lookups.case_or_404(case_id), now=timezone.now()))


class AdmissionHl7v2View(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        summary="The pre-notification as an HL7 v2.5.1 ADT^A05 (pre-admit) message",
        description=(
            "The same admission as the feed and the FHIR bundle, as one HL7 v2 ER7 message (segments "
            "separated by carriage returns, UTF-8): MSH, EVN, PID, PV1 (the ED, our admission id as visit "
            "number, the ED's registration number once acknowledged as alternate visit id), PV2 (expected "
            "admit time = ETA), AL1 per allergy, DG1 per chronic condition, OBX (ETA in seconds, blood "
            "group), NTE (complaint, unit, its phone). Patient details come only under the rules of the "
            "FHIR read: the destination hospital (or a dispatcher) while the case is open, with consent "
            "or a declared override, and each read is in the citizen's access log. Without them the "
            "patient is 'Unknown' and an NTE says why. Content-Type x-application/hl7-v2+er7."
        ),
        responses={
            (200, hl7v2.CONTENT_TYPE): OpenApiResponse(OpenApiTypes.STR, description="The ADT^A05 message."),
            403: None,
            404: None,
        },
    )
    def get(self, request, admission_id: int):
        admission = lookups.admission_for_staff(
            request.user,
            admission_id,
            refusal="Only the destination hospital (or a dispatcher) may read this pre-notification.",
        )
        block = archive_access.health_summary_for(case=admission.case, reader=request.user)
        message = hl7v2.adt_a05(
            admission,
            summary=block.get("summary") if block["available"] else None,
            withheld_reason=None if block["available"] else block["reason"],
            now=timezone.now(),
        )
        return HttpResponse(message.encode("utf-8"), content_type=f"{hl7v2.CONTENT_TYPE}; charset=utf-8")
