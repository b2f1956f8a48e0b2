from __future__ import annotations

from rest_framework import serializers

from dispatch.inputs import FixInputSerializer
from dispatch.models import Complaint
from dispatch.serializers import CitizenCaseSerializer
from dispatch.triage_api import TriageAnswersSerializer


class RegisterSerializer(serializers.Serializer):
    phone = serializers.CharField(max_length=20)
    password = serializers.CharField(max_length=128, write_only=True)
    name = serializers.CharField(max_length=100)


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150, help_text="A citizen's phone number, or a staff username.")
    password = serializers.CharField(max_length=128, write_only=True)


class TokenResponseSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Shown once; send it as `Authorization: Token <token>`.")
    user_id = serializers.IntegerField()
    role = serializers.CharField()
    expires_at = serializers.DateTimeField(help_text="When this token stops working (sign in again then).")


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    name = serializers.CharField()
    phone = serializers.CharField(allow_null=True)
    role = serializers.CharField()
    supervisor = serializers.BooleanField(
        help_text="A shift supervisor (a dispatcher who may declare surge mode, update units in bulk and read reports)."
    )
    ambulance = serializers.IntegerField(allow_null=True, help_text="The unit a crew member is bound to.")
    hospital = serializers.IntegerField(allow_null=True, help_text="The hospital a hospital user is bound to.")


class SosSerializer(FixInputSerializer):
    for_self = serializers.BooleanField(default=True, help_text="False when calling for a relative or a passer-by.")
    complaint = serializers.ChoiceField(choices=Complaint.choices, default=Complaint.UNKNOWN)
    note = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")
    triage = TriageAnswersSerializer(
        required=False, help_text="Answers to the first questions, if the caller gave any before tapping (they may follow)."
    )
    silent = serializers.BooleanField(
        default=False, help_text="The caller cannot speak (deaf, or hiding): the centre texts on the case, never calls back."
    )


class CancelSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class CitizenCaseSnapshotSerializer(CitizenCaseSerializer):
    last_seq = serializers.IntegerField(read_only=True, help_text="Newest seq of /ws/cases/{id}/ when this was read.")

    class Meta(CitizenCaseSerializer.Meta):
        fields = (*CitizenCaseSerializer.Meta.fields, "last_seq")
