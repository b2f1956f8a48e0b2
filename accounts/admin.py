from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin

from accounts.models import ApiToken, User
from accounts.services import token_revoke, user_tokens_revoke


@admin.register(User)
class OneKeyUserAdmin(UserAdmin):
    list_display = ("username", "role", "phone", "first_name", "is_active")
    list_filter = ("role", "is_active", "is_staff")
    search_fields = ("username", "phone", "first_name")
    fieldsets = UserAdmin.fieldsets + (("One-key 120", {"fields": ("role", "phone")}),)
    add_fieldsets = UserAdmin.add_fieldsets + (("One-key 120", {"fields": ("role", "phone")}),)
    actions = ["revoke_api_tokens"]

    @admin.action(description="Sign out of every device (revoke API tokens) 注销所有设备")
    def revoke_api_tokens(self, request, queryset):
        count = sum(user_tokens_revoke(user_id=pk, reason="operator") for pk in queryset.values_list("pk", flat=True))
        self.message_user(request, f"Revoked {count} token(s).", messages.SUCCESS)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are listed and revoked here, never shown: only their hash is stored."""

    list_display = ("id", "user", "label", "created_at", "expires_at", "last_used_at", "revoked_at", "revoked_reason")
    list_filter = ("revoked_at", "user__role")
    search_fields = ("user__username", "user__phone", "label")
    list_select_related = ("user",)
    readonly_fields = ("user", "label", "created_at", "expires_at", "last_used_at", "revoked_at", "revoked_reason")
    fields = readonly_fields
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False  # a token is issued by signing in; an admin-made key could never be shown safely

    def has_delete_permission(self, request, obj=None):
        return False  # revoke instead: the row is the record of who could sign in with what, until when

    @admin.action(description="Revoke the selected tokens (their sockets close) 吊销所选令牌")
    def revoke(self, request, queryset):
        count = sum(token_revoke(token_id=pk, reason="operator") for pk in queryset.values_list("pk", flat=True))
        self.message_user(request, f"Revoked {count} token(s).", messages.SUCCESS)
