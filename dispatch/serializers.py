"""Output serializers: one per entity and audience, used by REST snapshots and stream events alike.

The ``*_payload`` functions at the end are the one place each entity's wire form is built: every
REST snapshot and every stream event goes through them, so a console that applies events to a
snapshot ends up equal to a fresh snapshot (tests/test_event_contract.py proves it).
"""

from __future__ import annotations

import inspect
import math

from django.db import models
from django.db.models.query_utils import DeferredAttribute
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import SkipField
from rest_framework.relations import PKOnlyObject

from dispatch.geocoding import case_address
from dispatch.models import UNIT_SERVING_STATUSES, Admission, Ambulance, Case, CaseMessage, Hospital


class FiniteFloatField(serializers.FloatField):
    """A stored float that is not finite (NaN written by hand on PostgreSQL) goes out as null:
    strict JSON cannot carry it, and one bad row must not turn every read of it into a 500."""

    def to_representation(self, value):
        value = super().to_representation(value)
        return value if math.isfinite(value) else None


class ModelSerializer(serializers.ModelSerializer):
    serializer_field_mapping = {**serializers.ModelSerializer.serializer_field_mapping, models.FloatField: FiniteFloatField}

    def to_representation(self, instance):
        # DRF's loop, with the two commonest fields read directly: a column of the model (an
        # attribute read, not DRF's get_attribute walk with its callable and SkipField checks)
        # and a get_<name> method. Every payload of every stream comes through here, a tap's twice
        # and a unit's GPS fix once. tests/test_payload_reads.py holds it equal to DRF's loop.
        fields = self.fields
        plan = type(self).__dict__.get("_read_plan")
        if plan is None:
            plan = type(self)._read_plan = _read_plan(self)
        names, steps = plan
        if type(instance) is not self.Meta.model or tuple(fields) != names:
            return super().to_representation(instance)
        ret = {}
        for name, kind, attname in steps:
            if kind is _TEXT_COLUMN:
                value = getattr(instance, attname)
                # CharField.to_representation is str(value): for a str, the very same object.
                ret[name] = value if value is None or type(value) is str else fields[name].to_representation(value)
            elif kind is _COLUMN:
                value = getattr(instance, attname)
                ret[name] = None if value is None else fields[name].to_representation(value)
            elif kind is _METHOD:
                ret[name] = getattr(self, attname)(instance)
            else:
                field = fields[name]
                try:
                    attribute = field.get_attribute(instance)
                except SkipField:
                    continue
                check_for_none = attribute.pk if isinstance(attribute, PKOnlyObject) else attribute
                ret[name] = None if check_for_none is None else field.to_representation(attribute)
        return ret


_COLUMN, _TEXT_COLUMN, _METHOD, _ANY = "column", "text column", "method", "any"


def _read_plan(serializer: ModelSerializer) -> tuple[tuple[str, ...], tuple]:
    """Per serializer class: each readable field as a column read, a method call, or DRF's way."""
    model = serializer.Meta.model
    steps = []
    for field in serializer._readable_fields:
        kind, attname = _ANY, None
        if isinstance(field, serializers.SerializerMethodField):
            if (
                type(field).to_representation is serializers.SerializerMethodField.to_representation
                and type(field).get_attribute is serializers.Field.get_attribute
                and field.source == "*"
            ):
                kind, attname = _METHOD, field.method_name
        elif type(field).get_attribute is serializers.Field.get_attribute and len(field.source_attrs) == 1:
            name = field.source_attrs[0]
            # Only a column's own descriptor (concrete fields and their *_id): a property or method
            # of that name would be DRF's to call.
            if isinstance(inspect.getattr_static(model, name, None), DeferredAttribute):
                kind, attname = (_TEXT_COLUMN if type(field) is serializers.CharField else _COLUMN), name
        steps.append((field.field_name, kind, attname))
    return tuple(serializer.fields), tuple(steps)


MILESTONE_FIELDS = (
    "received_at",
    "notified_at",
    "en_route_at",
    "on_scene_at",
    "left_scene_at",
    "at_destination_at",
    "transfer_of_care_at",
    "back_in_service_at",
    "cancelled_at",
    "closed_at",
)
# The handover and the crew's return to service are the centre's business, not the caller's.
CITIZEN_MILESTONE_FIELDS = tuple(f for f in MILESTONE_FIELDS if f not in ("transfer_of_care_at", "back_in_service_at"))


