"""The hospital pre-notification as HL7 v2 ADT^A05 (pre-admit), parsed back with python-hl7: the
segments a hospital information system reads, health data only under the FHIR read's rules, every
read in the citizen's access log, and free text that cannot break the message apart."""

from __future__ import annotations

import hl7
import pytest

from dispatch import hl7v2
from dispatch.models import Admission
from tests.support.archives import LOG_URL, URL, sample_archive
from tests.support.cases import new_case, to_hospital

HOSTILE = "Pea|nut^s & ~co\\re"


@pytest.fixture
def admission_id(as_citizen, as_dispatcher, as_crew, ambulance, hospital, as_hospital) -> int:
    archive = sample_archive(
        consent_share_with_120=True,
        allergies=[
            {"substance": "Zorblaxamine", "reaction": "purple Vexillum hives", "severity": "severe"},
            {"substance": HOSTILE, "reaction": "line\nbreak", "severity": "mild"},
        ],
    )
    assert as_citizen.put(URL, archive, format="json").status_code == 201
    case_id = new_case(as_citizen)
    to_hospital(as_dispatcher, as_crew, case_id, ambulance, hospital)
    # From the database, not the feed: the feed's own (logged) read must not stand in for this one.
    return Admission.objects.get(case_id=case_id).pk


def fetch(client, admission_id: int) -> hl7.Message:
    response = client.get(f"/api/v1/admissions/{admission_id}/hl7v2")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "x-application/hl7-v2+er7; charset=utf-8"
    text = response.content.decode("utf-8")
    assert text.startswith("MSH|^~\\&|") and "\n" not in text
    return hl7.parse(text)


def test_it_sends_an_adt_a05_with_patient_visit_and_eta(as_hospital, admission_id, hospital, ambulance):
    message = fetch(as_hospital, admission_id)
    names = [str(s[0]) for s in message]
    assert names[:10] == ["MSH", "EVN", "PID", "PV1", "PV2", "AL1", "AL1", "DG1", "OBX", "OBX"]
    assert set(names[10:]) == {"NTE"}
    assert str(message.extract_field("MSH", 1, 9, 1, 1)) == "ADT"
    assert str(message.extract_field("MSH", 1, 9, 1, 2)) == "A05"
    assert str(message.extract_field("MSH", 1, 12)) == "2.5.1"
    assert str(message.extract_field("MSH", 1, 6)) == hospital.code
    pid = message.segment("PID")
    assert str(pid(5)(1)(1)) == "Qingfeng" and str(pid(5)(1)(2)) == "欧阳青峰 Ouyang"
    assert (str(pid(7)), str(pid(8))) == ("19680412", "M")
    pv1 = message.segment("PV1")
    assert (str(pv1(2)), str(pv1(19))) == ("E", str(admission_id))
    assert str(pv1(3)(1)(4)) == hospital.code
    obx_eta = message.segments("OBX")[0]
    assert str(obx_eta(3)(1)(1)) == "ETA" and int(str(obx_eta(5))) > 0
    assert str(message.segment("PV2")(8)).endswith("+0000")
    allergies = message.segments("AL1")
    assert str(allergies[0](3)(1)(2)) == "Zorblaxamine" and str(allergies[0](4)) == "SV"
    assert str(message.segment("DG1")(3)(1)(2)) == "Hashimoto-Quokka thyroiditis"
    assert "AB Rh(D) negative" in str(message.segments("OBX")[1](5))
    notes = [str(n(3)) for n in message.segments("NTE")]
    assert "Complaint: " in notes[0] and ambulance.call_sign in notes[1]


def test_it_escapes_delimiters_typed_into_free_text(as_hospital, admission_id):
    message = fetch(as_hospital, admission_id)
    hostile = message.segments("AL1")[1]
    # Still one field with one component holding the whole text: nothing split it.
    assert len(hostile) == 6
    assert hl7v2.escape(HOSTILE) == "Pea\\F\\nut\\S\\s \\T\\ \\R\\co\\E\\re"
    raw = str(hostile(3))
    assert raw == "^" + hl7v2.escape(HOSTILE)
    assert message.unescape(raw.split("^", 1)[1]) == HOSTILE
    assert message.unescape(str(hostile(5))) == "line\nbreak"


def test_it_carries_the_registration_number_once_acknowledged(as_hospital, admission_id):
    assert len(fetch(as_hospital, admission_id).segment("PV1")) < 51  # PV1-50 absent
    response = as_hospital.post(f"/api/v1/admissions/{admission_id}/acknowledge", {"registration_no": "ED-2026-0042"}, format="json")
    assert response.status_code == 200, response.content
    assert str(fetch(as_hospital, admission_id).segment("PV1")(50)) == "ED-2026-0042"


def test_it_lets_only_the_destination_and_dispatchers_read_it(
    admission_id, as_hospital, as_other_hospital, as_citizen, as_crew, as_dispatcher
):
    assert as_other_hospital.get(f"/api/v1/admissions/{admission_id}/hl7v2").status_code == 403
    assert as_citizen.get(f"/api/v1/admissions/{admission_id}/hl7v2").status_code == 403
    assert as_crew.get(f"/api/v1/admissions/{admission_id}/hl7v2").status_code == 403
    assert as_hospital.get("/api/v1/admissions/999999/hl7v2").status_code == 404
    assert fetch(as_dispatcher, admission_id).segment("PID") is not None


def test_it_logs_the_read_like_the_fhir_read(as_citizen, as_hospital, admission_id, hospital):
    before = len(as_citizen.get(LOG_URL).json()["entries"])
    fetch(as_hospital, admission_id)
    entries = as_citizen.get(LOG_URL).json()["entries"]
    assert len(entries) == before + 1
    newest = max(entries, key=lambda e: e["seq"])
    assert newest["role"] == "hospital"
    # Read again: the same summary to the same reader is one logged read, as for the FHIR bundle.
    fetch(as_hospital, admission_id)
    assert len(as_citizen.get(LOG_URL).json()["entries"]) == before + 1


def test_it_withholds_health_data_without_consent_and_says_why(
    as_citizen, as_dispatcher, as_crew, ambulance, hospital, as_hospital
):
    assert as_citizen.put(URL, sample_archive(consent_share_with_120=False), format="json").status_code == 201
    case_id = new_case(as_citizen)
    to_hospital(as_dispatcher, as_crew, case_id, ambulance, hospital)
    admission = as_hospital.get(f"/api/v1/hospitals/{hospital.pk}/admissions").json()["results"][0]["id"]
    response = as_hospital.get(f"/api/v1/admissions/{admission}/hl7v2")
    text = response.content.decode()
    assert "Zorblaxamine" not in text and "Ouyang" not in text and "19680412" not in text
    message = hl7.parse(text)
    assert str(message.segment("PID")(5)) == "Unknown"
    assert "AL1" not in text and "DG1" not in text
    assert "No health summary: no_consent" in [str(n(3)) for n in message.segments("NTE")]
