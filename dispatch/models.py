"""Cases, units, hospitals, admissions, and the event log every console reads from."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from dispatch.phones import PHONE_HELP, normalize_caller_phone, validate_phone


# Every stored position is WGS-84. The API validates before storing; these also hold the admin's
# forms (reference data: stations, hospitals, a new unit's first position) to the same ranges.
LAT_VALIDATORS = [MinValueValidator(-90.0), MaxValueValidator(90.0)]
LON_VALIDATORS = [MinValueValidator(-180.0), MaxValueValidator(180.0)]


def validate_capabilities(value) -> None:
    # Routing takes set(capabilities): anything but a list of names would break every suggestion.
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError('Give a list of capability names, e.g. ["chest_pain", "pci"].')


class Capability(models.TextChoices):
    """The five centres of Chinese emergency care plus the services dispatch routes by."""

    CHEST_PAIN = "chest_pain", "Chest pain centre 胸痛中心"
    STROKE = "stroke", "Stroke centre 卒中中心"
    TRAUMA = "trauma", "Trauma centre 创伤中心"
    CRITICAL_MATERNAL = "critical_maternal", "Critical maternal 危重孕产妇救治中心"
    CRITICAL_NEONATAL = "critical_neonatal", "Critical neonatal 危重新生儿救治中心"
    PCI = "pci", "PCI 介入"
    PAEDIATRICS = "paediatrics", "Paediatrics 儿科"
    BURNS = "burns", "Burns 烧伤"
    GENERAL_ED = "general_ed", "General emergency 急诊"


class Complaint(models.TextChoices):
    UNKNOWN = "unknown", "Unknown 未知"
    CHEST_PAIN = "chest_pain", "Chest pain 胸痛"
    STROKE = "stroke", "Stroke signs 卒中"
    TRAUMA = "trauma", "Injury 外伤"
    BREATHING = "breathing", "Breathing problem 呼吸困难"
    UNCONSCIOUS = "unconscious", "Unconscious 意识丧失"
    CARDIAC_ARREST = "cardiac_arrest", "Cardiac arrest 心脏骤停"
    PREGNANCY = "pregnancy", "Pregnancy / childbirth 妊娠分娩"
    NEWBORN = "newborn", "Newborn 新生儿"
    CHILD = "child", "Sick child 儿童"
    BURNS = "burns", "Burns 烧伤"
    OTHER = "other", "Other 其他"


class Station(models.Model):
    code = models.CharField(max_length=32, unique=True)
    name_zh = models.CharField(max_length=100)
    name_en = models.CharField(max_length=100)
    district = models.CharField(max_length=64, blank=True)
    lat = models.FloatField(validators=LAT_VALIDATORS)
    lon = models.FloatField(validators=LON_VALIDATORS)

    def __str__(self) -> str:
        return f"{self.code} {self.name_zh}"


class EdStatus(models.TextChoices):
    OPEN = "open", "Open 开放"
    DIVERTING = "diverting", "Diverting 分流"


class Hospital(models.Model):
    code = models.CharField(max_length=32, unique=True)
    name_zh = models.CharField(max_length=200)
    name_en = models.CharField(max_length=200)
    lat = models.FloatField(validators=LAT_VALIDATORS)
    lon = models.FloatField(validators=LON_VALIDATORS)
    capabilities = models.JSONField(default=list, blank=True, validators=[validate_capabilities])
    ed_status = models.CharField(max_length=16, choices=EdStatus.choices, default=EdStatus.OPEN)
    ed_free_beds = models.PositiveIntegerField(default=0)
    # One service down (e.g. the cath lab) without diverting the whole ED: suggestions skip this
    # hospital for complaints that need a listed capability, and take it for everything else.
    unavailable_capabilities = models.JSONField(default=list, blank=True, validators=[validate_capabilities])

    def __str__(self) -> str:
        return f"{self.code} {self.name_zh}"


class UnitStatus(models.TextChoices):
    AVAILABLE = "available", "Available 待命"
    DISPATCHED = "dispatched", "Dispatched 已派"
    EN_ROUTE = "en_route", "En route 出车"
    ON_SCENE = "on_scene", "On scene 到达现场"
    TRANSPORTING = "transporting", "Transporting 转运中"
    AT_HOSPITAL = "at_hospital", "At hospital 到达医院"
    OUT_OF_SERVICE = "out_of_service", "Out of service 停用"


class UnitLevel(models.TextChoices):
    BLS = "bls", "Basic life support 基础生命支持"
    ALS = "als", "Advanced life support 高级生命支持"
    MICU = "micu", "Mobile ICU 监护型"


class Ambulance(models.Model):
    call_sign = models.CharField(max_length=32, unique=True)
    station = models.ForeignKey(Station, on_delete=models.PROTECT, related_name="ambulances")
    level = models.CharField(max_length=8, choices=UnitLevel.choices, default=UnitLevel.ALS)
    status = models.CharField(max_length=16, choices=UnitStatus.choices, default=UnitStatus.AVAILABLE)
    lat = models.FloatField(validators=LAT_VALIDATORS)
    lon = models.FloatField(validators=LON_VALIDATORS)
    position_at = models.DateTimeField(null=True, blank=True)
    # When a fix last went out on the dispatch stream: fixes in between are throttled
    # (UNIT_POSITION_PUSH_S). On the row, not in a worker's memory, so every worker agrees.
    position_pushed_at = models.DateTimeField(null=True, blank=True)
    status_at = models.DateTimeField(null=True, blank=True)
    # The unit's on-board phone: the hospital and the dispatcher ring the crew on it. Optional
    # (not every unit has one); stored as digits, like a caller's number.
    phone = models.CharField(max_length=32, blank=True, validators=[validate_phone], help_text=PHONE_HELP)

    class Meta:
        # The recommendation prefilter reads available units inside a bounding box.
        indexes = [models.Index(fields=["status", "lat", "lon"], name="ambulance_status_box")]

    def __str__(self) -> str:
        return self.call_sign

    def clean(self) -> None:
        super().clean()
        # "0371-6666 8888" as typed in the admin is stored as digits, so a tel: link dials it.
        if self.phone:
            self.phone = normalize_caller_phone(self.phone) or self.phone


class CrewMember(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="crew")
    ambulance = models.ForeignKey(Ambulance, on_delete=models.CASCADE, related_name="crew")

    def __str__(self) -> str:
        return f"{self.user} @ {self.ambulance}"


class HospitalStaff(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="hospital_staff")
    hospital = models.ForeignKey(Hospital, on_delete=models.CASCADE, related_name="staff")

    def __str__(self) -> str:
        return f"{self.user} @ {self.hospital}"


class CaseStatus(models.TextChoices):
    RECEIVED = "received", "Received 已接警"
    DISPATCHED = "dispatched", "Dispatched 已派车"
    EN_ROUTE = "en_route", "En route 出车途中"
    ON_SCENE = "on_scene", "On scene 到达现场"
    TRANSPORTING = "transporting", "Transporting 转运中"
    AT_HOSPITAL = "at_hospital", "At hospital 到达医院"
    HANDED_OVER = "handed_over", "Handed over 已交接"
    CLOSED = "closed", "Closed 已结束"
    CANCELLED = "cancelled", "Cancelled 已取消"


ACTIVE_CASE_STATUSES = (
    CaseStatus.RECEIVED,
    CaseStatus.DISPATCHED,
    CaseStatus.EN_ROUTE,
    CaseStatus.ON_SCENE,
    CaseStatus.TRANSPORTING,
    CaseStatus.AT_HOSPITAL,
    CaseStatus.HANDED_OVER,
)
UNIT_HOLDING_STATUSES = ACTIVE_CASE_STATUSES[1:]
# While the unit serves the caller: from being sent until the patient is at the hospital. At
# handover care passes to the hospital and the unit is about to serve someone else, so from then
# on the caller keeps the call sign and the milestones but no longer sees the unit's live status,
# position or ETA (a past patient must not be able to follow a crew to its next patient).
UNIT_SERVING_STATUSES = (
    CaseStatus.DISPATCHED,
    CaseStatus.EN_ROUTE,
    CaseStatus.ON_SCENE,
    CaseStatus.TRANSPORTING,
    CaseStatus.AT_HOSPITAL,
)


class Priority(models.IntegerChoices):
    """How soon minutes decide (1 = immediately life-threatening … 4 = non-urgent)."""

    IMMEDIATE = 1, "1 · Immediately life-threatening 危及生命"
    URGENT = 2, "2 · Urgent 紧急"
    SOON = 3, "3 · Less urgent 较急"
    NON_URGENT = 4, "4 · Non-urgent 非紧急"


class CaseSource(models.TextChoices):
    TAP = "tap", "One-key tap 一键呼救"
    PHONE = "phone", "Phoned in 电话报警"


class Case(models.Model):
    """One emergency. Milestone columns are named after NEMSIS v3.5 eTimes."""

    # A tap has a citizen account; a call taken by phone has none (caller is null) and carries the
    # caller's phone and name as the dispatcher typed them, and who took the call.
    caller = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="cases"
    )
    source = models.CharField(max_length=8, choices=CaseSource.choices, default=CaseSource.TAP)
    caller_phone = models.CharField(max_length=32, blank=True)
    caller_name = models.CharField(max_length=100, blank=True)
    reported_address = models.CharField(max_length=300, blank=True)  # what the caller said, as typed
    taken_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    for_self = models.BooleanField(default=True)
    complaint = models.CharField(max_length=20, choices=Complaint.choices, default=Complaint.UNKNOWN)
    note = models.CharField(max_length=1000, blank=True)
    status = models.CharField(max_length=16, choices=CaseStatus.choices, default=CaseStatus.RECEIVED, db_index=True)
    ambulance = models.ForeignKey(Ambulance, null=True, blank=True, on_delete=models.PROTECT, related_name="cases")
    hospital = models.ForeignKey(Hospital, null=True, blank=True, on_delete=models.PROTECT, related_name="cases")
    # Latest fix, WGS-84; every fix is kept in CaseLocation.
    lat = models.FloatField()
    lon = models.FloatField()
    accuracy_m = models.FloatField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True)
    cancel_reason = models.CharField(max_length=200, blank=True)
    # Set at once from what the tap or the call says (dispatch.triage), changed by a dispatcher
    # with a reason; every change is an event.
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.URGENT)
    priority_reason = models.CharField(max_length=300, blank=True)
    # The same grounds as data (dispatch.triage.Verdict.basis), for each page to word in its own
    # language; null on a case whose priority was set before it existed.
    priority_basis = models.JSONField(null=True, blank=True)
    # The call-taker's first questions as the caller answered them, each true / false / absent:
    # {"conscious": …, "breathing_normally": …, "heavy_bleeding": …}.
    triage = models.JSONField(default=dict, blank=True)
    # The caller cannot speak (deaf, or hiding from danger): text on the case, never a call back.
    silent = models.BooleanField(default=False)
    # Surge: a tap close in place and time to another (or by the same caller) is flagged; a
    # dispatcher merges it into the other, which closes it with that reason.
    possible_duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="merged_cases"
    )

    received_at = models.DateTimeField()  # eTimes.01 PSAP call date/time
    notified_at = models.DateTimeField(null=True, blank=True)  # eTimes.03 unit notified by dispatch
    en_route_at = models.DateTimeField(null=True, blank=True)  # eTimes.05 unit en route
    on_scene_at = models.DateTimeField(null=True, blank=True)  # eTimes.06 unit arrived on scene
    left_scene_at = models.DateTimeField(null=True, blank=True)  # eTimes.09 unit left scene
    at_destination_at = models.DateTimeField(null=True, blank=True)  # eTimes.11 arrived at destination
    transfer_of_care_at = models.DateTimeField(null=True, blank=True)  # eTimes.12 destination transfer of care
    back_in_service_at = models.DateTimeField(null=True, blank=True)  # eTimes.13 unit back in service
    cancelled_at = models.DateTimeField(null=True, blank=True)  # eTimes.14 unit cancelled
    closed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["caller", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="case_caller_idempotency_key",
            ),
            # A phoned-in call has no caller account: a double-clicked "create" is deduplicated by
            # the dispatcher who took it (NULL callers never collide in the constraint above).
            models.UniqueConstraint(
                fields=["taken_by", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False, source="phone"),
                name="case_taker_idempotency_key",
            ),
            # A unit carries at most one live case: the database refuses a double assignment
            # even if a code path forgets the lock.
            models.UniqueConstraint(
                fields=["ambulance"],
                condition=Q(status__in=[s.value for s in UNIT_HOLDING_STATUSES]),
                name="case_one_active_per_ambulance",
            ),
        ]
        indexes = [models.Index(fields=["status", "received_at"], name="case_queue")]

    def __str__(self) -> str:
        return f"Case {self.pk} ({self.status})"


class MessageSender(models.TextChoices):
    CALLER = "caller", "Caller 呼救者"
    DISPATCHER = "dispatcher", "Dispatcher 调度员"


class CaseMessage(models.Model):
    """A short text between a silent caller and the centre, on the case."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="messages")
    sender = models.CharField(max_length=16, choices=MessageSender.choices)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    text = models.CharField(max_length=500)
    sent_at = models.DateTimeField()

    class Meta:
        ordering = ["sent_at", "id"]


