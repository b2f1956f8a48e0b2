from django.urls import path

from dispatch import api, health_api

urlpatterns = [
    path("dispatch/cases", api.DispatchCaseListView.as_view(), name="dispatch-cases"),
    path("dispatch/cases/<int:case_id>", api.DispatchCaseDetailView.as_view(), name="dispatch-case"),
    path("dispatch/cases/<int:case_id>/recommendations", api.RecommendationsView.as_view(), name="recommendations"),
    path("dispatch/cases/<int:case_id>/assign", api.AssignView.as_view(), name="assign"),
    path("ambulances", api.AmbulanceListView.as_view(), name="ambulances"),
    path("ambulances/<int:ambulance_id>", api.AmbulanceDetailView.as_view(), name="ambulance"),
    path("ambulances/<int:ambulance_id>/assignment", api.AssignmentView.as_view(), name="assignment"),
    path("ambulances/<int:ambulance_id>/status", api.AmbulanceStatusView.as_view(), name="ambulance-status"),
    path("ambulances/<int:ambulance_id>/location", api.AmbulanceLocationView.as_view(), name="ambulance-location"),
    path("hospitals", api.HospitalListView.as_view(), name="hospitals"),
    path("hospitals/<int:hospital_id>/status", api.HospitalStatusView.as_view(), name="hospital-status"),
    path("hospitals/<int:hospital_id>/admissions", api.HospitalAdmissionsView.as_view(), name="hospital-admissions"),
    path("admissions/<int:admission_id>/acknowledge", api.AcknowledgeView.as_view(), name="acknowledge"),
    path("admissions/<int:admission_id>/fhir", api.AdmissionFhirView.as_view(), name="admission-fhir"),
    path("dispatch/cases/<int:case_id>/health-override", api.HealthOverrideView.as_view(), name="health-override"),
    path("dispatch/cases/<int:case_id>/health-renew", health_api.HealthRenewView.as_view(), name="health-renew"),
]
