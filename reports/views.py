"""The supervisor's reports page."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.template.response import TemplateResponse
from django.views.decorators.cache import never_cache

from dispatch.permissions import is_supervisor


@never_cache
@login_required
def reports_page(request):
    if not is_supervisor(request.user):
        return TemplateResponse(request, "reports/forbidden.html", status=403)
    return TemplateResponse(request, "reports/intervals.html", {})
