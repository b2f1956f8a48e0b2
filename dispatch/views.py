"""Browser pages for staff."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from dispatch.permissions import is_dispatcher


@login_required
def dispatch_console(request):
    if not is_dispatcher(request.user):
        raise PermissionDenied("Only dispatchers may open the dispatch console.")
    return render(request, "dispatch/console.html")
