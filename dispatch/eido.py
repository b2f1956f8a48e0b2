"""A case as an Emergency Incident Data Object (EIDO), for a neighbouring 110/119/120 centre.

Field names follow NENA's EIDO JSON (NENA-STA-021.1a, conveyed per NENA-STA-024; schema
``Schema/openapi.yaml`` of github.com/NENA911/EIDO-JSON, version 1.0.0): a prologue on every
component (``$id``, ``lastUpdateTimeStamp``, ``updatedByAgencyReference``), components listed once
at the top level and linked by ``{"$ref": <$id>}``; locations by value as PIDF-LO (RFC 4119/5491
shapes, WGS-84 EPSG:4326).

The document leaves the centre, so it carries no health data: no archive field, no summary, no
triage answers, and not the caller's free-text note (a caller may type anything medical there).
It says what any centre needs to take part: what happened, how urgent, where, who called back on
which number, which unit goes, where it takes the patient, and when each step happened.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone as dt_timezone
from typing import Any
from xml.sax.saxutils import quoteattr

from django.conf import settings

from dispatch.models import Case, CaseStatus
from dispatch.serializers import live_eta_s

EIDO_VERSION = "1.0"
# The JSON-LD context exactly as the EIDO schema enumerates it.
CONTEXT = {"@vocab": "./JSON-LD_Contexts/EmergencyIncidentDataObjectType.jsonld"}

_CLOSED = {CaseStatus.CLOSED, CaseStatus.CANCELLED}
# EIDO "Primary Unit Status" registry wording for our unit statuses.
_UNIT_STATUS = {
    "dispatched": "Dispatched",
    "en_route": "Enroute",
    "on_scene": "OnScene",
    "transporting": "Transporting",
    "at_hospital": "AtDestination",
    "available": "Available",
    "out_of_service": "OutOfService",
}


def agency_id() -> str:
    """This centre's agency identifier (NENA-STA-010 style: a domain name)."""
    return getattr(settings, "EIDO_AGENCY_ID", "120.zhengzhou.example.cn")


