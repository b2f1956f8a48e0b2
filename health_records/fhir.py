"""A health summary as an HL7 FHIR R4 document Bundle in the shape of the International Patient
Summary (IPS): a Composition (LOINC 60591-5) whose sections point at Patient, AllergyIntolerance,
Condition, MedicationStatement, blood group and pregnancy Observations, DeviceUseStatement and
Procedure resources, all inside one ``type: document`` Bundle with ``urn:uuid:`` full URLs.

Input is the summary dict of ``services.archive_read_for_grant`` (so building a bundle is always
downstream of a granted, logged read); output is plain JSON-ready dicts. Nothing is stored.
Resource ids are derived from the archive id and version, so the same summary gives the same ids.
"""

from __future__ import annotations

import html
import uuid
from datetime import datetime, timezone as dt_timezone
from typing import Any

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
IPS = "http://hl7.org/fhir/uv/ips/StructureDefinition"
_NS = uuid.UUID("6f0c7a52-3a61-4f0e-9a8e-120120120120")

_ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
_ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
_CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
_EMPTY_REASON = "http://terminology.hl7.org/CodeSystem/list-empty-reason"

_PREGNANCY_SNOMED = {
    "pregnant": ("77386006", "Pregnant"),
    "not_pregnant": ("60001007", "Not pregnant"),
    "unknown": ("261665006", "Unknown"),
}
_RH_TEXT = {"positive": "Rh(D) positive", "negative": "Rh(D) negative", "unknown": "Rh(D) unknown"}
_CRITICALITY = {"severe": "high", "moderate": "low", "mild": "low"}


def _coding(system: str, code: str, display: str) -> dict:
    return {"coding": [{"system": system, "code": code, "display": display}]}


def _narrative(lines: list[str]) -> dict:
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines) if lines else "<li>No information</li>"
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><ul>{items}</ul></div>'}


class _Builder:
    def __init__(self, summary: dict[str, Any]):
        self.summary = summary
        self.seed = f"{summary.get('archive_id', '')}:{summary.get('version', '')}"
        self.entries: list[dict] = []

    def urn(self, kind: str, index: int = 0) -> tuple[str, str]:
        rid = str(uuid.uuid5(_NS, f"{self.seed}:{kind}:{index}"))
        return rid, f"urn:uuid:{rid}"

    def add(self, resource: dict, full_url: str) -> dict:
        self.entries.append({"fullUrl": full_url, "resource": resource})
        return {"reference": full_url}


