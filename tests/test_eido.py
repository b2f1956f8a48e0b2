"""A case as a NENA EIDO for a neighbouring centre: NENA's field names, the case's key facts
round-trip (type, priority, status, where, who to ring back, which unit, where to), components
linked by $ref, and no health data in it."""

from __future__ import annotations

import json
import re

import pytest
from tests.support.archives import URL, sample_archive
from tests.support.cases import assign, crew_step, new_case


PROLOGUE = {"$id", "lastUpdateTimeStamp", "updatedByAgencyReference"}


def eido(client, case_id: int) -> dict:
    response = client.get(f"/api/v1/dispatch/cases/{case_id}/eido")
    assert response.status_code == 200, response.content
    return response.json()


def components(doc: dict) -> dict[str, dict]:
    found = {}
    for key, value in doc.items():
        if key.endswith("Component"):
            for item in value if isinstance(value, list) else [value]:
                found[item["$id"]] = item
    return found


def refs(value) -> list[str]:
    text = json.dumps(value)
    return re.findall(r'"\$ref": "([^"]+)"', text)


@pytest.fixture
def case_on_the_way(as_citizen, as_dispatcher, as_crew, ambulance, hospital) -> int:
    assert as_citizen.put(URL, sample_archive(consent_share_with_120=True), format="json").status_code == 201
    case_id = new_case(as_citizen, note="Zorblaxamine allergy, third floor")
    as_dispatcher.get(f"/api/v1/dispatch/cases/{case_id}")  # the dispatcher read the summary: still not exported
    assign(as_dispatcher, case_id, ambulance)
    crew_step(as_crew, ambulance, "en_route")
    crew_step(as_crew, ambulance, "on_scene")
    crew_step(as_crew, ambulance, "transporting", hospital=hospital.pk)
    return case_id


def test_it_round_trips_the_cases_key_facts(as_dispatcher, case_on_the_way, ambulance, hospital, citizen):
    doc = eido(as_dispatcher, case_on_the_way)
    case = as_dispatcher.get(f"/api/v1/dispatch/cases/{case_on_the_way}").json()
    assert doc["eidoVersion"] == "1.0" and doc["@context"]["@vocab"].endswith("EmergencyIncidentDataObjectType.jsonld")
    incident = doc["incidentComponent"]
    assert incident["incidentTrackingIdentifier"].startswith(f"urn:emergency:uid:incidentid:{case_on_the_way}:")
    assert incident["incidentTypeInternalCode"] == "chest_pain"
    assert incident["incidentCommonPriorityNumber"] == case["priority"]
    assert incident["incidentStatusInternalText"] == ["transporting"]
    assert incident["incidentStatusCommonRegistryText"] == "Open"
    [call] = doc["callComponent"]
    assert call["callStartTimestamp"][:19] == case["received_at"][:19]
    [callback] = doc["callbackComponent"]
    assert callback["callBackInformationUri"] == [f"tel:{case['caller_phone']}"] and case["caller_phone"]
    caller_location = components(doc)[incident["locationReference"][0]["$ref"]]
    assert f"{case['lat']:.7f} {case['lon']:.7f}" in caller_location["locationByValue"]
    [resource] = doc["emergencyResourceComponent"]
    assert resource["enforcementUnitName"] == ambulance.call_sign
    assert resource["primaryUnitStatusRegistryText"] == "Transporting"
    assert resource["ETA"].endswith("Z")
    destination = components(doc)[resource["unitDestinationReference"]["$ref"]]
    assert hospital.code in destination["locationDescriptionText"]
    assert doc["dispatchComponent"][0]["emergencyResourceReference"] == [{"$ref": resource["$id"]}]


def test_it_links_every_reference_to_a_component_with_a_prologue(as_dispatcher, case_on_the_way):
    doc = eido(as_dispatcher, case_on_the_way)
    known = components(doc)
    for component in known.values():
        assert PROLOGUE <= set(component), component
    agency = doc["agencyComponent"][0]["$id"]
    for target in refs({k: v for k, v in doc.items() if k != "@context"}):
        assert target in known or target == agency, target


def test_it_carries_no_health_data(as_dispatcher, case_on_the_way):
    text = json.dumps(eido(as_dispatcher, case_on_the_way), ensure_ascii=False)
    archive = sample_archive()
    for secret in ("Zorblaxamine", "Hashimoto", "Ouyang", "欧阳", "AB", "Medtronic", archive["national_id"], "health"):
        assert secret not in text, secret


def test_it_says_a_case_was_cancelled_and_why(as_citizen, as_dispatcher):
    case_id = new_case(as_citizen)
    response = as_citizen.post(f"/api/v1/cases/{case_id}/cancel", {"reason": "Feeling better now"}, format="json")
    assert response.status_code == 200, response.content
    doc = eido(as_dispatcher, case_id)
    assert doc["incidentComponent"]["incidentStatusCommonRegistryText"] == "Closed"
    assert any(n["notesActionComments"].startswith("Cancelled") for n in doc["notesComponent"])
    assert "emergencyResourceComponent" not in doc


def test_it_is_for_dispatchers_only(as_dispatcher, as_citizen, as_crew, as_hospital):
    case_id = new_case(as_citizen)
    for client in (as_citizen, as_crew, as_hospital):
        assert client.get(f"/api/v1/dispatch/cases/{case_id}/eido").status_code == 403
    assert as_dispatcher.get("/api/v1/dispatch/cases/999999/eido").status_code == 404
