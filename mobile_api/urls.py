from django.urls import path

from dispatch import triage_api
from mobile_api import views

urlpatterns = [
    path("auth/register", views.RegisterView.as_view(), name="register"),
    path("auth/token", views.TokenView.as_view(), name="token"),
    path("auth/session-token", views.SessionTokenView.as_view(), name="session-token"),
    path("auth/logout", views.LogoutView.as_view(), name="logout"),
    path("me", views.MeView.as_view(), name="me"),
    path("sos", views.SosView.as_view(), name="sos"),
    path("cases/<int:case_id>", views.CaseView.as_view(), name="case"),
    path("cases/<int:case_id>/location", views.CaseLocationView.as_view(), name="case-location"),
    path("cases/<int:case_id>/cancel", views.CaseCancelView.as_view(), name="case-cancel"),
    path("cases/<int:case_id>/triage", triage_api.CaseTriageView.as_view(), name="case-triage"),
    path("cases/<int:case_id>/messages", triage_api.CaseMessagesView.as_view(), name="case-messages"),
]