class LocationSource(models.TextChoices):
    GPS = "gps", "GPS"
    NETWORK = "network", "Network"
    WIFI = "wifi", "Wi-Fi"
    CELL = "cell", "Cell"
    FUSED = "fused", "Fused"
    MANUAL = "manual", "Manual"


class Crs(models.TextChoices):
    WGS84 = "wgs84", "WGS-84"
    GCJ02 = "gcj02", "GCJ-02 (China map SDKs)"
    BD09 = "bd09", "BD-09 (Baidu)"


class CaseLocation(models.Model):
    """Every fix the caller's phone sent, in the fields of Advanced Mobile Location."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="locations")
    lat = models.FloatField()
    lon = models.FloatField()
    accuracy_m = models.FloatField(null=True, blank=True)
    altitude_m = models.FloatField(null=True, blank=True)
    floor = models.CharField(max_length=16, blank=True)
    source = models.CharField(max_length=10, choices=LocationSource.choices, blank=True)
    crs = models.CharField(max_length=8, choices=Crs.choices, default=Crs.WGS84)
    fix_time = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["received_at", "id"]


class AdmissionStatus(models.TextChoices):
    INCOMING = "incoming", "Incoming 待接收"
    ACKNOWLEDGED = "acknowledged", "Acknowledged 已登记"
    ARRIVED = "arrived", "Arrived 已到院"
    HANDED_OVER = "handed_over", "Handed over 已交接"
    CANCELLED = "cancelled", "Cancelled 已取消"


class Admission(models.Model):
    """上车即入院: opened the moment the patient is on board, before the ambulance arrives."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="admissions")
    hospital = models.ForeignKey(Hospital, on_delete=models.PROTECT, related_name="admissions")
    ambulance = models.ForeignKey(Ambulance, on_delete=models.PROTECT, related_name="admissions")
    status = models.CharField(max_length=16, choices=AdmissionStatus.choices, default=AdmissionStatus.INCOMING)
    eta_at = models.DateTimeField(null=True, blank=True)
    eta_s = models.PositiveIntegerField(null=True, blank=True)
    registration_no = models.CharField(max_length=64, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    opened_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["case"],
                condition=Q(status__in=["incoming", "acknowledged", "arrived"]),
                name="admission_one_open_per_case",
            )
        ]
        indexes = [models.Index(fields=["hospital", "status"], name="admission_feed")]


