"""`manage.py seed_demo`: the Zhengzhou demo (ZHENGZHOU.md) with its logins; running it twice
changes nothing."""

from __future__ import annotations

import math

import pytest
from django.apps import apps
from django.conf import settings as django_settings
from rest_framework.test import APIClient

from accounts.models import Role, User
from dispatch.models import Ambulance, CrewMember, Hospital, HospitalStaff, Station
from tests.support.demo import PASSWORD, seed

# The hospitals of ZHENGZHOU.md: code -> (lat, lon), WGS-84.
ZHENGZHOU_HOSPITALS = {
    "FAHZU-HY": (34.7545, 113.6420),
    "FAHZU-ZD": (34.8100, 113.7600),
    "HPPH": (34.7725, 113.6935),
    "FUWAI-CC": (34.785344, 113.850611),
    "HCH-E": (34.7775, 113.7465),
    "ZZ1PH": (34.750322, 113.678508),
    "HUCM1": (34.7595, 113.6675),
    "ZZPH": (34.7757, 113.6660),
    "ZZCH": (34.7540, 113.6100),
    "ZZU5": (34.7470, 113.6440),
    "ZZU3": (34.7460, 113.6420),
    "ZZU2": (34.7650, 113.6985),
    "HCHEST": (34.7710, 113.6880),
    "ZZ7PH": (34.7255, 113.6880),
    "HPTCM": (34.7950, 113.6650),
    "HCANCER": (34.7700, 113.7080),
    "HUIJI": (34.8650, 113.6300),
}
# The districts of ZHENGZHOU.md: name -> centre.
DISTRICTS = {
    "Jinshui": (34.785, 113.700),
    "Erqi": (34.725, 113.640),
    "Zhongyuan": (34.760, 113.600),
    "Guancheng": (34.735, 113.700),
    "Huiji": (34.865, 113.630),
    "Zhengdong": (34.775, 113.765),
    "High-tech": (34.805, 113.545),
    "Economic": (34.710, 113.745),
    "Airport": (34.520, 113.840),
}
CAPABILITIES = {"chest_pain", "stroke", "trauma", "critical_maternal", "critical_neonatal", "pci", "paediatrics", "burns"}


@pytest.fixture(autouse=True)
def _no_static_scan(settings):
    # WhiteNoise scans every static file each time a test client starts; the API needs none.
    settings.WHITENOISE_USE_FINDERS = False


def dump() -> dict:
    """Every row of every table, password hashes included."""
    return {
        model._meta.label: list(model.objects.order_by("pk").values())
        for model in apps.get_models()
        if model._meta.managed and not model._meta.proxy
    }


def token_for(username: str, password: str):
    return APIClient().post("/api/v1/auth/token", {"username": username, "password": password}, format="json")


def km(a, b) -> float:
    dy = (a[0] - b[0]) * 111.2
    dx = (a[1] - b[1]) * 111.2 * math.cos(math.radians(a[0]))
    return math.hypot(dx, dy)


@pytest.fixture
def seeded(db):
    seed("--password", PASSWORD)


def test_it_loads_every_zhengzhou_hospital_where_the_reference_puts_it(seeded):
    hospitals = {h.code: h for h in Hospital.objects.all()}
    assert set(hospitals) == set(ZHENGZHOU_HOSPITALS)
    for code, (lat, lon) in ZHENGZHOU_HOSPITALS.items():
        hospital = hospitals[code]
        assert (hospital.lat, hospital.lon) == (lat, lon), code
        assert hospital.name_zh and hospital.name_en
        assert hospital.ed_status == "open"
    assert "河南省人民医院" == hospitals["HPPH"].name_zh
    assert {"chest_pain", "pci"} <= set(hospitals["HPPH"].capabilities)
    assert {"chest_pain", "pci"} <= set(hospitals["FUWAI-CC"].capabilities)
    assert "paediatrics" in hospitals["HCH-E"].capabilities
    # Between them they cover every capability dispatch routes by.
    assert CAPABILITIES <= {c for h in hospitals.values() for c in h.capabilities}


def test_it_spreads_at_least_twelve_stations_over_every_district(seeded):
    stations = list(Station.objects.all())
    assert len(stations) >= 12
    covered = {name for name, centre in DISTRICTS.items() if any(km((s.lat, s.lon), centre) < 6 for s in stations)}
    assert covered == set(DISTRICTS)
    assert all(34.27 <= s.lat <= 34.97 and 112.70 <= s.lon <= 114.23 for s in stations)
    assert all(s.district and s.name_zh and s.name_en for s in stations)


def test_it_puts_at_least_forty_available_ambulances_at_the_stations(seeded):
    units = list(Ambulance.objects.select_related("station"))
    assert len(units) >= 40
    assert all(u.status == "available" for u in units)
    assert all(km((u.lat, u.lon), (u.station.lat, u.station.lon)) < 1 for u in units)
    assert Station.objects.filter(ambulances__isnull=True).count() == 0


def test_it_makes_the_dispatcher_account(seeded):
    user = User.objects.get(username="dispatcher1")
    assert user.role == Role.DISPATCHER and user.is_active
    assert token_for("dispatcher1", PASSWORD).status_code == 200


