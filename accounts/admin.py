from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from accounts.models import User


@admin.register(User)
class OneKeyUserAdmin(UserAdmin):
    list_display = ("username", "role", "phone", "first_name", "is_active")
    list_filter = ("role", "is_active", "is_staff")
    search_fields = ("username", "phone", "first_name")
    fieldsets = UserAdmin.fieldsets + (("One-key 120", {"fields": ("role", "phone")}),)
    add_fieldsets = UserAdmin.add_fieldsets + (("One-key 120", {"fields": ("role", "phone")}),)