class AlertKind(models.TextChoices):
    CASE_UNASSIGNED = "case_unassigned", "Case unassigned too long 超时未派车"
    CREW_NOT_ROLLING = "crew_not_rolling", "Crew not en route 车组未出车"
    ADMISSION_UNACKNOWLEDGED = "admission_unacknowledged", "Hospital has not acknowledged 医院未确认"
    UNIT_GPS_SILENT = "unit_gps_silent", "Unit GPS silent 车辆定位中断"
    SURGE_PROPOSED = "surge_proposed", "Surge proposed 建议启动高峰模式"


class AlertState(models.TextChoices):
    PENDING = "pending", "Pending 待触发"
    RAISED = "raised", "Raised 已告警"
    CLEARED = "cleared", "Cleared 已解除"


class Alert(models.Model):
    """An escalation that does not depend on someone watching.

    Written ``pending`` with its ``due_at`` by the service that starts the clock (a case received,
    a unit assigned, an admission opened…); whichever worker's tick claims it once due
    (``select_for_update(skip_locked=True)``) raises it, once; the action that resolves the
    condition clears it. Both transitions are events on the dispatch stream."""

    kind = models.CharField(max_length=32, choices=AlertKind.choices)
    state = models.CharField(max_length=8, choices=AlertState.choices, default=AlertState.PENDING)
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    ambulance = models.ForeignKey(Ambulance, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    admission = models.ForeignKey(Admission, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    hospital = models.ForeignKey(Hospital, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts")
    # What the alert is about, as one non-null key ("case.12", "admission.5", "ambulance.3",
    # "centre"): the uniqueness below then holds on every database (NULLs never collide).
    subject = models.CharField(max_length=48)
    due_at = models.DateTimeField()
    raised_at = models.DateTimeField(null=True, blank=True)
    # Repeating alerts (a hospital that does not answer is asked again every 2 minutes).
    repeats = models.PositiveIntegerField(default=0)
    cleared_at = models.DateTimeField(null=True, blank=True)
    cleared_by = models.CharField(max_length=64, blank=True)  # what resolved it, e.g. "case.assigned"
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["state", "due_at"], name="alert_due")]
        constraints = [
            # One open alert of a kind per subject: two workers (or two services) cannot start the
            # same clock twice.
            models.UniqueConstraint(
                fields=["kind", "subject"],
                condition=Q(state__in=["pending", "raised"]),
                name="alert_one_open_per_subject",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.state} (case {self.case_id}, unit {self.ambulance_id})"


class CentreState(models.Model):
    """The dispatch centre's one row of shared mode: surge (declared or proposed)."""

    surge = models.BooleanField(default=False)
    surge_declared_at = models.DateTimeField(null=True, blank=True)
    surge_declared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    surge_reason = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(null=True, blank=True)


class StreamCounter(models.Model):
    """The newest sequence number of each event stream.

    Taking this row's lock (an upsert) inside the writer's transaction makes sequence numbers
    commit-ordered per stream: a writer cannot take seq N+1 until the holder of N committed.
    An autoincrement id gives no such promise."""

    stream = models.CharField(max_length=64, primary_key=True)
    last_seq = models.BigIntegerField(default=0)


class Event(models.Model):
    """The outbox: written in the same transaction as the change, published after commit."""

    stream = models.CharField(max_length=64)
    seq = models.BigIntegerField()
    type = models.CharField(max_length=48)
    at = models.DateTimeField()
    data = models.JSONField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["stream", "seq"], name="event_stream_seq")]
        indexes = [models.Index(fields=["at"], name="event_at")]

    def __str__(self) -> str:
        return f"{self.stream}#{self.seq} {self.type}"


class CrewCommand(models.Model):
    """A crew button press carrying an Idempotency-Key, stored in the same transaction as the change
    it made: a tablet that lost its answer in a tunnel sends the press again, possibly to another
    worker, and gets the first answer back instead of a second transition (or a 409)."""

    ambulance = models.ForeignKey(Ambulance, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    response_json = models.JSONField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["ambulance", "key"], name="crew_command_unit_key")]

    def __str__(self) -> str:
        return f"{self.ambulance_id}:{self.key}"
