"""The crew console (车组终端): the page a crew member's tablet opens. Everything it shows comes
from the API and the unit's stream; the view only decides who may open it and hands the page its
settings."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie

from accounts.models import Role
from dispatch import selectors
from dispatch.views import CONSOLE_LABELS, refused

# A moving unit reports at most this often: 171 units every 5 s is what dispatch is sized for
# (DESIGN.md, "Scaling out").
GPS_REPORT_EVERY_S = 5


@never_cache
@ensure_csrf_cookie  # the page's fetch() calls send it back as X-CSRFToken
@login_required
def crew_console(request):
    if request.user.role != Role.CREW:
        return refused(request, _("Only ambulance crews may open the crew console."))
    ambulance_id = selectors.ambulance_of_crew(request.user)
    unit = selectors.unit_by_id(ambulance_id) if ambulance_id else None
    if unit is None:
        # Not an error of the crew member's making: say who can fix it.
        return TemplateResponse(request, "crew/unbound.html")
    config = {
        "ambulance": unit.pk,
        "callSign": unit.call_sign,
        "labels": CONSOLE_LABELS,
        "tileUrl": getattr(settings, "MAP_TILE_URL", "") or "",
        "tileAttribution": settings.MAP_TILE_ATTRIBUTION,
        "etaRoadFactor": settings.ETA_ROAD_FACTOR,
        "etaSpeedKmh": settings.ETA_SPEED_KMH,
        "gpsEveryS": GPS_REPORT_EVERY_S,
    }
    return TemplateResponse(request, "crew/console.html", {"unit": unit, "crew_config": config})
