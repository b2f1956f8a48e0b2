"""Priority and silent calls over REST: the caller's answers and texts, the dispatcher's triage and
texts. Thin: validate, check the object, call dispatch.services / dispatch.messages."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import Throttled, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from dispatch import lookups, messages, selectors, services, triage
from dispatch.events import DISPATCH_STREAM, case_stream
from dispatch.inputs import validated_body
from dispatch.models import MessageSender
from dispatch.permissions import IsCitizen, IsDispatcher
from dispatch.serializers import CaseMessageSerializer, CaseSerializer, CitizenCaseSerializer, message_payload, staff_case_payload


class TriageAnswersSerializer(serializers.Serializer):
    """The call-taker's first questions; each optional (the tap never waits for them)."""

    conscious = serializers.BooleanField(required=False, allow_null=True, help_text="Is the patient conscious? false → priority 1.")
    breathing_normally = serializers.BooleanField(
        required=False, allow_null=True, help_text="Is the patient breathing normally? false → priority 1."
    )
    heavy_bleeding = serializers.BooleanField(
        required=False, allow_null=True, help_text="Is there heavy bleeding? true → priority 1."
    )

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise ValidationError({unknown[0]: [f"Not a triage question; ask {', '.join(triage.QUESTIONS)}."]})
        values = super().to_internal_value(data)
        return {key: value for key, value in values.items() if value is not None}


class DispatcherTriageSerializer(serializers.Serializer):
    priority = serializers.ChoiceField(
        choices=triage.PRIORITIES, help_text="1 = immediately life-threatening, 2 urgent, 3 less urgent, 4 non-urgent."
    )
    reason = serializers.CharField(max_length=200, help_text="Why, in words; shown as the case's priority_reason.")


class MessageInputSerializer(serializers.Serializer):
    text = serializers.CharField(
        max_length=messages.MAX_LENGTH, trim_whitespace=True, help_text=f"At most {messages.MAX_LENGTH} characters."
    )


class MessageListSerializer(serializers.Serializer):
    last_seq = serializers.IntegerField(help_text="Newest seq of the stream that carries case.message events to you.")
    results = CaseMessageSerializer(many=True)


def _send(request, case_id: int, sender: str) -> Response:
    data = MessageInputSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    try:
        message = messages.message_send(case_id=case_id, sender=sender, author=request.user, text=data.validated_data["text"])
    except messages.RateLimited as limited:
        raise Throttled(wait=limited.wait, detail=limited.detail) from None
    return Response(message_payload(message), status=status.HTTP_201_CREATED)


def _listing(stream: str, case_id: int) -> Response:
    # The position first: a message racing this read is replayed on resume, harmlessly.
    last_seq = selectors.stream_last_seq(stream)
    return Response({"last_seq": last_seq, "results": [message_payload(m) for m in selectors.messages_of_cases([case_id])]})


_MESSAGE_ERRORS = {
    400: OpenApiResponse(description="Empty, over 500 characters, or control characters (names `text`)."),
    404: OpenApiResponse(description="No such case (or not yours)."),
    409: OpenApiResponse(description="The case is closed or cancelled."),
    429: OpenApiResponse(description="Too many messages on this case (CASE_MESSAGE_RATE_LIMIT)."),
}


class CaseTriageView(APIView):
    permission_classes = [IsCitizen]

    @extend_schema(
        summary="The caller's answers to the first questions, following the tap",
        description="Merged with earlier answers; the priority is re-derived and only ever raised (not conscious, not "
        "breathing normally or heavy bleeding → 1). Announced as case.triaged.",
        request=TriageAnswersSerializer,
        responses={200: CitizenCaseSerializer, 404: OpenApiResponse(description="No such case (or not yours)."),
                   409: OpenApiResponse(description="The case is closed or cancelled.")},
    )
    def post(self, request, case_id: int):
        lookups.case_or_404(case_id, caller=request.user)
        data = validated_body(TriageAnswersSerializer, request)
        case = services.case_answer_triage(case_id=case_id, caller=request.user, answers=data.validated_data)
        return Response(CitizenCaseSerializer(case).data)


class DispatchTriageView(APIView):
    permission_classes = [IsDispatcher]

    @extend_schema(
        summary="Set a case's priority with a reason (dispatcher)",
        description="Up or down; the one way to lower a priority. The reason is kept with the dispatcher's name as "
        'priority_reason (priority_basis {"kind": "dispatcher", "by": <username>}: their words are shown as written, '
        "in any language); announced as case.triaged on the dispatch, case and unit streams.",
        request=DispatcherTriageSerializer,
        responses={200: CaseSerializer, 404: OpenApiResponse(description="No such case."),
                   409: OpenApiResponse(description="The case is closed or cancelled.")},
    )
    def post(self, request, case_id: int):
        data = DispatcherTriageSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        case = services.case_triage(
            case_id=case_id, priority=int(data.validated_data["priority"]), reason=data.validated_data["reason"], user=request.user
        )
        return Response(staff_case_payload(case))


class CaseMessagesView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(summary="The texts on my case (silent call)", responses=MessageListSerializer)
    def get(self, request, case_id: int):
        lookups.case_or_404(case_id, caller=request.user)
        return _listing(case_stream(case_id), case_id)

    @extend_schema(
        summary="Text the centre on my case (silent call)",
        description='Also possible on /ws/cases/{id}/ as a frame {"type":"message","text":"…"}. Announced as case.message.',
        request=MessageInputSerializer,
        responses={201: CaseMessageSerializer, **_MESSAGE_ERRORS},
    )
    def post(self, request, case_id: int):
        lookups.case_or_404(case_id, caller=request.user)
        return _send(request, case_id, MessageSender.CALLER)


class DispatchCaseMessagesView(APIView):
    permission_classes = [IsDispatcher]

    @extend_schema(summary="The texts on a case (silent call)", responses=MessageListSerializer)
    def get(self, request, case_id: int):
        lookups.case_or_404(case_id)
        return _listing(DISPATCH_STREAM, case_id)

    @extend_schema(
        summary="Text the caller on a case (silent call)",
        description="The caller sees it on their case stream with your display name. Announced as case.message.",
        request=MessageInputSerializer,
        responses={201: CaseMessageSerializer, **_MESSAGE_ERRORS},
    )
    def post(self, request, case_id: int):
        lookups.case_or_404(case_id)
        return _send(request, case_id, MessageSender.DISPATCHER)