class HospitalSerializer(ModelSerializer):
    unavailable_capabilities = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="Capabilities the hospital declared out of service for now (e.g. pci: the cath lab is down); "
        "suggestions skip it for complaints that need them and keep it for the rest.",
    )
    incoming = serializers.SerializerMethodField(
        help_text="Admissions on their way in (incoming or acknowledged): they count against ed_free_beds when "
        "suggesting a destination. Changes are announced as hospital.status_changed."
    )

    class Meta:
        model = Hospital
        fields = (
            "id", "code", "name_zh", "name_en", "lat", "lon", "capabilities", "ed_status", "ed_free_beds",
            "unavailable_capabilities", "incoming",
        )

    def get_incoming(self, hospital: Hospital) -> int:
        counted = getattr(hospital, "incoming_count", None)
        if counted is not None:
            return counted
        from dispatch.selectors import INCOMING_ADMISSION_STATUSES

        return hospital.admissions.filter(status__in=INCOMING_ADMISSION_STATUSES).count()


class BlankAsNullCharField(serializers.CharField):
    """An optional text column (blank when unknown) goes out as null, as caller_phone does."""

    def __init__(self, **kwargs):
        super().__init__(read_only=True, allow_null=True, **kwargs)

    def to_representation(self, value):
        return super().to_representation(value) if value else None


_UNIT_PHONE_HELP = "The unit's on-board phone (digits; a mobile or a fixed line), or null when none is on record."


class AmbulanceSerializer(ModelSerializer):
    station = serializers.SlugRelatedField(slug_field="code", read_only=True)
    phone = BlankAsNullCharField(help_text=_UNIT_PHONE_HELP)

    class Meta:
        model = Ambulance
        fields = ("id", "call_sign", "station", "level", "status", "phone", "lat", "lon", "position_at", "status_at")


class UnitBriefSerializer(ModelSerializer):
    """The unit inside a staff case or admission: the hospital and the dispatcher ring its phone."""

    phone = BlankAsNullCharField(help_text=_UNIT_PHONE_HELP)

    class Meta:
        model = Ambulance
        fields = ("id", "call_sign", "status", "phone", "lat", "lon", "position_at")


class HospitalBriefSerializer(ModelSerializer):
    class Meta:
        model = Hospital
        fields = ("id", "code", "name_zh", "name_en", "lat", "lon")


class AdmissionSerializer(ModelSerializer):
    case = serializers.IntegerField(source="case_id", read_only=True)
    hospital = serializers.IntegerField(source="hospital_id", read_only=True)
    ambulance = UnitBriefSerializer(read_only=True)
    complaint = serializers.CharField(source="case.complaint", read_only=True)
    for_self = serializers.BooleanField(source="case.for_self", read_only=True)
    case_status = serializers.CharField(source="case.status", read_only=True)

    class Meta:
        model = Admission
        fields = (
            "id",
            "case",
            "hospital",
            "ambulance",
            "status",
            "complaint",
            "for_self",
            "case_status",
            "eta_s",
            "eta_at",
            "registration_no",
            "acknowledged_at",
            "opened_at",
            "updated_at",
        )


def live_eta_s(case: Case) -> int | None:
    """Seconds until the case's unit reaches where it is heading now: the scene while dispatched or
    en route, the destination hospital while transporting; None otherwise. Computed from the stored
    positions, so every payload built after the same fix says the same number."""
    from dispatch.models import CaseStatus
    from dispatch.selectors import eta_between

    unit = case.ambulance
    if unit is None:
        return None
    if case.status in (CaseStatus.DISPATCHED, CaseStatus.EN_ROUTE):
        return eta_between(unit.lat, unit.lon, case.lat, case.lon)
    if case.status == CaseStatus.TRANSPORTING and case.hospital is not None:
        return eta_between(unit.lat, unit.lon, case.hospital.lat, case.hospital.lon)
    return None


