"""The hospital pre-notification as an HL7 v2.5.1 ADT^A05 (pre-admit a patient), beside the FHIR
bundle, for hospital information systems that speak v2 over MLLP or file drops.

Segments: MSH, EVN, PID, PV1 (the admission: assigned location = the ED, visit number = our
admission id, the ED's registration number once acknowledged as the alternate visit id), PV2
(expected admit date/time = the ETA), then AL1 per allergy, DG1 per chronic condition, OBX for blood group and the
ETA in seconds, NTE for the complaint, the unit, and why health data is missing when it is.

Health data (PID name/sex/birth date, AL1, DG1, blood group) comes only from a summary dict the
caller obtained through ``dispatch.archive_access.health_summary_for`` (a granted, logged read); without
one the message still announces the patient, as "unknown", with the reason in an NTE.
Free text is escaped per HL7 v2 section 2.7 so a ``|`` or ``^`` typed by a citizen can never open
a new field or component.
"""

from __future__ import annotations

from datetime import datetime, timezone as dt_timezone
from typing import Any

from dispatch.models import Admission

CONTENT_TYPE = "x-application/hl7-v2+er7"  # the media type HL7 v2 over HTTP conventionally uses (ER7 = pipe-and-hat)
SEPARATOR = "\r"
ENCODING_CHARACTERS = "^~\\&"
VERSION = "2.5.1"
SENDING_APPLICATION = "ONEKEY120"
SENDING_FACILITY = "ZZ120"

_ESCAPES = {"\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "&": "\\T\\", "~": "\\R\\", "\r": "\\X0D\\", "\n": "\\X0A\\"}
_SEX = {"male": "M", "female": "F", "other": "O", "unknown": "U"}
_ALLERGY_SEVERITY = {"severe": "SV", "moderate": "MO", "mild": "MI"}


def escape(text: Any) -> str:
    """Escape HL7 delimiters (field, component, repetition, escape, subcomponent) and line breaks."""
    return "".join(_ESCAPES.get(ch, ch) for ch in str(text or ""))


def _ts(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(dt_timezone.utc).strftime("%Y%m%d%H%M%S+0000")


def _segment(name: str, *fields: str) -> str:
    # Trailing empty fields are dropped, as v2 senders conventionally do.
    values = list(fields)
    while values and values[-1] == "":
        values.pop()
    return "|".join([name, *values])


def _name(full: str) -> str:
    # XPN: family^given. A Chinese name is written family-name first with no space, so a name
    # without a space goes whole into the family component rather than being split wrongly.
    parts = full.split()
    if len(parts) > 1:
        return f"{escape(parts[-1])}^{escape(' '.join(parts[:-1]))}"
    return escape(full)


def adt_a05(
    admission: Admission,
    *,
    summary: dict[str, Any] | None,
    withheld_reason: str | None = None,
    now: datetime | None = None,
) -> str:
    """The ER7 text of one ADT^A05 for ``admission`` (case, hospital and ambulance loaded)."""
    now = now or datetime.now(dt_timezone.utc)
    case, hospital, unit = admission.case, admission.hospital, admission.ambulance
    control_id = f"A{admission.pk}-{now.strftime('%Y%m%d%H%M%S')}"
    patient_id = f"CASE{case.pk}^^^{SENDING_FACILITY}^VN"
    segments = [
        "|".join(
            [
                "MSH",
                ENCODING_CHARACTERS,
                SENDING_APPLICATION,
                SENDING_FACILITY,
                "",
                escape(hospital.code),
                _ts(now),
                "",
                "ADT^A05^ADT_A05",
                control_id,
                "P",
                VERSION,
                "",
                "",
                "",
                "",
                "CHN",
                "UNICODE UTF-8",
            ]
        ),
        _segment("EVN", "A05", _ts(now), "", "", "", _ts(admission.opened_at)),
    ]

    if summary:
        name = _name(summary.get("name") or "Unknown")
        sex = _SEX.get(summary.get("sex") or "unknown", "U")
        birth = (summary.get("date_of_birth") or "").replace("-", "")
    else:
        name, sex, birth = "Unknown", "U", ""
    segments.append(_segment("PID", "1", "", patient_id, "", name, "", birth, sex))

    segments.append(_pv1(admission, hospital.code))
    if admission.eta_at is not None:
        segments.append(_segment("PV2", "", "", "", "", "", "", "", _ts(admission.eta_at)))  # PV2-8 expected admit

    if summary:
        for index, allergy in enumerate(summary.get("allergies") or [], start=1):
            segments.append(
                _segment(
                    "AL1",
                    str(index),
                    "DA",  # allergen type: drug allergy is the prudent default for an ED
                    f"^{escape(allergy.get('substance'))}",
                    _ALLERGY_SEVERITY.get(allergy.get("severity") or "", "U"),
                    escape(allergy.get("reaction")),
                )
            )
        for index, condition in enumerate(summary.get("chronic_conditions") or [], start=1):
            segments.append(_segment("DG1", str(index), "", f"^{escape(condition)}", "", "", "F"))

    observations: list[tuple[str, str, str, str]] = []
    if admission.eta_s is not None:
        observations.append(("NM", "ETA^Estimated time to arrival^L", str(admission.eta_s), "s^seconds^UCUM"))
    blood = (summary or {}).get("blood_type") or {}
    if blood.get("abo") and blood["abo"] != "unknown":
        rh = {"positive": "Rh(D) positive", "negative": "Rh(D) negative"}.get(blood.get("rh") or "", "Rh(D) unknown")
        observations.append(("ST", "882-1^ABO and Rh group [Type] in Blood^LN", escape(f"{blood['abo']} {rh}"), ""))
    for index, (kind, code, value, units) in enumerate(observations, start=1):
        segments.append(_segment("OBX", str(index), kind, code, "", value, units, "", "", "", "", "F"))

    notes = [f"Complaint: {case.get_complaint_display()}", f"Unit: {unit.call_sign}"]
    if unit.phone:
        notes.append(f"Unit phone: {unit.phone}")
    if case.note:
        notes.append(f"Caller note: {case.note}")
    if not summary:
        notes.append(f"No health summary: {withheld_reason or 'not available'}")
    for index, note in enumerate(notes, start=1):
        segments.append(_segment("NTE", str(index), "L", escape(note)))
    return SEPARATOR.join(segments) + SEPARATOR


def _pv1(admission: Admission, hospital_code: str) -> str:
    fields = [""] * 52
    fields[1] = "1"
    fields[2] = "E"  # patient class: emergency
    fields[3] = f"ED^^^{escape(hospital_code)}"  # assigned location: the destination's ED
    fields[4] = "E"  # admission type: emergency
    fields[14] = "7"  # admit source: emergency room (HL7 table 0023)
    fields[19] = escape(admission.pk)  # visit number: our admission
    fields[50] = escape(admission.registration_no)  # alternate visit id: the ED's registration number
    return _segment("PV1", *fields[1:])
