"""A case through the API, step by step: tapped, viewed, assigned, driven to hospital."""

from __future__ import annotations

from tests.support.cast import tap


def new_case(as_citizen, **body) -> int:
    response = tap(as_citizen, complaint="chest_pain", **body)
    assert response.status_code == 201, response.content
    return response.json()["id"]


def dispatcher_view(as_dispatcher, case_id) -> dict:
    response = as_dispatcher.get(f"/api/v1/dispatch/cases/{case_id}")
    assert response.status_code == 200, response.content
    return response.json()["health_summary"]


def assign(as_dispatcher, case_id, ambulance):
    response = as_dispatcher.post(f"/api/v1/dispatch/cases/{case_id}/assign", {"ambulance": ambulance.pk}, format="json")
    assert response.status_code == 200, response.content


def crew_step(as_crew, ambulance, status, **extra):
    response = as_crew.post(f"/api/v1/ambulances/{ambulance.pk}/status", {"status": status, **extra}, format="json")
    assert response.status_code == 200, response.content


def to_hospital(as_dispatcher, as_crew, case_id, ambulance, hospital):
    assign(as_dispatcher, case_id, ambulance)
    for step in ("en_route", "on_scene"):
        crew_step(as_crew, ambulance, step)
    crew_step(as_crew, ambulance, "transporting", hospital=hospital.pk)