def test_it_makes_one_crew_account_per_ambulance_named_by_its_call_sign(seeded):
    units = list(Ambulance.objects.all())
    crews = {m.user.username: m.ambulance_id for m in CrewMember.objects.select_related("user")}
    assert crews == {u.call_sign: u.pk for u in units}
    assert set(User.objects.filter(role=Role.CREW).values_list("username", flat=True)) == set(crews)
    sign = units[0].call_sign
    token = token_for(sign, PASSWORD).json()["token"]
    me = APIClient()
    me.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert me.get("/api/v1/me").json()["ambulance"] == units[0].pk


def test_it_makes_one_staff_account_per_hospital_named_by_its_code(seeded):
    staff = {s.user.username: s.hospital.code for s in HospitalStaff.objects.select_related("user", "hospital")}
    assert staff == {code: code for code in ZHENGZHOU_HOSPITALS}
    assert set(User.objects.filter(role=Role.HOSPITAL).values_list("username", flat=True)) == set(ZHENGZHOU_HOSPITALS)
    token = token_for("FUWAI-CC", PASSWORD).json()["token"]
    me = APIClient()
    me.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert me.get("/api/v1/me").json()["hospital"] == Hospital.objects.get(code="FUWAI-CC").pk


def test_it_gives_every_account_the_password_it_was_given(seeded):
    for username in ("dispatcher1", "HPPH", Ambulance.objects.order_by("pk").last().call_sign):
        assert token_for(username, PASSWORD).status_code == 200, username
        assert token_for(username, django_settings.DEMO_PASSWORD).status_code != 200, username


@pytest.mark.django_db
def test_it_uses_the_documented_default_password_when_none_is_given():
    out = seed()
    assert token_for("dispatcher1", django_settings.DEMO_PASSWORD).status_code == 200
    assert token_for("HPPH", "onekey120-demo").status_code == 200
    assert "onekey120-demo" in out


def test_it_changes_nothing_when_run_twice(seeded):
    before = dump()
    out = seed("--password", PASSWORD)
    assert dump() == before
    assert "0 row(s) changed" in out


def test_it_changes_only_the_passwords_when_run_again_with_another(seeded):
    before = dump()
    seed("--password", "another-demo-pass")
    after = dump()
    assert token_for("dispatcher1", "another-demo-pass").status_code == 200
    assert token_for("dispatcher1", PASSWORD).status_code != 200
    for label in before:
        if label != "accounts.User":
            assert after[label] == before[label], label
    strip = lambda rows: [{k: v for k, v in row.items() if k != "password"} for row in rows]  # noqa: E731
    assert strip(after["accounts.User"]) == strip(before["accounts.User"])


def test_it_keeps_a_hospitals_live_ed_status_when_run_again(seeded):
    Hospital.objects.filter(code="HPPH").update(ed_status="diverting", ed_free_beds=0)
    seed("--password", PASSWORD)
    hpph = Hospital.objects.get(code="HPPH")
    assert (hpph.ed_status, hpph.ed_free_beds) == ("diverting", 0)


def test_it_puts_back_a_demo_hospital_someone_moved(seeded):
    Hospital.objects.filter(code="HPPH").update(lat=0.0, lon=0.0)
    seed("--password", PASSWORD)
    assert (Hospital.objects.get(code="HPPH").lat, Hospital.objects.get(code="HPPH").lon) == ZHENGZHOU_HOSPITALS["HPPH"]


@pytest.mark.django_db
def test_it_refuses_a_password_too_short_to_be_one():
    with pytest.raises(SystemExit) as exit_info:
        seed("--password", "short")
    assert exit_info.value.code != 0
    assert not User.objects.exists()


def test_it_gives_the_demo_citizen_an_archive_shared_with_120_once(seeded):
    from health_records.models import Archive, ArchiveVersion

    citizen = User.objects.get(username="13800138000")
    client = APIClient()
    client.force_authenticate(citizen)
    archive = client.get("/api/v1/me/health-archive").json()
    assert archive["consent_share_with_120"] is True and archive["blood_type"]["abo"]
    seed()
    assert Archive.objects.filter(owner=citizen).count() == 1
    assert ArchiveVersion.objects.filter(archive__owner=citizen).count() <= 1
    assert client.get("/api/v1/me/health-archive").json()["version"] == archive["version"]


def test_it_opens_every_demo_hospital_with_plausible_free_beds(seeded):
    beds = dict(Hospital.objects.values_list("code", "ed_free_beds"))
    assert all(1 <= n <= 30 for n in beds.values()), beds
    # The largest tertiary campus has more room than a district hospital.
    assert beds["FAHZU-HY"] > beds["HUIJI"]


def test_it_puts_the_demo_beds_back_only_when_asked(seeded):
    Hospital.objects.filter(code="HPPH").update(ed_status="diverting", ed_free_beds=0)
    seed("--password", PASSWORD)
    assert Hospital.objects.get(code="HPPH").ed_free_beds == 0
    seed("--password", PASSWORD, "--reset-ed-status")
    hpph = Hospital.objects.get(code="HPPH")
    assert (hpph.ed_status, hpph.ed_free_beds) == ("open", 10)
    before = dump()
    assert "0 row(s) changed" in seed("--password", PASSWORD, "--reset-ed-status")
    assert dump() == before
