"""Operators see metadata only: no decrypted contents, and nothing here can edit the access log.

Finding an archive by national ID or phone goes through a small POST form (``find/``): the
identifier travels in the request body and the answer is a redirect to archive ids, so it never
lands in a URL (browser history, Referer headers, proxy and server access logs). The changelist's
own search box (a GET parameter) takes archive ids only.
"""

from __future__ import annotations

import logging
import uuid

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from health_records import blind_index, selectors
from health_records.models import AccessGrant, AccessLogEntry, Archive, ArchiveVersion, OverrideReview
from health_records.validation import parse_national_id

logger = logging.getLogger(__name__)


class ArchiveFindForm(forms.Form):
    identifier = forms.CharField(
        label="National ID or mobile phone", max_length=32, strip=True,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autofocus": True}),
    )

    def clean_identifier(self) -> dict[str, str]:
        term = self.cleaned_data["identifier"]
        try:
            parse_national_id(term.upper())
        except ValueError:
            pass
        else:
            return {"national_id": term}
        phone = blind_index.normalize_phone(term)
        if phone.isdigit() and len(phone) == 11:
            return {"phone": phone}
        raise forms.ValidationError("Enter an 18-character national ID or an 11-digit mainland mobile number.")


@admin.register(Archive)
class ArchiveAdmin(admin.ModelAdmin):
    list_display = ("id", "owner", "source", "identity", "version", "kek_id", "consent_share_with_120", "verified_at",
                    "updated_at")
    list_filter = ("source", "consent_share_with_120", "kek_id")
    search_fields = ("=id",)
    search_help_text = (
        "Search by archive id. To find an archive by national ID or phone, use \u201cFind by national ID or phone\u201d "
        "above: the identifier is sent in the form body, never in the address."
    )
    fields = ("id", "owner", "source", "identity", "version", "kek_id", "consent_share_with_120", "consent_changed_at",
              "verified_at", "created_at", "updated_at")
    readonly_fields = fields
    raw_id_fields = ("owner",)
    change_list_template = "admin/health_records/archive/change_list.html"

    def has_add_permission(self, request):
        return False  # archives are written encrypted by the services, never typed in here

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="identifiers")
    def identity(self, obj: Archive) -> str:
        if obj.national_id_bidx is not None or obj.phone_bidx is not None:
            return "verified (imported)"
        if obj.claimed_national_id_bidx is not None or obj.claimed_phone_bidx is not None:
            return "stated by the owner (unverified)"
        return "none"

    def get_search_results(self, request, queryset, search_term):
        # Archive ids only: a national ID or phone here would be a GET parameter, in every access log.
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            return queryset.filter(pk=uuid.UUID(term)), False
        except ValueError:
            return queryset.none(), False

    def get_urls(self):
        find = path("find/", self.admin_site.admin_view(self.find_view), name="health_records_archive_find")
        return [find, *super().get_urls()]

    def find_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = ArchiveFindForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            matches = selectors.archives_matching(**form.cleaned_data["identifier"])
            logger.info("admin archive search by user %s: %s match(es)", request.user.pk, len(matches))
            if len(matches) == 1:
                return HttpResponseRedirect(reverse("admin:health_records_archive_change", args=[matches[0].pk]))
            if matches:
                ids = ",".join(str(row.pk) for row in matches)
                return HttpResponseRedirect(f"{reverse('admin:health_records_archive_changelist')}?id__in={ids}")
            messages.warning(request, "No archive has this national ID or phone.")
            form = ArchiveFindForm()  # never echo the identifier back into the page
        context = {
            **self.admin_site.each_context(request),
            "title": "Find a health archive by national ID or phone",
            "opts": self.model._meta,
            "form": form,
        }
        return TemplateResponse(request, "admin/health_records/archive/find.html", context)


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
