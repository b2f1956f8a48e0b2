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
    """The bundle's entries as they are made, in order, and their deterministic ids."""

    def __init__(self, summary: dict[str, Any]):
        self.seed = f"{summary.get('archive_id', '')}:{summary.get('version', '')}"
        self.entries: list[dict] = []

    def urn(self, kind: str, index: int = 0) -> tuple[str, str]:
        rid = str(uuid.uuid5(_NS, f"{self.seed}:{kind}:{index}"))
        return rid, f"urn:uuid:{rid}"

    def add(self, resource: dict, full_url: str) -> dict:
        self.entries.append({"fullUrl": full_url, "resource": resource})
        return {"reference": full_url}


def _section(title: str, code: str, display: str, refs: list[dict], lines: list[str]) -> dict:
    """A Composition section; one without entries says why (IPS requires the section anyway)."""
    section: dict[str, Any] = {"title": title, "code": _coding(LOINC, code, display), "text": _narrative(lines)}
    if refs:
        section["entry"] = refs
    else:
        section["emptyReason"] = _coding(_EMPTY_REASON, "unavailable", "Unavailable")
    return section


def _observation(b: _Builder, kind: str, subject: dict, code: dict, *, category: dict | None = None, **value) -> dict:
    rid, url = b.urn(kind)
    resource: dict[str, Any] = {"resourceType": "Observation", "id": rid, "status": "final"}
    if category:
        resource["category"] = [category]
    return b.add({**resource, "code": code, "subject": subject, **value}, url)


def _patient(b: _Builder, summary: dict[str, Any]) -> dict:
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
    return b.add(patient, patient_url)


def _author(b: _Builder, name: str) -> dict:
    org_id, org_url = b.urn("author")
    return b.add({"resourceType": "Organization", "id": org_id, "name": name}, org_url)


def _allergies(b: _Builder, summary: dict[str, Any], subject: dict) -> dict:
    """Allergies and intolerances (required by IPS)."""
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
    return _section("Allergies and Intolerances", "48765-2", "Allergies and adverse reactions Document", refs, lines)


def _medications(b: _Builder, summary: dict[str, Any], subject: dict) -> dict:
    """Medication summary (required by IPS)."""
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
    return _section("Medication Summary", "10160-0", "History of Medication use Narrative", refs, lines)


def _problems(b: _Builder, summary: dict[str, Any], subject: dict) -> dict:
    """Problem list (required by IPS)."""
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
    return _section("Problem List", "11450-4", "Problem list - Reported", refs, lines)


def _results(b: _Builder, summary: dict[str, Any], subject: dict) -> dict:
    """Results: the blood group, when known."""
    blood = summary.get("blood_type") or {}
    refs, lines = [], []
    if blood.get("abo") and blood["abo"] != "unknown":
        text = f"{blood['abo']} {_RH_TEXT.get(blood.get('rh') or 'unknown')}"
        refs.append(_observation(
            b, "blood", subject, _coding(LOINC, "882-1", "ABO and Rh group [Type] in Blood"),
            category=_coding(_OBSERVATION_CATEGORY, "laboratory", "Laboratory"),
            valueCodeableConcept={"text": text},
        ))
        lines.append(f"Blood group: {text}")
    return _section("Results", "30954-2", "Relevant diagnostic tests/laboratory data Narrative", refs, lines)


def _devices(b: _Builder, summary: dict[str, Any], subject: dict) -> dict:
    """Medical devices: each a Device and the DeviceUseStatement that points at it."""
    refs, lines = [], []
    for index, device_name in enumerate(summary.get("implanted_devices") or []):
        did, durl = b.urn("device", index)
        device = b.add({"resourceType": "Device", "id": did, "type": {"text": device_name}, "patient": subject}, durl)
        rid, url = b.urn("device-use", index)
        refs.append(
            b.add({"resourceType": "DeviceUseStatement", "id": rid, "status": "active", "subject": subject, "device": device}, url)
        )
        lines.append(device_name)
    return _section("Medical Devices", "46264-8", "History of medical device use", refs, lines)