def _ts(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(dt_timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def incident_tracking_identifier(case_id: int) -> str:
    return f"urn:emergency:uid:incidentid:{case_id}:{agency_id()}"


def _pidf_point(entity: str, lat: float, lon: float, radius_m: float | None, at: datetime | None) -> str:
    """A PIDF-LO document: a gml Point, or a GeoShape Circle when the accuracy radius is known."""
    if radius_m:
        shape = (
            '<gs:Circle srsName="urn:ogc:def:crs:EPSG::4326">'
            f"<gml:pos>{lat:.7f} {lon:.7f}</gml:pos>"
            f'<gs:radius uom="urn:ogc:def:uom:EPSG::9001">{radius_m:.1f}</gs:radius></gs:Circle>'
        )
    else:
        shape = f'<gml:Point srsName="urn:ogc:def:crs:EPSG::4326"><gml:pos>{lat:.7f} {lon:.7f}</gml:pos></gml:Point>'
    stamp = f"<timestamp>{_ts(at)}</timestamp>" if at else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" '
        'xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10" xmlns:gml="http://www.opengis.net/gml" '
        f'xmlns:gs="http://www.opengis.net/pidflo/1.0" entity={quoteattr(entity)}>'
        f'<dm:device id="loc"><gp:geopriv><gp:location-info>{shape}</gp:location-info>'
        "<gp:usage-rules/></gp:geopriv>"
        f"{stamp}</dm:device></presence>"
    )


def eido_for_case(case: Case, *, now: datetime | None = None) -> dict[str, Any]:
    """The EIDO (a JSON-ready dict) for one case, as it stands now."""
    now = now or datetime.now(dt_timezone.utc)
    agency = agency_id()
    tracking = incident_tracking_identifier(case.pk)
    base = f"urn:emergency:uid:{{kind}}:{case.pk}:{agency}"
    updated = _ts(case.updated_at or now)

    def prologue(kind: str, suffix: str = "", at: datetime | None = None) -> dict[str, Any]:
        return {
            "$id": base.format(kind=kind) + suffix,
            "lastUpdateTimeStamp": _ts(at) or updated,
            "updatedByAgencyReference": {"$ref": agency},
        }

    def ref(component: dict) -> dict:
        return {"$ref": component["$id"]}

    agency_component = {
        "$id": agency,
        "lastUpdateTimeStamp": updated,
        "updatedByAgencyReference": {"$ref": agency},
        "agencyRoleDescriptionRegistryText": ["Dispatch"],
        "agencyType": ["ems"],
        "incidentOwningAgencyIndicator": True,
    }

    latest = case.locations.order_by("-received_at", "-pk").first()
    caller_location = {
        **prologue("locationid", ":caller", latest.received_at if latest else case.received_at),
        "locationTypeDescriptionRegistryText": "Caller",
        "locationByValue": _pidf_point(
            f"pres:case{case.pk}@{agency}",
            case.lat,
            case.lon,
            case.accuracy_m,
            (latest.fix_time or latest.received_at) if latest else case.received_at,
        ),
    }
    if case.reported_address:
        caller_location["locationDescriptionText"] = case.reported_address
    locations = [caller_location]

    callbacks = []
    # The number the staff view shows: the account's phone for a tap, the typed one for a phoned-in call.
    phone = case.caller.phone if case.caller_id else case.caller_phone
    if phone:
        callbacks.append({**prologue("callbackid"), "callBackInformationUri": [f"tel:{phone}"]})

    caller = {
        **prologue("personid", ":caller"),
        # The caller is also the patient when they tapped for themselves; no more is said of them.
        "personIncidentRoleRegistryText": ["Caller", "Patient"] if case.for_self else ["Caller"],
        "locationReference": [ref(caller_location)],
    }
    if callbacks:
        caller["callBackReference"] = ref(callbacks[0])
    persons = [caller]

    call = {
        **prologue("callid", at=case.received_at),
        "callIdentifier": base.format(kind="callid"),
        "callStartTimestamp": _ts(case.received_at),
        "direction": "incoming",
        "standardPrimaryCallType": "emergency",
        "callTypeDescriptionRegistryText": "app" if case.source == "tap" else "voice",
        "locationReference": [ref(caller_location)],
        "personReference": [ref(caller)],
    }
    if callbacks:
        call["callBackReference"] = ref(callbacks[0])

    notes: list[dict] = []

    def note(suffix: str, text: str, at: datetime | None = None) -> None:
        notes.append({**prologue("notesid", f":{suffix}", at), "notesActionComments": text})

    if case.status == CaseStatus.CANCELLED:
        note("cancel", f"Cancelled: {case.cancel_reason or 'no reason given'}", case.cancelled_at)
    if case.silent:
        note("silent", "Silent call: the caller cannot speak; contact by text only.")

    resources, dispatches = [], []
    if case.ambulance_id:
        unit = case.ambulance
        unit_location = {
            **prologue("locationid", ":unit", unit.position_at),
            "locationTypeDescriptionRegistryText": "Unit",
            "locationByValue": _pidf_point(f"pres:{unit.call_sign}@{agency}", unit.lat, unit.lon, None, unit.position_at),
        }
        locations.append(unit_location)
        resource: dict[str, Any] = {
            **prologue("resourceid", f":{unit.pk}", unit.status_at),
            "emergencyResourceTypeCommonRegistryText": "Ambulance",
            "emergencyResourceTypeInternalText": unit.get_level_display(),
            "enforcementUnitName": unit.call_sign,
            "enforcementUnitIdentification": f"{unit.call_sign}@{agency}",
            "primaryUnitStatusRegistryText": _UNIT_STATUS.get(unit.status, unit.status),
            "unitStatusInternal": [unit.status],
            "unitLocationReference": ref(unit_location),
        }
        if case.hospital_id:
            hospital = case.hospital
            destination = {
                **prologue("locationid", ":destination"),
                "locationTypeDescriptionRegistryText": "Destination",
                "locationDescriptionText": f"{hospital.name_zh} {hospital.name_en} ({hospital.code})",
                "locationByValue": _pidf_point(f"pres:{hospital.code}@{agency}", hospital.lat, hospital.lon, None, None),
            }
            locations.append(destination)
            resource["unitDestinationReference"] = ref(destination)
        eta_s = live_eta_s(case) if case.status not in _CLOSED else None
        if eta_s is not None:
            resource["ETA"] = _ts(now + timedelta(seconds=eta_s))
        resources.append(resource)
        dispatches.append({**prologue("dispatchid", at=case.notified_at), "emergencyResourceReference": [ref(resource)]})

    milestones = [
        ("received", case.received_at),
        ("unit notified", case.notified_at),
        ("unit en route", case.en_route_at),
        ("unit on scene", case.on_scene_at),
        ("left scene with patient", case.left_scene_at),
        ("arrived at destination", case.at_destination_at),
        ("transfer of care", case.transfer_of_care_at),
        ("closed", case.closed_at),
    ]
    timeline = "; ".join(f"{label} {_ts(at)}" for label, at in milestones if at)
    note("timeline", f"Timeline (UTC): {timeline}", case.updated_at)

    incident: dict[str, Any] = {
        **prologue("incidentid"),
        "incidentTrackingIdentifier": tracking,
        "incidentTypeCommonRegistryText": "Medical",
        "incidentTypeInternalCode": case.complaint,
        "incidentTypeInternalText": case.get_complaint_display(),
        "incidentStatusCommonRegistryText": "Closed" if case.status in _CLOSED else "Open",
        "incidentStatusInternalText": [case.status],
        "incidentCommonPriorityNumber": int(case.priority),
        "incidentPriorityInternalText": case.get_priority_display(),
        "locationReference": [ref(caller_location)],
        "personReference": [ref(p) for p in persons],
        "notesReference": [ref(n) for n in notes],
    }

    document: dict[str, Any] = {
        "$id": f"urn:emergency:uid:eidoid:{case.pk}:{_ts(now)}:{agency}",
        "lastUpdateTimeStamp": updated,
        "updatedByAgencyReference": {"$ref": agency},
        "eidoVersion": EIDO_VERSION,
        "issuingElementIdentification": f"onekey120.{agency}",
        "incidentComponent": incident,
        "callComponent": [call],
        "agencyComponent": [agency_component],
        "locationComponent": locations,
        "personComponent": persons,
        "notesComponent": notes,
        "@context": CONTEXT,
    }
    if callbacks:
        document["callbackComponent"] = callbacks
    if resources:
        document["dispatchComponent"] = dispatches
        document["emergencyResourceComponent"] = resources
    if case.merged_into_id:
        # This case was folded into another: the receiver follows the surviving incident.
        document["mergeComponent"] = [
            {
                **prologue("mergeid"),
                "incidentTrackingIdentifier": incident_tracking_identifier(case.merged_into_id),
                "incidentMergeDirectionCode": "REPLACED",
            }
        ]
    return document

