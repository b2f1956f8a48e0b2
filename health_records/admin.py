"""Operators see metadata only: no decrypted contents, and nothing here can edit the access log."""

from __future__ import annotations

import uuid

from django.contrib import admin, messages
from django.utils import timezone

from health_records import blind_index
from health_records.models import AccessGrant, AccessLogEntry, Archive, ArchiveVersion, OverrideReview
from health_records.validation import parse_national_id


@admin.register(Archive)
class ArchiveAdmin(admin.ModelAdmin):
    list_display = ("id", "owner", "source", "version", "kek_id", "consent_share_with_120", "verified_at", "updated_at")
    list_filter = ("source", "consent_share_with_120", "kek_id")
    search_fields = ("=id",)
    search_help_text = "Search by a national ID or a phone number (through the blind index), or by archive id."
    fields = ("id", "owner", "source", "version", "kek_id", "consent_share_with_120", "consent_changed_at",
              "verified_at", "created_at", "updated_at")
    readonly_fields = fields
    raw_id_fields = ("owner",)

    def has_add_permission(self, request):
        return False  # archives are written encrypted by the services, never typed in here

    def has_change_permission(self, request, obj=None):
        return False

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            parse_national_id(term)
        except ValueError:
            pass
        else:
            return queryset.filter(national_id_bidx=blind_index.national_id_index(term)), False
        phone = blind_index.normalize_phone(term)
        if phone.isdigit() and len(phone) == 11:
            return queryset.filter(phone_bidx=blind_index.phone_index(phone)), False
        try:
            return queryset.filter(pk=uuid.UUID(term)), False
        except ValueError:
            return queryset.none(), False


@admin.register(ArchiveVersion)
class ArchiveVersionAdmin(admin.ModelAdmin):
    list_display = ("archive", "version", "source", "kek_id", "written_at", "superseded_at")
    fields = ("archive", "version", "source", "kek_id", "written_at", "superseded_at")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(AccessGrant)
class AccessGrantAdmin(admin.ModelAdmin):
    list_display = ("case_ref", "grantee", "role", "patient", "purpose", "override_review", "opened_at", "closed_at")
    list_filter = ("role", "override_review")
    search_fields = ("case_ref",)
    readonly_fields = ("case_ref", "grantee", "role", "patient", "purpose", "override_reason", "override_review",
                       "reviewed_by", "reviewed_at", "opened_at", "expires_at", "closed_at")
    actions = ["mark_override_reviewed"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Mark the emergency override as reviewed")
    def mark_override_reviewed(self, request, queryset):
        count = queryset.filter(override_review=OverrideReview.PENDING).update(
            override_review=OverrideReview.REVIEWED, reviewed_by=request.user, reviewed_at=timezone.now()
        )
        self.message_user(request, f"{count} override(s) marked reviewed.", messages.SUCCESS)


@admin.register(AccessLogEntry)
class AccessLogEntryAdmin(admin.ModelAdmin):
    list_display = ("seq", "at", "reader_username", "role", "case_ref", "purpose", "override", "archive_id")
    list_filter = ("role", "override")
    search_fields = ("case_ref", "reader_username")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
