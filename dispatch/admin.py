from django.contrib import admin

from dispatch.models import Admission, Ambulance, Case, CaseLocation, CrewMember, Event, Hospital, HospitalStaff, Station


@admin.register(Station)
class StationAdmin(admin.ModelAdmin):
    list_display = ("code", "name_zh", "name_en", "district", "lat", "lon")
    search_fields = ("code", "name_zh", "name_en")


@admin.register(Hospital)
class HospitalAdmin(admin.ModelAdmin):
    list_display = ("code", "name_zh", "ed_status", "ed_free_beds")
    list_filter = ("ed_status",)
    search_fields = ("code", "name_zh", "name_en")


@admin.register(Ambulance)
class AmbulanceAdmin(admin.ModelAdmin):
    list_display = ("call_sign", "station", "level", "status", "position_at")
    list_filter = ("status", "level", "station")
    search_fields = ("call_sign",)


class CaseLocationInline(admin.TabularInline):
    model = CaseLocation
    extra = 0
    readonly_fields = ("lat", "lon", "accuracy_m", "crs", "source", "fix_time", "received_at")


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    list_display = ("id", "status", "complaint", "ambulance", "hospital", "received_at")
    list_filter = ("status", "complaint")
    inlines = [CaseLocationInline]
    raw_id_fields = ("caller", "ambulance", "hospital")


@admin.register(Admission)
class AdmissionAdmin(admin.ModelAdmin):
    list_display = ("id", "case", "hospital", "ambulance", "status", "registration_no", "opened_at")
    list_filter = ("status", "hospital")


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("stream", "seq", "type", "at")
    list_filter = ("type",)
    search_fields = ("stream",)

    def has_change_permission(self, request, obj=None):
        return False


admin.site.register(CrewMember)
admin.site.register(HospitalStaff)
