"""The citizen-facing API: register, sign in, one tap, follow the case."""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import AuthenticationFailed, Throttled, ValidationError
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import ApiTokenAuthentication
from accounts.lockout import LOCKED_CODE, api_login_succeeded, locked_message, retry_after_seconds
from accounts.services import citizen_register, normalize_phone, token_issue, token_revoke
from dispatch import idempotency, lookups, selectors, services
from dispatch.events import case_stream
from dispatch.inputs import FixInputSerializer, validated_body
from dispatch.permissions import IsCitizen, is_dispatcher
from dispatch.serializers import CitizenCaseSerializer, citizen_case_payload
from mobile_api.serializers import (
    CancelSerializer,
    CitizenCaseSnapshotSerializer,
    MeSerializer,
    RegisterSerializer,
    SosSerializer,
    TokenRequestSerializer,
    TokenResponseSerializer,
)
from mobile_api.throttles import AuthThrottle, RegisterPhoneThrottle, SosThrottle


class RegisterView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [AuthThrottle, RegisterPhoneThrottle]

    @extend_schema(
        summary="Register a citizen",
        description=(
            "A number that cannot be registered (for whatever reason) gets the same 400 on `phone`; the answer "
            "never says whether the number has an account."
        ),
        request=RegisterSerializer,
        responses={201: TokenResponseSerializer, 429: OpenApiResponse(description="Too many registrations.")},
    )
    def post(self, request):
        data = RegisterSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            user, issued = citizen_register(**data.validated_data, label=_client_label(request))
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict) from None
        return Response(_token_body(user, issued), status=status.HTTP_201_CREATED)


class LoginLocked(Throttled):
    default_code = LOCKED_CODE


def _client_label(request) -> str:
    return (request.headers.get("User-Agent") or "")[:100]


def _token_body(user, issued) -> dict:
    return {"token": issued.key, "user_id": user.pk, "role": user.role, "expires_at": issued.token.expires_at}


class TokenView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [AuthThrottle]

    def get_authenticate_header(self, request):
        # A wrong password is 401 with a challenge, not 403.
        return "Token"

    @extend_schema(
        summary="Get an API token",
        description=(
            "Each sign-in issues a NEW token (one per device); older ones keep working until they expire or are "
            "revoked. Staff tokens last TOKEN_TTL_STAFF_HOURS, citizens' TOKEN_TTL_CITIZEN_DAYS. Repeated wrong "
            "passwords lock the account at this address (and a flooding address) for a cool-off: 429 with "
            "`code: login_locked` and `Retry-After`."
        ),
        request=TokenRequestSerializer,
        responses={
            200: TokenResponseSerializer,
            401: OpenApiResponse(description="Wrong username or password."),
            429: OpenApiResponse(description="Too many attempts, or locked out after failed attempts."),
        },
    )
    def post(self, request):
        data = TokenRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        username = data.validated_data["username"]
        username = normalize_phone(username) or username
        user = authenticate(request, username=username, password=data.validated_data["password"])
        if getattr(request, "axes_locked_out", False):
            raise LoginLocked(wait=retry_after_seconds(), detail=locked_message())
        if user is None or not user.is_active:
            raise AuthenticationFailed("Wrong username or password.")
        api_login_succeeded(request, user)
        return Response(_token_body(user, token_issue(user=user, label=_client_label(request))))


class SessionTokenView(APIView):
    """A citizen who signed in on the sign-in page lands on /app/, which speaks the token API: this
    trades the session for a token so they need not type the password twice. Session only (a token
    cannot mint tokens), so DRF's SessionAuthentication enforces CSRF on it."""

    permission_classes = [IsCitizen]
    authentication_classes = [SessionAuthentication]
    throttle_classes = [AuthThrottle]

    @extend_schema(
        summary="Get an API token for the signed-in session (citizens)",
        description=(
            "For the citizen app page opened after signing in on /accounts/login/: issues a NEW token for the "
            "session's user, as /api/v1/auth/token does, without the password. Session cookie and CSRF token "
            "required; staff sessions are refused (they use their consoles)."
        ),
        request=None,
        responses={
            200: TokenResponseSerializer,
            403: OpenApiResponse(description="No session, a staff session, or a missing CSRF token."),
            429: OpenApiResponse(description="Too many attempts."),
        },
    )
    def post(self, request):
        user = request.user
        return Response(_token_body(user, token_issue(user=user, label=_client_label(request))))