def live_eta_target(case: Case) -> str | None:
    from dispatch.models import CaseStatus

    if case.ambulance is None:
        return None
    if case.status in (CaseStatus.DISPATCHED, CaseStatus.EN_ROUTE):
        return "scene"
    if case.status == CaseStatus.TRANSPORTING and case.hospital is not None:
        return "hospital"
    return None


class PriorityBasisSerializer(serializers.Serializer):
    """The schema of a case's priority_basis (dispatch.triage.Verdict); never run, see PriorityBasisField."""

    kind = serializers.ChoiceField(
        choices=("complaint", "answers", "archive", "dispatcher"),
        help_text="complaint: the centre's policy for the complaint; answers: the caller's answers raised it; archive: "
        "the health archive raised it (no condition named); dispatcher: a dispatcher set it (their words are in "
        "priority_reason).",
    )
    priority = serializers.IntegerField(help_text="The priority this basis gave.")
    complaint = serializers.CharField(required=False, help_text="kind complaint: the complaint (a Case complaint value).")
    answers = serializers.ListField(
        child=serializers.ChoiceField(choices=("conscious", "breathing_normally", "heavy_bleeding")),
        required=False,
        help_text="kind answers: the questions whose answer raised it (conscious and breathing_normally answered "
        "false, heavy_bleeding true).",
    )
    by = serializers.CharField(required=False, help_text="kind dispatcher: the dispatcher's username.")


@extend_schema_field(PriorityBasisSerializer(allow_null=True))
class PriorityBasisField(serializers.JSONField):
    # Stored as built (dispatch.triage): passed through as JSON, no per-case validation cost.
    pass


class CaseSerializer(ModelSerializer):
    """The staff view of a case (dispatcher, crew of its unit, its hospital). No health data:
    that is added per recipient at delivery time, never stored in an event."""

    # A tap: the citizen account's phone and name; a call taken by phone (no account): as typed.
    caller_phone = serializers.SerializerMethodField()
    caller_name = serializers.SerializerMethodField()
    # Offline reverse geocoding of the latest fix (dispatch.geocoding.case_address: pure, cached).
    address = serializers.SerializerMethodField(help_text="District and nearest known place of the latest fix.")
    district = serializers.SerializerMethodField(help_text="The district (区/县/市) of the latest fix, or null.")
    address_en = serializers.SerializerMethodField(help_text="`address` in English, for pages shown in English.")
    district_en = serializers.SerializerMethodField(help_text="`district` in English, or null.")
    ambulance = UnitBriefSerializer(read_only=True, allow_null=True)
    hospital = HospitalBriefSerializer(read_only=True, allow_null=True)
    eta_s = serializers.SerializerMethodField(
        help_text="Seconds until the unit reaches the scene (dispatched, en route) or the hospital (transporting); "
        "null otherwise. Updated on the unit's fixes."
    )
    eta_target = serializers.SerializerMethodField(help_text="What eta_s counts down to: scene, hospital or null.")
    admission = serializers.SerializerMethodField(
        help_text="The case's newest admission (status, ETA, the hospital's registration number), or null."
    )
    priority = serializers.IntegerField(
        read_only=True,
        help_text="1 = immediately life-threatening, 2 urgent, 3 less urgent, 4 non-urgent. Derived at once from the "
        "complaint and the caller's answers (dispatch.triage, PRIORITY_BY_COMPLAINT), raised by the health archive at "
        "the dispatcher's read, set by a dispatcher with a reason; every change is a case.triaged event.",
    )
    priority_reason = serializers.CharField(
        read_only=True, help_text='Why, in words: e.g. "complaint: chest pain → 1", "not breathing normally → 1".'
    )
    priority_basis = PriorityBasisField(
        read_only=True,
        allow_null=True,
        help_text='The same grounds as data, for a page to word in its own language: e.g. {"kind": "complaint", '
        '"complaint": "chest_pain", "priority": 1}. Null on a case triaged before the field existed: show '
        "priority_reason.",
    )
    triage = serializers.JSONField(
        read_only=True,
        help_text="The caller's answers to the first questions: conscious, breathing_normally, heavy_bleeding "
        "(each true / false, absent when not answered).",
    )
    silent = serializers.BooleanField(
        read_only=True, help_text="The caller cannot speak: text them on the case (messages), do not call back."
    )
    possible_duplicate_of = serializers.IntegerField(
        source="possible_duplicate_of_id",
        read_only=True,
        allow_null=True,
        help_text="An active case this one probably repeats (within DUPLICATE_RADIUS_M and DUPLICATE_WINDOW_S, or the "
        "same caller), set when the case was opened; merge it with POST …/merge {into}. Null when none.",
    )
    merged_into = serializers.IntegerField(
        source="merged_into_id",
        read_only=True,
        allow_null=True,
        help_text="The case this one was merged into (this one is then cancelled; that case's unit serves both).",
    )

    class Meta:
        model = Case
        fields = (
            "id",
            "status",
            "priority",
            "priority_reason",
            "priority_basis",
            "triage",
            "silent",
            "possible_duplicate_of",
            "merged_into",
            "for_self",
            "complaint",
            "note",
            "caller_phone",
            "caller_name",
            "source",
            "reported_address",
            "address",
            "district",
            "address_en",
            "district_en",
            "lat",
            "lon",
            "accuracy_m",
            "ambulance",
            "eta_s",
            "eta_target",
            "hospital",
            "cancel_reason",
            *MILESTONE_FIELDS,
            "updated_at",
            "admission",
        )

    def get_eta_s(self, case: Case) -> int | None:
        return live_eta_s(case)

    @extend_schema_field(AdmissionSerializer(allow_null=True))
    def get_admission(self, case: Case) -> dict | None:
        from dispatch.selectors import latest_admission_of_case

        prefetched = getattr(case, "_prefetched_objects_cache", {}).get("admissions")
        if prefetched is not None:
            admission = next(iter(prefetched), None)
        else:
            admission = latest_admission_of_case(case.pk)
        return AdmissionSerializer(admission).data if admission else None

    def get_eta_target(self, case: Case) -> str | None:
        return live_eta_target(case)

    def get_caller_phone(self, case: Case) -> str | None:
        return case.caller.phone if case.caller_id else (case.caller_phone or None)

    def get_caller_name(self, case: Case) -> str:
        return case.caller.first_name if case.caller_id else case.caller_name

    def get_address(self, case: Case) -> str | None:
        return case_address(case)["address"]

    def get_district(self, case: Case) -> str | None:
        return case_address(case)["district"]

    def get_address_en(self, case: Case) -> str | None:
        return case_address(case)["address_en"]

    def get_district_en(self, case: Case) -> str | None:
        return case_address(case)["district_en"]


