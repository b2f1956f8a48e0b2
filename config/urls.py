from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from config.healthz import healthz
from config.metrics import metrics_view

from dispatch.crew_views import crew_console
from dispatch.hospital_views import hospital_board
from dispatch.views import dispatch_console
from reports.views import reports_page
from accounts.views import RoleLoginView, landing
from mobile_api.pages import citizen_app

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("api/v1/", include("mobile_api.urls")),
    path("api/v1/", include("mobile_api.archive_urls")),
    path("api/v1/", include("dispatch.urls")),
    path("api/v1/", include("reports.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up script as a file, so the docs work under the CSP (no inline script).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
    path("metrics", metrics_view, name="metrics"),
    path("", landing, name="landing"),
    path("accounts/login/", RoleLoginView.as_view(), name="login"),
    path("i18n/", include("django.conf.urls.i18n")),  # set_language at /i18n/setlang/
    # Every installed app's djangojs catalog, as a classic script the pages load before their modules.
    path("i18n/catalog.js", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("app/", citizen_app, name="citizen-app"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("console/dispatch/", dispatch_console, name="dispatch-console"),
    path("console/crew/", crew_console, name="crew-console"),
    path("console/hospital/", hospital_board, name="hospital-board"),
    path("console/reports/", reports_page, name="reports-page"),
    path("admin/", admin.site.urls),
]

# A database outage answers 503 + Retry-After even when it strikes outside a view.
handler500 = "config.middleware.server_error"