class LogoutView(APIView):
    permission_classes = [IsAuthenticated]
    authentication_classes = [ApiTokenAuthentication]

    @extend_schema(
        summary="Sign out: revoke the token in use",
        description="The token sent with this request stops working at once, and the sockets opened with it close.",
        request=None,
        responses={204: None, 401: OpenApiResponse(description="No token, or a token already expired or revoked.")},
    )
    def post(self, request):
        token_revoke(token_id=request.auth.pk, reason="logout")
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(summary="Who I am", responses=MeSerializer)
    def get(self, request):
        user = request.user
        return Response(
            {
                "id": user.pk,
                "username": user.username,
                "name": user.first_name,
                "phone": user.phone,
                "role": user.role,
                "supervisor": user.is_supervisor,
                "ambulance": selectors.ambulance_of_crew(user),
                "hospital": selectors.hospital_of_staff(user),
            }
        )



class SosView(APIView):
    permission_classes = [IsCitizen]
    throttle_classes = [SosThrottle]

    @extend_schema(
        summary="One tap SOS",
        description=(
            "Creates a case at the caller's position. Send an `Idempotency-Key` header (any unique string per tap): "
            "retrying with the same key returns the same case (with `Idempotent-Replayed: true`) and raises no second "
            "alarm; the same key with a different body is refused with 422."
        ),
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
        request=SosSerializer,
        responses={
            201: CitizenCaseSerializer,
            400: OpenApiResponse(description="A field is invalid; the body names it."),
            422: OpenApiResponse(description="Idempotency-Key reused with a different body."),
            429: OpenApiResponse(description="Too many taps (SOS_RATE_LIMIT)."),
        },
    )
    def post(self, request):
        key = idempotency.key_from(request)
        data = validated_body(SosSerializer, request)
        values = data.validated_data
        case, created = services.case_create(
            caller=request.user,
            fix=data.to_fix(),
            for_self=values["for_self"],
            complaint=values["complaint"],
            note=values["note"],
            triage=values.get("triage"),
            silent=values["silent"],
            idempotency_key=key,
            fingerprint=idempotency.fingerprint(request.data),
        )
        # A new case carries the caller's view its case.created event was built with (services).
        response = Response(getattr(case, "caller_view", None) or citizen_case_payload(case), status=status.HTTP_201_CREATED)
        if not created:
            SosThrottle.uncount_retry(request)
            response["Idempotent-Replayed"] = "true"
        return response


class CaseView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(summary="My case: status, unit, its position and ETA, hospital", responses=CitizenCaseSnapshotSerializer)
    def get(self, request, case_id: int):
        # The stream position first: an event racing this read is replayed on resume, harmlessly.
        last_seq = selectors.stream_last_seq(case_stream(case_id))
        case = lookups.case_or_404(case_id, caller=request.user)
        return Response({**CitizenCaseSerializer(case).data, "last_seq": last_seq})


class CaseLocationView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(summary="The caller moved", request=FixInputSerializer, responses=CitizenCaseSerializer)
    def post(self, request, case_id: int):
        lookups.case_or_404(case_id, caller=request.user)
        data = FixInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        case = services.case_add_location(case_id=case_id, fix=data.to_fix())
        return Response(CitizenCaseSerializer(case).data)


class CaseCancelView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(summary="Cancel (the caller, or a dispatcher)", request=CancelSerializer, responses=CitizenCaseSerializer)
    def post(self, request, case_id: int):
        # A dispatcher may cancel any case; a citizen only their own.
        lookups.case_or_404(case_id, caller=None if is_dispatcher(request.user) else request.user)
        data = CancelSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        case = services.case_cancel(case_id=case_id, reason=data.validated_data["reason"])
        return Response(CitizenCaseSerializer(case).data)