def _procedures(b: _Builder, summary: dict[str, Any], subject: dict) -> dict:
    """History of procedures."""
    refs, lines = [], []
    for index, surgery in enumerate(summary.get("past_surgeries") or []):
        rid, url = b.urn("procedure", index)
        resource = {"resourceType": "Procedure", "id": rid, "status": "completed", "code": {"text": surgery["name"]}, "subject": subject}
        if surgery.get("year"):
            resource["performedDateTime"] = str(surgery["year"])
        refs.append(b.add(resource, url))
        lines.append(f"{surgery['name']} ({surgery['year']})" if surgery.get("year") else surgery["name"])
    return _section("History of Procedures", "47519-4", "History of Procedures Document", refs, lines)


def _pregnancy(b: _Builder, summary: dict[str, Any], subject: dict, stamp: str) -> dict | None:
    """Pregnancy status (and the estimated delivery date); no section when nothing is recorded."""
    pregnancy = summary.get("pregnancy")
    if not pregnancy:
        return None
    code, display = _PREGNANCY_SNOMED[pregnancy["status"]]
    refs = [_observation(b, "pregnancy", subject, _coding(LOINC, "82810-3", "Pregnancy status"),
                         effectiveDateTime=stamp, valueCodeableConcept=_coding(SNOMED, code, display))]
    lines = [display]
    if pregnancy.get("due_date"):
        refs.append(_observation(b, "due-date", subject, _coding(LOINC, "11778-8", "Delivery date Estimated"),
                                 valueDateTime=pregnancy["due_date"]))
        lines.append(f"Estimated delivery date {pregnancy['due_date']}")
    return _section("History of Pregnancy", "10162-6", "History of pregnancies Narrative", refs, lines)


def _advance_directives(summary: dict[str, Any]) -> dict | None:
    """Advance directives: narrative only; no section when there are none."""
    if not summary.get("advance_directives"):
        return None
    return {
        "title": "Advance Directives",
        "code": _coding(LOINC, "42348-3", "Advance healthcare directives"),
        "text": _narrative([summary["advance_directives"]]),
    }


def _composition(b: _Builder, *, subject: dict, author: dict, sections: list[dict], stamp: str) -> dict:
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
    return {"fullUrl": composition_url, "resource": composition}


def bundle_for_summary(
    summary: dict[str, Any], *, timestamp: datetime | None = None, author_name: str = "One-key 120 emergency centre"
) -> dict[str, Any]:
    """Return the IPS document Bundle (a dict ready for JSON) for one health summary."""
    timestamp = (timestamp or datetime.now(dt_timezone.utc)).astimezone(dt_timezone.utc)
    stamp = timestamp.isoformat(timespec="seconds").replace("+00:00", "Z")
    b = _Builder(summary)
    subject = _patient(b, summary)
    author = _author(b, author_name)
    # In this order: the entries follow the sections', and the required sections come first.
    sections = [
        _allergies(b, summary, subject),
        _medications(b, summary, subject),
        _problems(b, summary, subject),
        _results(b, summary, subject),
        _devices(b, summary, subject),
        _procedures(b, summary, subject),
        _pregnancy(b, summary, subject, stamp),
        _advance_directives(summary),
    ]
    composition = _composition(b, subject=subject, author=author, sections=[s for s in sections if s], stamp=stamp)
    bundle_id, bundle_url = b.urn(f"bundle@{stamp}")
    return {
        "resourceType": "Bundle",
        "id": bundle_id,
        "meta": {"profile": [f"{IPS}/Bundle-uv-ips"]},
        "identifier": {"system": "urn:ietf:rfc:3986", "value": bundle_url},
        "type": "document",
        "timestamp": stamp,
        "entry": [composition, *b.entries],
    }
