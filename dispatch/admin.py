"""The operator's admin. Reference data (names, codes, capabilities, stations, levels, phones) is
edited here, and each save goes through a service that announces it to the consoles that show it.
Live state (a case's status, unit and milestones; a unit's status and position; an admission) is
read-only: consoles learn of a change only through its event, so a state change made
by saving a form would leave every console stale. Where an operator must change state, an admin
action or save goes through the same service the API uses, and so emits the same events."""

from django import forms
from django.contrib import admin, messages

from dispatch import services
from dispatch.errors import DispatchError
from dispatch.models import (
    Admission,
    Ambulance,
    Case,
    CaseLocation,
    CrewMember,
    EdStatus,
    Event,
    Hospital,
    HospitalStaff,
    Station,
    UnitStatus,
)


def _report(modeladmin, request, done: list[str], refused: list[str]) -> None:
    if done:
        modeladmin.message_user(request, "; ".join(done), messages.SUCCESS)
    if refused:
        modeladmin.message_user(request, "Not changed: " + "; ".join(refused), messages.WARNING)


@admin.register(Station)
class StationAdmin(admin.ModelAdmin):
    list_display = ("code", "name_zh", "name_en", "district", "lat", "lon")
    search_fields = ("code", "name_zh", "name_en")


class HospitalAdminForm(forms.ModelForm):
    class Meta:
        model = Hospital
        fields = "__all__"

    def clean(self):
        data = super().clean()
        # Said here, on the form, rather than refused by the service after the save began.
        lost = set(data.get("unavailable_capabilities") or ())
        unknown = sorted(lost - set(data.get("capabilities") or ()))
        if unknown:
            self.add_error("unavailable_capabilities", f"Not among this hospital's capabilities: {', '.join(unknown)}.")
        return data


@admin.register(Hospital)
class HospitalAdmin(admin.ModelAdmin):
    """Every field stays editable, and every save is announced: ED status, free beds and lost
    capabilities through ``services.hospital_set_status`` (the hospital's own status endpoint),
    code, names, position and capabilities through ``services.hospital_update``."""

    form = HospitalAdminForm
    list_display = ("code", "name_zh", "ed_status", "ed_free_beds")
    list_filter = ("ed_status",)
    search_fields = ("code", "name_zh", "name_en")
    actions = ("declare_diverting", "declare_open")
    STATE_FIELDS = ("ed_status", "ed_free_beds", "unavailable_capabilities")

    def has_delete_permission(self, request, obj=None):
        # Cases and admissions point at hospitals; a vanished hospital would also vanish silently
        # from every console. Declare it diverting instead.
        return False

    def save_model(self, request, obj, form, change):
        if not change:
            services.hospital_register(hospital=obj)
            return
        wanted = {field: getattr(obj, field) for field in self.STATE_FIELDS}
        reference = {f: getattr(obj, f) for f in form.changed_data if f in services.HOSPITAL_REFERENCE_FIELDS}
        # Capabilities first: the lost ones are checked against them.
        services.hospital_update(hospital_id=obj.pk, changes=reference)
        services.hospital_set_status(hospital_id=obj.pk, **wanted)
        obj.refresh_from_db()

    def _set_ed_status(self, request, queryset, ed_status: str) -> None:
        for hospital in queryset:
            services.hospital_set_status(hospital_id=hospital.pk, ed_status=ed_status)
        self.message_user(request, f"{queryset.count()} hospital(s) now {ed_status}.", messages.SUCCESS)

    @admin.action(description="Declare diverting (分流) — announced to dispatch")
    def declare_diverting(self, request, queryset):
        self._set_ed_status(request, queryset, EdStatus.DIVERTING)

    @admin.action(description="Declare open (开放) — announced to dispatch")
    def declare_open(self, request, queryset):
        self._set_ed_status(request, queryset, EdStatus.OPEN)


@admin.register(Ambulance)
class AmbulanceAdmin(admin.ModelAdmin):
    list_display = ("call_sign", "station", "level", "status", "phone", "position_at")
    list_filter = ("status", "level", "station")
    search_fields = ("call_sign", "phone")
    actions = ("take_out_of_service", "return_to_service")

    def get_readonly_fields(self, request, obj=None):
        # A new unit is placed once, at its station; after that only its crew's GPS moves it.
        live = ("status", "status_at", "position_at")
        return live if obj is None else (*live, "lat", "lon")

    def has_delete_permission(self, request, obj=None):
        return False  # cases and admissions point at units; take one out of service instead

    def save_model(self, request, obj, form, change):
        if not change:
            services.unit_commission(unit=obj)
            return
        # Only reference fields are on the form; the service saves just those (a concurrent status
        # or GPS update by the crew is never overwritten) and announces them.
        changes = {f: getattr(obj, f) for f in form.changed_data if f in services.UNIT_REFERENCE_FIELDS}
        services.unit_update(ambulance_id=obj.pk, changes=changes)
        obj.refresh_from_db()

    def _set_status(self, request, queryset, status: str) -> None:
        done, refused = [], []
        for unit in queryset:
            try:
                services.unit_set_status(ambulance_id=unit.pk, status=status)
                done.append(f"{unit.call_sign} {status}")
            except DispatchError as exc:
                refused.append(f"{unit.call_sign}: {exc}")
        _report(self, request, done, refused)

    @admin.action(description="Take out of service (停用) — only a unit without a case")
    def take_out_of_service(self, request, queryset):
        self._set_status(request, queryset, UnitStatus.OUT_OF_SERVICE)

    @admin.action(description="Return to service (待命)")
    def return_to_service(self, request, queryset):
        self._set_status(request, queryset, UnitStatus.AVAILABLE)


class CaseLocationInline(admin.TabularInline):
    model = CaseLocation
    extra = 0
    readonly_fields = ("lat", "lon", "accuracy_m", "altitude_m", "floor", "crs", "source", "fix_time", "received_at")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ViewOnlyAdmin(admin.ModelAdmin):
    """Rows that only the services write (each change with its events): shown, never edited here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Case)
class CaseAdmin(ViewOnlyAdmin):
    """View only: a case changes through taps, dispatchers and crews. An operator may cancel."""

    list_display = ("id", "status", "complaint", "ambulance", "hospital", "received_at")
    list_filter = ("status", "complaint")
    inlines = [CaseLocationInline]
    actions = ("cancel_cases",)

    def has_cancel_permission(self, request):
        # The change form is closed (ViewOnlyAdmin), but cancelling is a change: only operators
        # who hold the change permission may, not everyone who may look.
        return request.user.has_perm("dispatch.change_case")

    @admin.action(description="Cancel (取消) — frees the unit and tells every console", permissions=["cancel"])
    def cancel_cases(self, request, queryset):
        done, refused = [], []
        for case in queryset:
            try:
                services.case_cancel(case_id=case.pk, reason="Cancelled by an operator in the admin")
                done.append(f"case {case.pk} cancelled")
            except DispatchError as exc:
                refused.append(f"case {case.pk}: {exc}")
        _report(self, request, done, refused)


@admin.register(Admission)
class AdmissionAdmin(ViewOnlyAdmin):
    list_display = ("id", "case", "hospital", "ambulance", "status", "registration_no", "opened_at")
    list_filter = ("status", "hospital")


@admin.register(Event)
class EventAdmin(ViewOnlyAdmin):
    """The outbox consoles resume from: a deleted or added row would break every resume."""

    list_display = ("stream", "seq", "type", "at")
    list_filter = ("type",)
    search_fields = ("stream",)


admin.site.register(CrewMember)
admin.site.register(HospitalStaff)
