"""The citizen app stand-in: one mobile-width page over the citizen API (token auth; a citizen who
signed in on the sign-in page trades that session for a token once, see SessionTokenView)."""

from __future__ import annotations

from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie

from accounts.models import Role
from dispatch.models import Complaint

# The quick picks a caller taps under the SOS button: the common ones, most urgent first.
QUICK_COMPLAINTS = ["chest_pain", "breathing", "stroke", "unconscious", "trauma", "child", "pregnancy", "other"]


@never_cache
@ensure_csrf_cookie  # the session-token exchange and the session sign-out are CSRF-checked POSTs
def citizen_app(request):
    labels = dict(Complaint.choices)
    complaints = [{"value": value, "label": labels[value]} for value in QUICK_COMPLAINTS]
    # Tells the script a citizen's session exists (the cookie is HttpOnly, so it cannot see it).
    session_citizen = request.user.is_authenticated and request.user.role == Role.CITIZEN
    return TemplateResponse(
        request,
        "app/index.html",
        {"complaints": complaints, "complaint_labels": labels, "session_citizen": session_citizen},
    )
