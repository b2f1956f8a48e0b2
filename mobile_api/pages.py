"""The citizen app stand-in: one mobile-width page over the citizen API (token auth, no session)."""

from __future__ import annotations

from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache

from dispatch.models import Complaint

# The quick picks a caller taps under the SOS button: the common ones, most urgent first.
QUICK_COMPLAINTS = ["chest_pain", "breathing", "stroke", "unconscious", "trauma", "child", "pregnancy", "other"]


@never_cache
def citizen_app(request):
    labels = dict(Complaint.choices)
    complaints = [{"value": value, "label": labels[value]} for value in QUICK_COMPLAINTS]
    return TemplateResponse(request, "app/index.html", {"complaints": complaints, "complaint_labels": labels})
