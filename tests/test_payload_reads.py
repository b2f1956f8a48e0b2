"""Every output model serializer reads columns and get_<name> methods by a plan built once per
class (dispatch.serializers.ModelSerializer.to_representation). Its payloads must equal DRF's own
loop, key for key and in the same order, for every entity the service writes, in every state."""

from __future__ import annotations

import math
from unittest import mock

import pytest
from rest_framework import fields as drf_fields
from rest_framework import serializers

from dispatch import serializers as dispatch_serializers
from dispatch.models import Case
from dispatch.serializers import ModelSerializer
from mobile_api import serializers as mobile_serializers  # noqa: F401 - declares one more output serializer
from tests.support.cases import assign, crew_step, new_case, to_hospital

def all_output_serializers() -> list[type[ModelSerializer]]:
    found, todo = [], [ModelSerializer]
    while todo:
        for subclass in todo.pop().__subclasses__():
            found.append(subclass)
            todo.append(subclass)
    return found


def drf_payload(serializer, instance) -> dict:
    return serializers.Serializer.to_representation(serializer, instance)


@pytest.fixture
def cases_in_every_state(as_citizen, as_other_citizen, as_dispatcher, as_crew, as_other_crew, ambulance, other_ambulance, hospital):
    received = new_case(as_citizen, note="  胸口痛  ", triage={"conscious": False})
    transported = new_case(as_other_citizen, lat=34.80, lon=113.70)
    to_hospital(as_dispatcher, as_crew, transported, ambulance, hospital)
    phoned = as_dispatcher.post(
        "/api/v1/dispatch/cases",
        {"caller_phone": "13912345678", "lat": 34.75, "lon": 113.62, "complaint": "trauma"},
        format="json",
    )
    assert phoned.status_code == 201, phoned.content
    assign(as_dispatcher, phoned.json()["id"], other_ambulance)
    crew_step(as_other_crew, other_ambulance, "en_route")
    return [received, transported, phoned.json()["id"]]


def test_it_gives_every_entity_drfs_payload(cases_in_every_state):
    compared = 0
    for serializer_class in all_output_serializers():
        model = serializer_class.Meta.model
        for instance in model.objects.all():
            ours = serializer_class().to_representation(instance)
            theirs = drf_payload(serializer_class(), instance)
            assert list(ours) == list(theirs), serializer_class
            assert ours == theirs, serializer_class
            compared += 1
    assert compared > 20, compared
    assert {cls.__name__ for cls in all_output_serializers()} >= {"CaseSerializer", "CitizenCaseSerializer", "AdmissionSerializer"}


def test_it_reads_the_case_payload_without_drfs_attribute_walk(cases_in_every_state):
    case = Case.objects.get(pk=cases_in_every_state[1])
    with mock.patch.object(drf_fields, "get_attribute", wraps=drf_fields.get_attribute) as walks:
        payload = dispatch_serializers.staff_case_payload(case)
    # Only the fields that are neither a column nor a get_<name> method take DRF's way
    # (the nested unit and hospital, and their own relations).
    assert 0 < walks.call_count < 8
    assert payload == drf_payload(dispatch_serializers.CaseSerializer(), case)


def test_it_still_sends_a_stored_nan_position_as_null(cases_in_every_state):
    case = Case.objects.get(pk=cases_in_every_state[0])
    case.lat = math.nan
    payload = dispatch_serializers.staff_case_payload(case)
    assert payload["lat"] is None
    assert payload == drf_payload(dispatch_serializers.CaseSerializer(), case)


def test_it_reads_a_deferred_column_as_drf_does(cases_in_every_state):
    case = Case.objects.only("id", "status").get(pk=cases_in_every_state[0])
    assert dispatch_serializers.CaseSerializer().to_representation(case) == drf_payload(
        dispatch_serializers.CaseSerializer(), Case.objects.only("id", "status").get(pk=cases_in_every_state[0])
    )