class CitizenUnitSerializer(serializers.Serializer):
    """The unit as its caller sees it. Live fields are null once the unit no longer serves the case
    (see UNIT_SERVING_STATUSES): the caller keeps who came, not where that crew is now."""

    id = serializers.IntegerField()
    call_sign = serializers.CharField()
    status = serializers.CharField(allow_null=True)
    lat = serializers.FloatField(allow_null=True)
    lon = serializers.FloatField(allow_null=True)
    position_at = serializers.DateTimeField(allow_null=True)


class HelpComingSerializer(serializers.Serializer):
    """The schema of a merged case's help_coming (dispatch.merged.help_coming)."""

    status = serializers.ChoiceField(
        choices=("waiting", "dispatched", "en_route", "on_scene", "left_scene", "cancelled"),
        help_text="waiting: no unit sent yet; dispatched, en_route, on_scene: the unit's progress; left_scene: the crew "
        "has been and left; cancelled: that report was cancelled and no unit comes through it (call again).",
    )
    call_sign = serializers.CharField(allow_null=True, help_text="The unit coming, null until one is sent.")
    eta_s = serializers.IntegerField(
        allow_null=True, help_text="Seconds until the unit reaches your position, while dispatched or en route; else null."
    )


class CitizenCaseSerializer(ModelSerializer):
    """What the caller sees: who is coming, from where, and when."""

    ambulance = serializers.SerializerMethodField()
    hospital = HospitalBriefSerializer(read_only=True, allow_null=True)
    eta_s = serializers.SerializerMethodField()
    # No priority: it is the centre's working order, not a verdict to show a frightened caller.
    triage = serializers.JSONField(read_only=True, help_text="Your answers to the first questions, as the centre has them.")
    silent = serializers.BooleanField(read_only=True, help_text="You asked for text only: the centre writes, it does not call.")
    merged_into = serializers.IntegerField(
        source="merged_into_id",
        read_only=True,
        allow_null=True,
        help_text="Someone else reported the same emergency: this case was joined to theirs (then cancelled here) and "
        "their unit comes to you both. Null otherwise.",
    )
    help_coming = serializers.SerializerMethodField(
        help_text="When merged: the unit of the case yours was joined to, as it comes to you (call sign, progress, ETA "
        "to your position), and nothing about the other caller. Null when not merged; updated live on your case stream."
    )

    class Meta:
        model = Case
        fields = (
            "id",
            "status",
            "silent",
            "triage",
            "merged_into",
            "help_coming",
            "for_self",
            "complaint",
            "note",
            "lat",
            "lon",
            "accuracy_m",
            "ambulance",
            "eta_s",
            "hospital",
            *CITIZEN_MILESTONE_FIELDS,
            "updated_at",
        )

    @extend_schema_field(HelpComingSerializer(allow_null=True))
    def get_help_coming(self, case: Case) -> dict | None:
        from dispatch.merged import help_coming

        return help_coming(case, kept=self.context.get("kept"))

    @extend_schema_field(CitizenUnitSerializer(allow_null=True))
    def get_ambulance(self, case: Case) -> dict | None:
        if case.ambulance is None:
            return None
        data = UnitBriefSerializer(case.ambulance).data
        # The crew's phone is for the hospital and the dispatcher; the caller rings 120.
        data.pop("phone", None)
        if case.status not in UNIT_SERVING_STATUSES:
            data.update(status=None, lat=None, lon=None, position_at=None)
        return data

    def get_eta_s(self, case: Case) -> int | None:
        # While transporting the caller (or the family beside them) wants the hospital's ETA.
        return live_eta_s(case)


