"""The shape of the code holds: imports run one way (mobile_api -> dispatch -> health_records, with
accounts and config underneath), every app's refusals are one error hierarchy answered by one
exception handler, and the checks that exist once stay once (citizen, dispatcher, phone number)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from rest_framework.exceptions import ValidationError

from config.api import exception_handler
from config.errors import ApplicationError
from config.phones import normalize_mobile, strip_mobile_prefix
from dispatch import errors as dispatch_errors
from dispatch import messages
from health_records import services as health_records

ROOT = Path(__file__).resolve().parent.parent
APPS = ("accounts", "config", "dispatch", "health_records", "mobile_api", "reports")

# config is what every app may import (errors, phones, client_ip, ...), so it reaches back into
# the apps only where it wires them together: routing, settings, and the metrics it counts.
CONFIG_WIRING = {"config/urls.py", "config/asgi.py", "config/settings.py", "config/metrics.py"}

# (importing package, imported package) -> the only files allowed to cross.
FORBIDDEN = {
    # Only the URL and ASGI routing name the citizen API.
    ("config", "mobile_api"): {"config/urls.py", "config/asgi.py"},
    ("config", "dispatch"): CONFIG_WIRING,
    ("config", "health_records"): CONFIG_WIRING,
    ("config", "accounts"): CONFIG_WIRING,
    ("config", "reports"): CONFIG_WIRING,
    ("dispatch", "mobile_api"): set(),
    # reports reads dispatch (response intervals live in dispatch.intervals, used by the replay too).
    ("dispatch", "reports"): set(),
    ("health_records", "dispatch"): set(),
    ("health_records", "mobile_api"): set(),
    # health_records has its own roles (GrantRole); dispatch maps accounts onto them.
    ("health_records", "accounts"): set(),
    ("accounts", "dispatch"): set(),
    ("accounts", "health_records"): set(),
    ("accounts", "mobile_api"): set(),
}


def imported_packages(source: str) -> set[str]:
    """Top-level packages a module imports, wherever the import stands (function bodies too)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def crossings() -> list[str]:
    bad = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if "/migrations/" in relative:
                continue
            for target in imported_packages(path.read_text(encoding="utf-8")):
                allowed = FORBIDDEN.get((app, target))
                if allowed is not None and relative not in allowed:
                    bad.append(f"{relative} imports {target}")
    return bad


def test_it_finds_an_import_wherever_it_stands():
    source = "import os\nfrom dispatch.models import Case\n\ndef late():\n    from mobile_api import views\n    import health_records.services\n"
    assert imported_packages(source) == {"os", "dispatch", "mobile_api", "health_records"}
    assert imported_packages("from . import sibling\n") == set()


def test_it_keeps_every_import_running_one_way():
    assert crossings() == []


def test_it_keeps_the_role_strings_of_accounts_out_of_health_records():
    # Grant roles are health_records' own; which accounts fill them is settings.HEALTH_GRANT_ROLES_OF.
    for path in (ROOT / "health_records").rglob("*.py"):
        assert '"admin"' not in path.read_text(encoding="utf-8"), path


# --- one error hierarchy, one handler --------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [dispatch_errors.DispatchError, messages.RateLimited, health_records.HealthRecordsError, health_records.InvalidGrant],
)
def test_it_roots_every_apps_errors_in_one_class(error):
    assert issubclass(error, ApplicationError)


@pytest.mark.parametrize(
    ("error", "status", "body"),
    [
        (dispatch_errors.Conflict("Already assigned."), 409, {"detail": "Already assigned.", "code": "conflict"}),
        (dispatch_errors.NotFound("No case.", code="no_case"), 404, {"detail": "No case.", "code": "no_case"}),
        (dispatch_errors.InvalidField("ambulance", "Out of service."), 400, {"ambulance": ["Out of service."], "code": "invalid"}),
        (dispatch_errors.IdempotencyKeyReused("Other body."), 422, {"detail": "Other body.", "code": "idempotency_key_reused"}),
        (dispatch_errors.DispatchError("No."), 400, {"detail": "No.", "code": "dispatch_error"}),
        (health_records.ArchiveInvalid({"name": ["Required."]}), 400, {"name": ["Required."]}),
        (health_records.ArchiveConflict({"non_field_errors": ["Retry."]}), 409, {"non_field_errors": ["Retry."]}),
        (health_records.AccessDenied("No grant.", code="no_grant"), 403, {"detail": "No grant.", "code": "no_grant"}),
        (health_records.InvalidGrant("Bad.", code="role_mismatch"), 400, {"detail": "Bad.", "code": "role_mismatch"}),
    ],
)
def test_it_answers_each_refusal_from_its_class(error, status, body):
    response = exception_handler(error, {})
    assert (response.status_code, response.data) == (status, body)


def test_it_leaves_drf_errors_to_drf_with_their_code():
    response = exception_handler(ValidationError({"lat": ["Too far north."]}), {})
    assert (response.status_code, response.data) == (400, {"lat": ["Too far north."]})


def test_it_lets_anything_else_be_a_server_error():
    assert exception_handler(RuntimeError("bug"), {}) is None


# --- one check each --------------------------------------------------------------------------


@pytest.mark.django_db
def test_it_asks_the_account_who_is_a_dispatcher(citizen, dispatcher, crew, django_user_model):
    from django.contrib.auth.models import AnonymousUser

    from dispatch.permissions import health_grant_roles, is_dispatcher

    admin = django_user_model.objects.create_user(username="admin-shape", password="x", role="admin")
    for user in (citizen, dispatcher, crew, admin):
        assert is_dispatcher(user) is user.is_dispatcher
    assert is_dispatcher(AnonymousUser()) is False
    assert health_grant_roles(admin) == {"dispatcher"}
    assert health_grant_roles(crew) == {"crew"}
    assert health_grant_roles(citizen) == set()


def test_it_has_one_citizen_permission():
    from dispatch.permissions import IsCitizen
    from mobile_api.archive_views import HealthArchiveView

    assert all(issubclass(permission, IsCitizen) for permission in HealthArchiveView.permission_classes)


@pytest.mark.parametrize(
    ("raw", "mobile", "stripped"),
    [
        ("13800138000", "13800138000", "13800138000"),
        ("+86 138-0013-8000", "13800138000", "13800138000"),
        ("008613800138000", "13800138000", "13800138000"),
        ("8613800138000", "13800138000", "13800138000"),
        ("0371-66668888", None, "037166668888"),
        # Not a mobile after the prefix: refused, but the blind index still strips it as it always did.
        ("+8602345678901", None, "02345678901"),
        ("", None, ""),
    ],
)
def test_it_normalises_a_phone_number_one_way_everywhere(raw, mobile, stripped):
    from accounts.services import normalize_phone
    from dispatch.phones import normalize_caller_phone
    from health_records import blind_index

    assert normalize_mobile(raw) == normalize_phone(raw) == mobile
    assert strip_mobile_prefix(raw) == blind_index.normalize_phone(raw) == stripped
    if mobile:
        assert normalize_caller_phone(raw) == mobile
