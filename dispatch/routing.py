from django.urls import path

from dispatch import consumers

websocket_urlpatterns = [
    path("ws/dispatch/", consumers.DispatchConsumer.as_asgi()),
    path("ws/ambulances/<int:ambulance_id>/", consumers.AmbulanceConsumer.as_asgi()),
    path("ws/hospitals/<int:hospital_id>/", consumers.HospitalConsumer.as_asgi()),
    path("ws/cases/<int:case_id>/", consumers.CaseConsumer.as_asgi()),
]
