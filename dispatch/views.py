"""Browser pages for staff."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.template import engines
from django.template.response import TemplateResponse
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

# Kept inline so the refusal page needs no template of its own; it still uses the shared layout.
_FORBIDDEN = engines["django"].from_string(
    """{% extends "base.html" %}
{% block title %}Not allowed{% endblock %}
{% block content %}
<section class="login-card" aria-labelledby="forbidden-title">
  <h1 id="forbidden-title">Not allowed <span lang="zh-CN">无权访问</span></h1>
  <p role="alert">Only dispatchers may open the dispatch console.
    <span lang="zh-CN">只有调度员可以打开调度台。</span></p>
  <p><a href="{% url 'login' %}?next={{ request.path|urlencode }}">Sign in with another account
    <span lang="zh-CN">换一个账号登录</span></a></p>
</section>
{% endblock %}
"""
)


@never_cache
@ensure_csrf_cookie  # the console's fetch() calls send it back as X-CSRFToken
@login_required
def dispatch_console(request):
    if not is_dispatcher(request.user):
        return TemplateResponse(request, _FORBIDDEN, status=403)
    config = {
        # Seconds a case may wait for a unit before the console alarms (UNASSIGNED_ALERT_S).
        "unassigned_alert_s": settings.UNASSIGNED_ALERT_S,
        "tile_url": settings.MAP_TILE_URL,
        "tile_attribution": settings.MAP_TILE_ATTRIBUTION,
    }
    return TemplateResponse(request, "dispatch/console.html", {"labels": CONSOLE_LABELS, "config": config})