class CaseDetailSerializer(CaseSerializer):
    """One case in full for a dispatcher. The same as the staff view: kept as a name because the
    API schema and other modules refer to it."""

    class Meta(CaseSerializer.Meta):
        pass


# --- the one builder per entity and audience (REST snapshots and stream events) ----------------


# DRF builds a serializer's fields afresh for every instance (a deepcopy of the declared fields and
# model introspection): that was most of a payload's cost, twice per tap. The builders only read,
# so each uses one instance per class with its fields built once; to_representation keeps nothing
# on the instance, so threads share it. A builder that needs a context builds its own.
_READERS: dict[type, serializers.BaseSerializer] = {}


def _represent(serializer_class: type[serializers.BaseSerializer], instance) -> dict:
    reader = _READERS.get(serializer_class)
    if reader is None:
        reader = serializer_class()
        reader.fields  # noqa: B018 - built before another thread can see the reader
        _READERS[serializer_class] = reader
    return reader.to_representation(instance)


def staff_case_payload(case: Case) -> dict:
    """A case for dispatchers and its crew: the staff view with its admission and live ETA."""
    return _represent(CaseSerializer, case)


def citizen_case_payload(case: Case, *, kept: Case | None = None) -> dict:
    # kept: the case this one was merged into, when the caller already holds it (dispatch.merged).
    if kept is None:
        return _represent(CitizenCaseSerializer, case)
    return dict(CitizenCaseSerializer(case, context={"kept": kept}).data)


class CaseMessageSerializer(ModelSerializer):
    """A text on a silent call, the same for the caller and the dispatchers."""

    case = serializers.IntegerField(source="case_id", read_only=True)
    author = serializers.SerializerMethodField(
        help_text="Who wrote it, by display name (a dispatcher's name, or the caller's); never a username."
    )

    class Meta:
        model = CaseMessage
        fields = ("id", "case", "sender", "author", "text", "sent_at")

    def get_author(self, message: CaseMessage) -> str:
        author = message.author
        name = (author.first_name or "").strip() if author is not None else ""
        return name or message.get_sender_display()


def message_payload(message: CaseMessage) -> dict:
    return _represent(CaseMessageSerializer, message)


def unit_payload(unit: Ambulance) -> dict:
    """A unit with its last fix (lat, lon, position_at: when the fix was taken in) and status."""
    return _represent(AmbulanceSerializer, unit)


