from django.urls import path

from reports.api import IntervalsView

urlpatterns = [
    path("reports/intervals", IntervalsView.as_view(), name="reports-intervals"),
]
