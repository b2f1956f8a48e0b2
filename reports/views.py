"""The supervisor's reports page."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache

from dispatch.permissions import is_supervisor
from dispatch.views import refused


@never_cache
@login_required
def reports_page(request):
    if not is_supervisor(request.user):
        return refused(request, _("Only a shift supervisor may open the reports."))
    return TemplateResponse(request, "reports/intervals.html", {})