def bundle_for_summary(
    summary: dict[str, Any], *, timestamp: datetime | None = None, author_name: str = "One-key 120 emergency centre"
) -> dict[str, Any]:
    """Return the IPS document Bundle (a dict ready for JSON) for one health summary."""
    timestamp = (timestamp or datetime.now(dt_timezone.utc)).astimezone(dt_timezone.utc)
    stamp = timestamp.isoformat(timespec="seconds").replace("+00:00", "Z")
    b = _Builder(summary)

    patient_id, patient_url = b.urn("patient")
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": patient_id,
        "meta": {"profile": [f"{IPS}/Patient-uv-ips"]},
        "name": [{"text": summary.get("name") or "Unknown"}],
        "gender": summary.get("sex") or "unknown",
    }
    if summary.get("date_of_birth"):
        patient["birthDate"] = summary["date_of_birth"]
    contacts = [
        {
            "relationship": [{"text": contact["relation"]}],
            "name": {"text": contact["name"]},
            "telecom": [{"system": "phone", "value": contact["phone"]}],
        }
        for contact in summary.get("emergency_contacts") or []
    ]
    if contacts:
        patient["contact"] = contacts
    subject = b.add(patient, patient_url)

    org_id, org_url = b.urn("author")
    author = b.add({"resourceType": "Organization", "id": org_id, "name": author_name}, org_url)

    sections: list[dict] = []

    def section(title: str, code: str, display: str, refs: list[dict], lines: list[str]) -> None:
        entry: dict[str, Any] = {"title": title, "code": _coding(LOINC, code, display), "text": _narrative(lines)}
        if refs:
            entry["entry"] = refs
        else:
            entry["emptyReason"] = _coding(_EMPTY_REASON, "unavailable", "Unavailable")
        sections.append(entry)

    # Allergies and intolerances (required by IPS).
    refs, lines = [], []
    for index, allergy in enumerate(summary.get("allergies") or []):
        rid, url = b.urn("allergy", index)
        resource: dict[str, Any] = {
            "resourceType": "AllergyIntolerance",
            "id": rid,
            "meta": {"profile": [f"{IPS}/AllergyIntolerance-uv-ips"]},
            "clinicalStatus": _coding(_ALLERGY_CLINICAL, "active", "Active"),
            "verificationStatus": _coding(_ALLERGY_VERIFICATION, "unconfirmed", "Unconfirmed"),
            "code": {"text": allergy["substance"]},
            "patient": subject,
        }
        severity = allergy.get("severity")
        if severity:
            resource["criticality"] = _CRITICALITY[severity]
        if allergy.get("reaction") or severity:
            reaction: dict[str, Any] = {"manifestation": [{"text": allergy.get("reaction") or "unspecified reaction"}]}
            if severity:
                reaction["severity"] = severity
            resource["reaction"] = [reaction]
        refs.append(b.add(resource, url))
        lines.append(" - ".join(part for part in (allergy["substance"], allergy.get("reaction"), severity) if part))
    section("Allergies and Intolerances", "48765-2", "Allergies and adverse reactions Document", refs, lines)

    # Medication summary (required by IPS).
    refs, lines = [], []
    for index, medication in enumerate(summary.get("medications") or []):
        rid, url = b.urn("medication", index)
        resource = {
            "resourceType": "MedicationStatement",
            "id": rid,
            "meta": {"profile": [f"{IPS}/MedicationStatement-uv-ips"]},
            "status": "active",
            "medicationCodeableConcept": {"text": medication["name"]},
            "subject": subject,
        }
        if medication.get("dose"):
            resource["dosage"] = [{"text": medication["dose"]}]
        refs.append(b.add(resource, url))
        lines.append(" ".join(part for part in (medication["name"], medication.get("dose")) if part))
    section("Medication Summary", "10160-0", "History of Medication use Narrative", refs, lines)

    # Problem list (required by IPS).
    refs, lines = [], []
    for index, condition in enumerate(summary.get("chronic_conditions") or []):
        rid, url = b.urn("condition", index)
        resource = {
            "resourceType": "Condition",
            "id": rid,
            "meta": {"profile": [f"{IPS}/Condition-uv-ips"]},
            "clinicalStatus": _coding(_CONDITION_CLINICAL, "active", "Active"),
            "code": {"text": condition},
            "subject": subject,
        }
        refs.append(b.add(resource, url))
        lines.append(condition)
    section("Problem List", "11450-4", "Problem list - Reported", refs, lines)

    # Results: blood group.
    blood = summary.get("blood_type") or {}
    refs, lines = [], []
    if blood.get("abo") and blood["abo"] != "unknown":
        rid, url = b.urn("blood")
        text = f"{blood['abo']} {_RH_TEXT.get(blood.get('rh') or 'unknown')}"
        refs.append(
            b.add(
                {
                    "resourceType": "Observation",
                    "id": rid,
                    "status": "final",
                    "category": [_coding(_OBSERVATION_CATEGORY, "laboratory", "Laboratory")],
                    "code": _coding(LOINC, "882-1", "ABO and Rh group [Type] in Blood"),
                    "subject": subject,
                    "valueCodeableConcept": {"text": text},
                },
                url,
            )
        )
        lines.append(f"Blood group: {text}")
    section("Results", "30954-2", "Relevant diagnostic tests/laboratory data Narrative", refs, lines)

    # Medical devices.
    refs, lines = [], []
    for index, device_name in enumerate(summary.get("implanted_devices") or []):
        did, durl = b.urn("device", index)
        device = b.add({"resourceType": "Device", "id": did, "type": {"text": device_name}, "patient": subject}, durl)
        rid, url = b.urn("device-use", index)
        refs.append(
            b.add({"resourceType": "DeviceUseStatement", "id": rid, "status": "active", "subject": subject, "device": device}, url)
        )
        lines.append(device_name)
    section("Medical Devices", "46264-8", "History of medical device use", refs, lines)

    # History of procedures.
    refs, lines = [], []
    for index, surgery in enumerate(summary.get("past_surgeries") or []):
        rid, url = b.urn("procedure", index)
        resource = {"resourceType": "Procedure", "id": rid, "status": "completed", "code": {"text": surgery["name"]}, "subject": subject}
        if surgery.get("year"):
            resource["performedDateTime"] = str(surgery["year"])
        refs.append(b.add(resource, url))
        lines.append(f"{surgery['name']} ({surgery['year']})" if surgery.get("year") else surgery["name"])
    section("History of Procedures", "47519-4", "History of Procedures Document", refs, lines)

    # Pregnancy.
    pregnancy = summary.get("pregnancy")
    if pregnancy:
        refs, lines = [], []
        code, display = _PREGNANCY_SNOMED[pregnancy["status"]]
        rid, url = b.urn("pregnancy")
        refs.append(
            b.add(
                {
                    "resourceType": "Observation",
                    "id": rid,
                    "status": "final",
                    "code": _coding(LOINC, "82810-3", "Pregnancy status"),
                    "subject": subject,
                    "effectiveDateTime": stamp,
                    "valueCodeableConcept": _coding(SNOMED, code, display),
                },
                url,
            )
        )
        lines.append(display)
        if pregnancy.get("due_date"):
            rid, url = b.urn("due-date")
            refs.append(
                b.add(
                    {
                        "resourceType": "Observation",
                        "id": rid,
                        "status": "final",
                        "code": _coding(LOINC, "11778-8", "Delivery date Estimated"),
                        "subject": subject,
                        "valueDateTime": pregnancy["due_date"],
                    },
                    url,
                )
            )
            lines.append(f"Estimated delivery date {pregnancy['due_date']}")
        section("History of Pregnancy", "10162-6", "History of pregnancies Narrative", refs, lines)

    # Advance directives: narrative only.
    if summary.get("advance_directives"):
        sections.append(
            {
                "title": "Advance Directives",
                "code": _coding(LOINC, "42348-3", "Advance healthcare directives"),
                "text": _narrative([summary["advance_directives"]]),
            }
        )

    composition_id, composition_url = b.urn(f"composition@{stamp}")
    composition = {
        "resourceType": "Composition",
        "id": composition_id,
        "meta": {"profile": [f"{IPS}/Composition-uv-ips"]},
        "status": "final",
        "type": _coding(LOINC, "60591-5", "Patient summary Document"),
        "subject": subject,
        "date": stamp,
        "author": [author],
        "title": "International Patient Summary",
        "confidentiality": "R",
        "section": sections,
    }
    bundle_id, bundle_url = b.urn(f"bundle@{stamp}")
    return {
        "resourceType": "Bundle",
        "id": bundle_id,
        "meta": {"profile": [f"{IPS}/Bundle-uv-ips"]},
        "identifier": {"system": "urn:ietf:rfc:3986", "value": bundle_url},
        "type": "document",
        "timestamp": stamp,
        "entry": [{"fullUrl": composition_url, "resource": composition}] + b.entries,
    }
