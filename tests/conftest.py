"""The shared cast: a citizen and another citizen, a dispatcher, a crew and another unit's crew, a
hospital and another hospital, so that permission tests read as sentences."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import Role
from dispatch.models import Ambulance, CrewMember, Hospital, HospitalStaff, Station
from tests.support.cast import IN_CI, api_client, make_user

# The browser fixtures (browser, page, site, viewport, ...) for every module that asks for them.
pytest_plugins = ["tests.support.browser"]


def pytest_report_header(config):
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    layer = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[-1]
    return f"onekey120: database={engine} channel_layer={layer} CI={IN_CI}"


@pytest.fixture(autouse=True)
def _fast_and_isolated(settings):
    # A strong password hash costs ~0.3 s; tests make hundreds of users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # WhiteNoise scans every static file each time a test client starts (~40 ms).
    settings.WHITENOISE_USE_FINDERS = False
    # Throttle counters live in the cache; each test starts with none (and never flushes Redis).
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "tests"}}
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture
def station(db):
    return Station.objects.create(code="JS-1", name_zh="金水区急救站", name_en="Jinshui", district="金水区", lat=34.785, lon=113.70)


@pytest.fixture
def ambulance(station):
    return Ambulance.objects.create(call_sign="ZZ120-T-1", station=station, lat=34.786, lon=113.701)


@pytest.fixture
def other_ambulance(station):
    return Ambulance.objects.create(call_sign="ZZ120-T-2", station=station, lat=34.70, lon=113.60)


@pytest.fixture
def hospital(db):
    return Hospital.objects.create(
        code="HPPH", name_zh="河南省人民医院", name_en="Henan Provincial People's Hospital",
        lat=34.7725, lon=113.6935, capabilities=["chest_pain", "pci", "stroke"], ed_free_beds=5,
    )


@pytest.fixture
def other_hospital(db):
    return Hospital.objects.create(
        code="ZZCH", name_zh="郑州市中心医院", name_en="Zhengzhou Central Hospital",
        lat=34.7540, lon=113.6100, capabilities=["trauma", "general_ed"], ed_free_beds=2,
    )


@pytest.fixture
def citizen(db):
    return make_user("13800000001", Role.CITIZEN, phone="13800000001")


@pytest.fixture
def other_citizen(db):
    return make_user("13800000002", Role.CITIZEN, phone="13800000002")


@pytest.fixture
def dispatcher(db):
    return make_user("dispatcher1", Role.DISPATCHER)


@pytest.fixture
def crew(ambulance):
    user = make_user("crew-t1", Role.CREW)
    CrewMember.objects.create(user=user, ambulance=ambulance)
    return user


@pytest.fixture
def other_crew(other_ambulance):
    user = make_user("crew-t2", Role.CREW)
    CrewMember.objects.create(user=user, ambulance=other_ambulance)
    return user


@pytest.fixture
def hospital_user(hospital):
    user = make_user("hpph-ed", Role.HOSPITAL)
    HospitalStaff.objects.create(user=user, hospital=hospital)
    return user


@pytest.fixture
def other_hospital_user(other_hospital):
    user = make_user("zzch-ed", Role.HOSPITAL)
    HospitalStaff.objects.create(user=user, hospital=other_hospital)
    return user


@pytest.fixture
def as_citizen(citizen):
    return api_client(citizen)


@pytest.fixture
def as_other_citizen(other_citizen):
    return api_client(other_citizen)


@pytest.fixture
def as_dispatcher(dispatcher):
    return api_client(dispatcher)


@pytest.fixture
def as_crew(crew):
    return api_client(crew)


@pytest.fixture
def as_other_crew(other_crew):
    return api_client(other_crew)


@pytest.fixture
def as_hospital(hospital_user):
    return api_client(hospital_user)


@pytest.fixture
def as_other_hospital(other_hospital_user):
    return api_client(other_hospital_user)


@pytest.fixture
def anonymous():
    return APIClient()


@pytest.fixture
def keyring_env(monkeypatch):
    from health_records import keys

    """Change the keys for one test; the process keyring is reloaded afterwards."""

    def use(**values):
        for name, value in values.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        keys.reset_keyring()

    yield use
    keys.reset_keyring()


def pytest_configure(config):
    # Under pytest-xdist the browser tests run in the workers: give them all one screenshot
    # directory, made here before they start, so that the summary below can name it.
    import os
    import tempfile

    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput") and not os.environ.get("SCREENSHOT_DIR"):
        os.environ["SCREENSHOT_DIR"] = config._onekey120_screenshots = tempfile.mkdtemp(prefix="onekey120-screenshots-")


def pytest_terminal_summary(terminalreporter, config):
    # Where the browser tests left their screenshots (README: Screenshots), when any were taken.
    import sys
    from pathlib import Path

    browser = sys.modules.get("tests.support.browser")
    directory = getattr(browser, "_screenshot_dir", None) if browser else None
    shared = getattr(config, "_onekey120_screenshots", None)
    if directory is None and shared is not None and any(Path(shared).iterdir()):
        directory = shared
    if directory is not None:
        terminalreporter.write_line(f"onekey120: console screenshots in {directory}")


@pytest.fixture
def supervisor(db):
    """A shift supervisor: a dispatcher who may also declare surge and update units in bulk."""
    user = make_user("supervisor1", Role.DISPATCHER)
    user.supervisor = True
    user.save(update_fields=["supervisor"])
    return user


@pytest.fixture
def as_supervisor(supervisor):
    return api_client(supervisor)