def admission_payload(admission: Admission) -> dict:
    return _represent(AdmissionSerializer, admission)


def hospital_payload(hospital: Hospital) -> dict:
    return _represent(HospitalSerializer, hospital)


# --- alerts (dispatch.alerts) ------------------------------------------------------------------


class SuggestedUnitSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    call_sign = serializers.CharField()
    distance_m = serializers.IntegerField()
    eta_s = serializers.IntegerField(allow_null=True)


class AlertSerializer(serializers.Serializer):
    """An escalation as consoles show it (alert.raised / alert.cleared events, alert snapshots)."""

    id = serializers.IntegerField()
    kind = serializers.ChoiceField(
        choices=["case_unassigned", "crew_not_rolling", "admission_unacknowledged", "unit_gps_silent", "surge_proposed"],
        help_text="case_unassigned: no unit within the priority's threshold (ALERT_UNASSIGNED_S); crew_not_rolling: "
        "not en route ALERT_NOT_ROLLING_S after being sent; admission_unacknowledged: the hospital has not answered "
        "within ALERT_ADMISSION_ACK_S (asked again as often); unit_gps_silent: a unit on a case sent no fix for "
        "ALERT_GPS_SILENT_S; surge_proposed: unassigned urgent cases pile up.",
    )
    kind_label = serializers.CharField(help_text="The kind in words (English and Chinese).")
    state = serializers.ChoiceField(choices=["raised", "cleared"], help_text="raised until the resolving action clears it.")
    case = serializers.IntegerField(allow_null=True, help_text="The case it is about, if any.")
    # Ids only: consoles hold the units and hospitals already (an admin renaming a unit must not
    # leave a stale call sign in an alert no event updates).
    ambulance = serializers.IntegerField(allow_null=True, help_text="The unit it is about (not rolling, GPS silent), if any.")
    admission = serializers.IntegerField(allow_null=True, help_text="The admission the hospital has not acknowledged.")
    hospital = serializers.IntegerField(allow_null=True, help_text="The hospital that has not answered.")
    since = serializers.DateTimeField(
        allow_null=True,
        help_text="Since when the condition holds: the call, the assignment, the admission's opening, the unit's last fix.",
    )
    raised_at = serializers.DateTimeField(allow_null=True)
    repeats = serializers.IntegerField(help_text="How many times it was raised again (the hospital board repeats).")
    cleared_at = serializers.DateTimeField(allow_null=True)
    cleared_by = serializers.CharField(
        allow_blank=True, help_text='What resolved it, e.g. "case.assigned", "unit.en_route", "admission.acknowledged", "resolved".'
    )
    action = serializers.CharField(help_text="What to do, in words (English and Chinese).")
    suggested_units = SuggestedUnitSerializer(
        many=True,
        help_text="For a case waiting on a unit: the best available units now (its own unit excluded). A ranking at "
        "the time of reading, not state: refetch the snapshot for a fresh one.",
    )


def _alert_since(alert):
    kind = alert.kind
    if kind == "case_unassigned" and alert.case is not None:
        return alert.case.received_at
    if kind == "unit_gps_silent" and alert.ambulance is not None and alert.ambulance.position_at is not None:
        return alert.ambulance.position_at
    return alert.created_at


def alert_payload(alert, *, suggested_units: list[dict] | None = None) -> dict:
    """An Alert (with its case and ambulance loaded) as the wire shows it."""
    from dispatch.alerts import ACTIONS

    data = {
        "id": alert.pk,
        "kind": alert.kind,
        "kind_label": str(alert.get_kind_display()),
        "state": alert.state,
        "case": alert.case_id,
        "ambulance": alert.ambulance_id,
        "admission": alert.admission_id,
        "hospital": alert.hospital_id,
        "since": _alert_since(alert),
        "raised_at": alert.raised_at,
        "repeats": alert.repeats,
        "cleared_at": alert.cleared_at,
        "cleared_by": alert.cleared_by,
        "action": ACTIONS.get(alert.kind, ""),
        "suggested_units": list(suggested_units or []),
    }
    return dict(AlertSerializer(data).data)
