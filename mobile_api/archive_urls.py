"""Citizen health-archive endpoints."""

from django.urls import path

from mobile_api import archive_views

urlpatterns = [
    path("me/health-archive", archive_views.HealthArchiveView.as_view(), name="health-archive"),
    path("me/health-archive/access-log", archive_views.HealthArchiveAccessLogView.as_view(), name="health-archive-access-log"),
]
