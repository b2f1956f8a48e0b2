"""Where each person lands: the site root and the sign-in page send every role to its own page."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.shortcuts import redirect

from accounts.models import Role

# Each role's own page. Plain paths, not reversed names: the crew and hospital consoles live in
# other modules, and a missing page must answer 404 there, not break every sign-in here.
ROLE_HOME = {
    Role.DISPATCHER: "/console/dispatch/",
    Role.ADMIN: "/console/dispatch/",
    Role.CREW: "/console/crew/",
    Role.HOSPITAL: "/console/hospital/",
    Role.CITIZEN: "/app/",
}


def home_of(user) -> str:
    # `createsuperuser` makes an account with the default role (citizen): an operator, not a caller.
    if user.is_superuser and user.role == Role.CITIZEN:
        return "/admin/"
    return ROLE_HOME.get(user.role, settings.LOGIN_URL)


def landing(request):
    """`/`: a signed-in person goes to their page; anyone else to the sign-in page."""
    if request.user.is_authenticated:
        return redirect(home_of(request.user))
    return redirect(settings.LOGIN_URL)


class RoleLoginView(auth_views.LoginView):
    """Django's sign-in, landing on the role's page unless a safe ``next`` asks for another."""

    def get_default_redirect_url(self):
        return home_of(self.request.user)
