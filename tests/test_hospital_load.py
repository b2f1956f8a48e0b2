"""Hospital choice under load (issue 8): admissions already incoming count against a hospital's free
beds, so units are not all sent to the one hospital that declared two; and a hospital can declare
one capability unavailable (the cath lab) without diverting everything."""

from __future__ import annotations

import pytest

from dispatch import selectors, services
from dispatch.models import Ambulance, Hospital
from dispatch.services import Fix

pytestmark = pytest.mark.django_db

SCENE = (34.7466, 113.6253)


def ok(response, status=200):
    assert response.status_code == status, response.content
    return response.json()


@pytest.fixture
def near_and_far(db):
    """Two equally capable chest-pain hospitals; A is nearer the scene and declared 2 free beds."""
    a = Hospital.objects.create(code="A", name_zh="甲", name_en="A", lat=34.7500, lon=113.6300, capabilities=["chest_pain", "pci", "general_ed"], ed_free_beds=2)
    b = Hospital.objects.create(code="B", name_zh="乙", name_en="B", lat=34.7700, lon=113.6600, capabilities=["chest_pain", "pci"], ed_free_beds=6)
    return a, b


def transport(citizen, station, hospital: Hospital, n: int) -> int:
    """A chest-pain patient on board unit n, heading to ``hospital``; returns the case id."""
    unit = Ambulance.objects.create(call_sign=f"LOAD-{n}", station=station, lat=SCENE[0], lon=SCENE[1])
    case, _ = services.case_create(caller=citizen, fix=Fix(lat=SCENE[0], lon=SCENE[1]), complaint="chest_pain", idempotency_key=f"load-{n}")
    services.unit_assign(case_id=case.pk, ambulance_id=unit.pk)
    for step in ("en_route", "on_scene", "transporting"):
        services.unit_set_status(ambulance_id=unit.pk, status=step, hospital_id=hospital.pk)
    return case.pk


def ranking(complaint="chest_pain") -> list[str]:
    return [s.hospital.code for s in selectors.suggest_hospitals(lat=SCENE[0], lon=SCENE[1], complaint=complaint, count=5)]


def test_it_stops_suggesting_the_hospital_whose_two_free_beds_are_already_incoming(near_and_far, citizen, station, as_dispatcher):
    a, b = near_and_far
    assert ranking()[:2] == ["A", "B"]  # nearer first while it has room
    transport(citizen, station, a, 1)
    assert ranking()[:2] == ["A", "B"]  # one bed left
    transport(citizen, station, a, 2)
    assert ranking()[:2] == ["B", "A"]  # both beds taken by patients on their way: B, which has room, first
    hospitals = {h["code"]: h for h in ok(as_dispatcher.get("/api/v1/hospitals"))}
    assert (hospitals["A"]["incoming"], hospitals["A"]["ed_free_beds"]) == (2, 2)
    assert hospitals["B"]["incoming"] == 0


def test_it_gives_the_bed_back_when_the_patient_arrives(near_and_far, citizen, station):
    a, _ = near_and_far
    for n in (1, 2):
        transport(citizen, station, a, n)
    assert ranking()[0] == "B"
    services.unit_set_status(ambulance_id=Ambulance.objects.get(call_sign="LOAD-1").pk, status="at_hospital")
    # Arrived: the ED now counts the patient itself (and declares its beds again); one bed left.
    assert ranking()[0] == "A"


def test_it_skips_a_hospital_for_a_complaint_needing_a_capability_it_declared_unavailable(near_and_far, as_dispatcher):
    a, _ = near_and_far
    staff = _staff_client(a)
    body = ok(staff.post(f"/api/v1/hospitals/{a.pk}/status", {"unavailable_capabilities": ["chest_pain", "pci"]}, format="json"))
    assert body["unavailable_capabilities"] == ["chest_pain", "pci"] and body["ed_status"] == "open"
    assert "A" not in ranking("chest_pain")
    assert "A" in ranking("other")  # its ED still takes everything else
    ok(staff.post(f"/api/v1/hospitals/{a.pk}/status", {"unavailable_capabilities": []}, format="json"))
    assert ranking("chest_pain")[0] == "A"


def test_it_keeps_a_hospital_capable_while_one_of_the_needed_capabilities_works(near_and_far):
    a, _ = near_and_far
    services.hospital_set_status(hospital_id=a.pk, unavailable_capabilities=["pci"])
    assert ranking("chest_pain")[0] == "A"


def test_it_announces_a_lost_capability_as_one_hospital_status_change(near_and_far, as_dispatcher):
    a, _ = near_and_far
    staff = _staff_client(a)
    since = selectors.stream_last_seq("dispatch")
    ok(staff.post(f"/api/v1/hospitals/{a.pk}/status", {"unavailable_capabilities": ["pci"]}, format="json"))
    changed = [e for e in selectors.events_after("dispatch", since)]
    assert [e.type for e in changed] == ["hospital.status_changed"]
    assert changed[0].data["unavailable_capabilities"] == ["pci"] and changed[0].data["incoming"] == 0
    ok(staff.post(f"/api/v1/hospitals/{a.pk}/status", {"unavailable_capabilities": ["pci"]}, format="json"))
    assert selectors.stream_last_seq("dispatch") == since + 1  # nothing changed, nothing said


@pytest.mark.parametrize("lost", [["cath_lab"], ["burns"], "pci"])
def test_it_names_the_field_when_the_capability_is_unknown_or_not_the_hospitals(near_and_far, lost):
    a, _ = near_and_far
    response = _staff_client(a).post(f"/api/v1/hospitals/{a.pk}/status", {"unavailable_capabilities": lost}, format="json")
    assert response.status_code == 400 and "unavailable_capabilities" in response.json(), response.content


def _staff_client(hospital: Hospital):
    from accounts.models import Role
    from dispatch.models import HospitalStaff
    from tests.support.cast import api_client, make_user

    user = make_user(f"ed-{hospital.code}", Role.HOSPITAL)
    HospitalStaff.objects.create(user=user, hospital=hospital)
    return api_client(user)
