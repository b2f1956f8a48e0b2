"""The archive as the API sees it.

The fields below document the wire format (OpenAPI schema, browsable API); validation itself is
``health_records.validation.validate_archive``, shared with the bulk import so the two can never
disagree. ``ArchiveSerializer.is_valid()`` runs it and reports DRF-shaped per-field errors.
"""

from __future__ import annotations

from rest_framework import serializers

from health_records import validation as v


class BloodTypeSerializer(serializers.Serializer):
    abo = serializers.ChoiceField(choices=v.ABO_GROUPS, default="unknown")
    rh = serializers.ChoiceField(choices=v.RH_FACTORS, default="unknown")


class AllergySerializer(serializers.Serializer):
    substance = serializers.CharField(max_length=v.ITEM_MAX)
    reaction = serializers.CharField(max_length=v.ITEM_MAX, required=False, allow_blank=True)
    severity = serializers.ChoiceField(choices=v.SEVERITIES, required=False, allow_null=True)


class MedicationSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=v.ITEM_MAX)
    dose = serializers.CharField(max_length=v.ITEM_MAX, required=False, allow_blank=True)


class SurgerySerializer(serializers.Serializer):
    name = serializers.CharField(max_length=v.ITEM_MAX)
    year = serializers.IntegerField(min_value=1900, required=False, allow_null=True)


class PregnancySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=v.PREGNANCY_STATUSES)
    due_date = serializers.DateField(required=False, allow_null=True)


class ContactSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=v.NAME_MAX)
    relation = serializers.CharField(max_length=50)
    phone = serializers.CharField(max_length=20)


class DoctorSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=v.NAME_MAX)
    phone = serializers.CharField(max_length=20, required=False, allow_blank=True)


class ArchiveSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=v.NAME_MAX)
    sex = serializers.ChoiceField(choices=v.SEXES, default="unknown")
    date_of_birth = serializers.DateField(required=False, allow_null=True, help_text="Not in the future.")
    national_id = serializers.CharField(
        required=False, allow_null=True, min_length=18, max_length=18,
        help_text="18-character PRC resident ID (居民身份证号), checked digit; must agree with date_of_birth and sex. "
        "Recorded as stated by you: it is never refused as taken and gives no access to any other archive.",
    )
    phone = serializers.CharField(
        required=False, allow_null=True, help_text="Mainland China mobile number (recorded as stated, like national_id)."
    )
    blood_type = BloodTypeSerializer(required=False, help_text="ABO group and Rh factor.")
    allergies = AllergySerializer(many=True, required=False, max_length=v.LIST_MAX)
    chronic_conditions = serializers.ListField(
        child=serializers.CharField(max_length=v.ITEM_MAX), required=False, max_length=v.LIST_MAX
    )
    medications = MedicationSerializer(many=True, required=False, max_length=v.LIST_MAX)
    past_surgeries = SurgerySerializer(many=True, required=False, max_length=v.LIST_MAX)
    implanted_devices = serializers.ListField(
        child=serializers.CharField(max_length=v.ITEM_MAX), required=False, max_length=v.DEVICES_MAX
    )
    pregnancy = PregnancySerializer(required=False, allow_null=True)
    emergency_contacts = ContactSerializer(many=True, required=False, max_length=v.CONTACTS_MAX)
    family_doctor = DoctorSerializer(required=False, allow_null=True)
    advance_directives = serializers.CharField(max_length=v.TEXT_MAX, required=False, allow_blank=True)
    notes = serializers.CharField(max_length=v.TEXT_MAX, required=False, allow_blank=True)
    consent_share_with_120 = serializers.BooleanField(
        default=False, help_text="Share this archive with the 120 centre in an emergency (off until you turn it on)."
    )

    def to_internal_value(self, data):
        clean, errors = v.validate_archive(data)
        if errors:
            raise serializers.ValidationError(errors)
        return clean


class ArchiveOutSerializer(ArchiveSerializer):
    verified_at = serializers.DateTimeField(allow_null=True, help_text="When the contents were last confirmed.")
    updated_at = serializers.DateTimeField()
    version = serializers.IntegerField()


class AccessLogEntrySerializer(serializers.Serializer):
    seq = serializers.IntegerField(help_text="Position in the tamper-evident access log.")
    at = serializers.DateTimeField()
    reader = serializers.CharField(help_text="Username of the staff member who read the archive.")
    reader_display = serializers.CharField(
        help_text="Who read it as a person recognises them: \"120 dispatcher 120调度员\", a unit's call sign and "
        "\"crew 车组\", or the hospital's name (from the reader's current unit or hospital)."
    )
    role = serializers.ChoiceField(choices=["dispatcher", "crew", "hospital"])
    case_ref = serializers.CharField(help_text="The case the read was for, e.g. case:42.")
    purpose = serializers.CharField()
    override = serializers.BooleanField(help_text="True when read under an emergency override (without consent).")


class AccessLogSerializer(serializers.Serializer):
    entries = AccessLogEntrySerializer(many=True)
    next_before = serializers.IntegerField(allow_null=True, help_text="Pass as ?before= for older entries.")
