"""Browser pages for staff."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie

from dispatch.models import AdmissionStatus, CaseStatus, Complaint, EdStatus, UnitLevel, UnitStatus
from dispatch.permissions import is_dispatcher

# Display labels ("English 中文") for the console's script, from the models' own choices.
CONSOLE_LABELS = {
    "case_status": dict(CaseStatus.choices),
    "complaint": dict(Complaint.choices),
    "unit_status": dict(UnitStatus.choices),
    "unit_level": dict(UnitLevel.choices),
    "admission_status": dict(AdmissionStatus.choices),
    "ed_status": dict(EdStatus.choices),
}


def refused(request, message: str, *, title: str | None = None) -> TemplateResponse:
    """The one refusal page of every console (403): who may open it, in the page's language, and a
    way to sign in as someone else."""
    return TemplateResponse(request, "refused.html", {"title": title or _("Not allowed"), "message": message}, status=403)


@never_cache
@ensure_csrf_cookie  # the console's fetch() calls send it back as X-CSRFToken
@login_required
def dispatch_console(request):
    if not is_dispatcher(request.user):
        return refused(request, _("Only dispatchers may open the dispatch console."))
    # Waiting too long is the server's alert.raised (ALERT_UNASSIGNED_S), not a page setting.
    config = {
        "tile_url": settings.MAP_TILE_URL,
        "tile_attribution": settings.MAP_TILE_ATTRIBUTION,
    }
    return TemplateResponse(request, "dispatch/console.html", {"labels": CONSOLE_LABELS, "config": config})
