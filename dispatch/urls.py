from django.urls import path

from dispatch import api, health_api, hospital_views
from dispatch import operations_api
from dispatch import phone_api
from dispatch import surge_api
from dispatch import triage_api
from dispatch import exports_api
from dispatch import alerts_api

urlpatterns = [
    # GET: the queue (api.DispatchCaseListView); POST: a call taken by phone.
    path("dispatch/cases", phone_api.DispatchCasesView.as_view(), name="dispatch-cases"),
    path("geocode", phone_api.GeocodeView.as_view(), name="geocode"),
    path("geocode/reverse", phone_api.ReverseGeocodeView.as_view(), name="geocode-reverse"),
    path("dispatch/cases/<int:case_id>", api.DispatchCaseDetailView.as_view(), name="dispatch-case"),
    path("dispatch/cases/<int:case_id>/recommendations", api.RecommendationsView.as_view(), name="recommendations"),
    path("dispatch/cases/<int:case_id>/assign", api.AssignView.as_view(), name="assign"),
    path("dispatch/cases/<int:case_id>/triage", triage_api.DispatchTriageView.as_view(), name="dispatch-triage"),
    path("dispatch/cases/<int:case_id>/messages", triage_api.DispatchCaseMessagesView.as_view(), name="dispatch-case-messages"),
    path("ambulances", api.AmbulanceListView.as_view(), name="ambulances"),
    path("ambulances/<int:ambulance_id>", api.AmbulanceDetailView.as_view(), name="ambulance"),
    path("ambulances/<int:ambulance_id>/assignment", api.AssignmentView.as_view(), name="assignment"),
    path("ambulances/<int:ambulance_id>/status", api.AmbulanceStatusView.as_view(), name="ambulance-status"),
    path("ambulances/<int:ambulance_id>/location", api.AmbulanceLocationView.as_view(), name="ambulance-location"),
    path("hospitals", api.HospitalListView.as_view(), name="hospitals"),
    path("hospitals/<int:hospital_id>/status", api.HospitalStatusView.as_view(), name="hospital-status"),
    path("hospitals/<int:hospital_id>/admissions", api.HospitalAdmissionsView.as_view(), name="hospital-admissions"),
    path("hospitals/<int:hospital_id>/arrivals", hospital_views.HospitalArrivalsView.as_view(), name="hospital-arrivals"),
    path("admissions/<int:admission_id>/acknowledge", api.AcknowledgeView.as_view(), name="acknowledge"),
    path("admissions/<int:admission_id>/fhir", api.AdmissionFhirView.as_view(), name="admission-fhir"),
    path("admissions/<int:admission_id>/hl7v2", exports_api.AdmissionHl7v2View.as_view(), name="admission-hl7v2"),
    path("dispatch/cases/<int:case_id>/eido", exports_api.CaseEidoView.as_view(), name="case-eido"),
    path("dispatch/cases/<int:case_id>/health-override", api.HealthOverrideView.as_view(), name="health-override"),
    path("dispatch/cases/<int:case_id>/health-renew", health_api.HealthRenewView.as_view(), name="health-renew"),
    path("dispatch/alerts", alerts_api.DispatchAlertsView.as_view(), name="dispatch-alerts"),
    path("hospitals/<int:hospital_id>/alerts", alerts_api.HospitalAlertsView.as_view(), name="hospital-alerts"),
    path("dispatch/cases/<int:case_id>/reassign", operations_api.ReassignView.as_view(), name="reassign"),
    path("dispatch/cases/<int:case_id>/hospital", operations_api.CaseHospitalView.as_view(), name="case-hospital"),
    path("dispatch/cases/<int:case_id>/merge", surge_api.MergeView.as_view(), name="case-merge"),
    path("dispatch/surge", surge_api.SurgeView.as_view(), name="dispatch-surge"),
    path("dispatch/queue/districts", surge_api.DistrictQueueView.as_view(), name="dispatch-queue-districts"),
    path("ambulances/bulk-status", surge_api.BulkUnitStatusView.as_view(), name="ambulances-bulk-status"),
]
