"""The citizen app stand-in: one mobile-width page over the citizen API (token auth; a citizen who
signed in on the sign-in page trades that session for a token once, see SessionTokenView)."""

from __future__ import annotations

import re

from django.template.response import TemplateResponse
from django.utils.translation import get_language
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie

from dispatch.models import Complaint
from dispatch.permissions import is_citizen

# The quick picks a caller taps under the SOS button: the common ones, most urgent first.
QUICK_COMPLAINTS = ["chest_pain", "breathing", "stroke", "unconscious", "trauma", "child", "pregnancy", "other"]
_CJK = re.compile(r"[\u3000-\u9fff\uff00-\uffef]")


def _in_page_language(label: str) -> str:
    """A model choice label is "English 中文" (the API keeps it so); a page shows its own half."""
    found = _CJK.search(label)
    if not found or found.start() == 0:
        return label
    chinese = (get_language() or "").startswith("zh")
    return label[found.start():].strip() if chinese else label[: found.start()].strip()


@never_cache
@ensure_csrf_cookie  # the session-token exchange and the session sign-out are CSRF-checked POSTs
def citizen_app(request):
    labels = dict(Complaint.choices)
    complaints = [{"value": value, "label": _in_page_language(str(labels[value]))} for value in QUICK_COMPLAINTS]
    # Tells the script a citizen's session exists (the cookie is HttpOnly, so it cannot see it).
    session_citizen = is_citizen(request.user)
    return TemplateResponse(
        request,
        "app/index.html",
        {"complaints": complaints, "complaint_labels": labels, "session_citizen": session_citizen},
    )
