"""Citizen health-archive endpoints (issue: encrypted health archives)."""

urlpatterns: list = []
