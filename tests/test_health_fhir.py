"""The health summary as an HL7 FHIR R4 document Bundle shaped like the International Patient Summary.

Validated with the ``fhir.resources`` models of FHIR R4B (4.3.0), which keep R4's resource shapes
for everything used here (R5 changed MedicationStatement and DeviceUseStatement).
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import pytest
from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from health_records import fhir, services
from tests.support.archives import sample_archive

WHEN = datetime(2026, 3, 1, 8, 30, tzinfo=timezone.utc)


@pytest.fixture
def summary(citizen, crew):
    services.archive_put(owner=citizen, data=sample_archive(consent_share_with_120=True))
    services.grant_open(case_ref="case:9", grantee=crew, role="crew", patient=citizen, purpose="handover")
    return services.archive_read_for_grant(patient=citizen, reader=crew, case_ref="case:9", purpose="fhir export")


def _resources(bundle: dict, kind: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def test_it_builds_a_bundle_that_validates_as_fhir(summary):
    bundle = fhir.bundle_for_summary(summary, timestamp=WHEN)
    model = Bundle.model_validate(bundle)
    assert model.type == "document"
    assert json.loads(model.model_dump_json())["entry"][0]["resource"]["resourceType"] == "Composition"


def test_it_follows_the_international_patient_summary_shape(summary):
    bundle = fhir.bundle_for_summary(summary, timestamp=WHEN)
    assert bundle["type"] == "document" and bundle["timestamp"] == "2026-03-01T08:30:00Z"
    assert bundle["identifier"]["value"].startswith("urn:uuid:")
    composition = bundle["entry"][0]["resource"]
    assert composition["resourceType"] == "Composition"
    assert composition["type"]["coding"][0] == {"system": "http://loinc.org", "code": "60591-5", "display": "Patient summary Document"}
    codes = {s["code"]["coding"][0]["code"] for s in composition["section"]}
    assert {"48765-2", "10160-0", "11450-4"} <= codes  # the three sections IPS requires
    assert {"30954-2", "46264-8", "47519-4", "42348-3"} <= codes
    urls = {e["fullUrl"] for e in bundle["entry"]}
    references = [ref["reference"] for s in composition["section"] for ref in s.get("entry", [])]
    references += [composition["subject"]["reference"], composition["author"][0]["reference"]]
    assert references and set(references) <= urls  # every reference resolves inside the bundle


def test_it_carries_patient_allergies_conditions_and_medications(summary):
    bundle = fhir.bundle_for_summary(summary, timestamp=WHEN)
    (patient,) = _resources(bundle, "Patient")
    assert patient["name"][0]["text"] == "欧阳青峰 Ouyang Qingfeng"
    assert (patient["gender"], patient["birthDate"]) == ("male", "1968-04-12")
    assert patient["contact"][0]["name"]["text"] == "Wenxiu Brightwater"
    (allergy,) = _resources(bundle, "AllergyIntolerance")
    assert allergy["code"]["text"] == "Zorblaxamine"
    assert allergy["reaction"][0] == {"manifestation": [{"text": "purple Vexillum hives"}], "severity": "severe"}
    assert allergy["criticality"] == "high"
    (condition,) = _resources(bundle, "Condition")
    assert condition["code"]["text"] == "Hashimoto-Quokka thyroiditis"
    (medication,) = _resources(bundle, "MedicationStatement")
    assert medication["medicationCodeableConcept"]["text"] == "Levothyroxquin"
    assert medication["dosage"][0]["text"] == "75 μg once daily"
    (blood,) = [o for o in _resources(bundle, "Observation") if o["code"]["coding"][0]["code"] == "882-1"]
    assert blood["valueCodeableConcept"]["text"] == "AB Rh(D) negative"
    assert _resources(bundle, "DeviceUseStatement") and _resources(bundle, "Procedure")
    patient_url = next(e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    assert allergy["patient"]["reference"] == condition["subject"]["reference"] == patient_url


def test_it_marks_empty_sections_and_validates_a_minimal_summary():
    minimal = {"archive_id": str(uuid.uuid4()), "version": 1, "name": "Li Lei", "sex": "unknown", "date_of_birth": None,
               "blood_type": {"abo": "unknown", "rh": "unknown"}, "allergies": [], "chronic_conditions": [],
               "medications": [], "implanted_devices": [], "past_surgeries": [], "pregnancy": None,
               "advance_directives": "", "emergency_contacts": [], "family_doctor": None}
    bundle = fhir.bundle_for_summary(minimal, timestamp=WHEN)
    Bundle.model_validate(bundle)
    sections = bundle["entry"][0]["resource"]["section"]
    assert all("emptyReason" in s and "entry" not in s for s in sections)
    assert {r["resource"]["resourceType"] for r in bundle["entry"]} == {"Composition", "Patient", "Organization"}


def test_it_adds_pregnancy_status_and_due_date(summary):
    summary = dict(summary, sex="female", pregnancy={"status": "pregnant", "due_date": "2026-06-01"})
    bundle = fhir.bundle_for_summary(summary, timestamp=WHEN)
    Bundle.model_validate(bundle)
    observations = {o["code"]["coding"][0]["code"]: o for o in _resources(bundle, "Observation")}
    assert observations["82810-3"]["valueCodeableConcept"]["coding"][0]["code"] == "77386006"
    assert observations["11778-8"]["valueDateTime"] == "2026-06-01"


def test_it_escapes_the_narrative(summary):
    summary = dict(summary, chronic_conditions=["<script>alert(1)</script>"])
    bundle = fhir.bundle_for_summary(summary, timestamp=WHEN)
    divs = " ".join(s["text"]["div"] for s in bundle["entry"][0]["resource"]["section"])
    assert "<script>" not in divs and "&lt;script&gt;" in divs


def test_it_would_catch_a_resource_in_the_wrong_shape(summary):
    bundle = fhir.bundle_for_summary(summary, timestamp=WHEN)
    medication = _resources(bundle, "MedicationStatement")[0]
    medication["medication"] = {"concept": medication.pop("medicationCodeableConcept")}  # the R5 shape
    with pytest.raises(ValidationError):
        Bundle.model_validate(bundle)


def test_it_derives_stable_resource_ids_from_the_archive(summary):
    one = fhir.bundle_for_summary(summary, timestamp=WHEN)
    two = fhir.bundle_for_summary(summary, timestamp=WHEN)
    assert one == two
    later = fhir.bundle_for_summary(summary, timestamp=datetime(2026, 3, 2, tzinfo=timezone.utc))
    assert later["id"] != one["id"]
    assert _resources(later, "Patient")[0]["id"] == _resources(one, "Patient")[0]["id"]
