"""The OpenAPI 3 schema at /api/schema/ describes every endpoint of the wire contract (DESIGN.md),
with its request body; the browsable docs at /api/docs/ serve."""

from __future__ import annotations

import io

import pytest
import yaml
from django.core.management import call_command
from drf_spectacular.validation import validate_schema

# The wire contract of DESIGN.md: path -> methods.
CONTRACT = {
    "/api/v1/auth/register": {"post"},
    "/api/v1/auth/token": {"post"},
    "/api/v1/me": {"get"},
    "/api/v1/me/health-archive": {"get", "put"},
    "/api/v1/me/health-archive/access-log": {"get"},
    "/api/v1/sos": {"post"},
    "/api/v1/cases/{case_id}": {"get"},
    "/api/v1/cases/{case_id}/location": {"post"},
    "/api/v1/cases/{case_id}/cancel": {"post"},
    "/api/v1/dispatch/cases": {"get"},
    "/api/v1/dispatch/cases/{case_id}": {"get"},
    "/api/v1/dispatch/cases/{case_id}/recommendations": {"get"},
    "/api/v1/dispatch/cases/{case_id}/assign": {"post"},
    "/api/v1/ambulances": {"get"},
    "/api/v1/ambulances/{ambulance_id}": {"get"},
    "/api/v1/ambulances/{ambulance_id}/assignment": {"get"},
    "/api/v1/ambulances/{ambulance_id}/status": {"post"},
    "/api/v1/ambulances/{ambulance_id}/location": {"post"},
    "/api/v1/hospitals": {"get"},
    "/api/v1/hospitals/{hospital_id}/admissions": {"get"},
    "/api/v1/admissions/{admission_id}/acknowledge": {"post"},
}
# Request bodies the contract names: (path, method) -> fields, and which of them are required.
BODIES = {
    ("/api/v1/auth/register", "post"): ({"phone", "password", "name"}, {"phone", "password", "name"}),
    ("/api/v1/auth/token", "post"): ({"username", "password"}, {"username", "password"}),
    ("/api/v1/sos", "post"): ({"lat", "lon", "accuracy_m", "crs", "for_self", "complaint", "note"}, {"lat", "lon"}),
    ("/api/v1/cases/{case_id}/location", "post"): (
        {"lat", "lon", "accuracy_m", "crs", "altitude_m", "floor", "source", "fix_time"},
        {"lat", "lon"},
    ),
    ("/api/v1/cases/{case_id}/cancel", "post"): ({"reason"}, set()),
    ("/api/v1/dispatch/cases/{case_id}/assign", "post"): ({"ambulance"}, {"ambulance"}),
    ("/api/v1/ambulances/{ambulance_id}/status", "post"): ({"status", "hospital"}, {"status"}),
    ("/api/v1/ambulances/{ambulance_id}/location", "post"): ({"lat", "lon", "crs", "accuracy_m"}, {"lat", "lon"}),
    ("/api/v1/admissions/{admission_id}/acknowledge", "post"): ({"registration_no"}, {"registration_no"}),
    ("/api/v1/me/health-archive", "put"): (set(), set()),
}


@pytest.fixture(scope="module")
def schema(django_db_setup, django_db_blocker) -> dict:
    from rest_framework.test import APIClient

    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema/?format=json")
    assert response.status_code == 200, response.content[:500]
    return response.json()


def resolve(schema: dict, node: dict) -> dict:
    while True:
        if "$ref" in node:
            node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
        elif len(node.get("allOf", [])) == 1:  # how a field with a default points at its enum
            node = node["allOf"][0]
        else:
            return node


def body_schema(schema: dict, path: str, method: str) -> dict:
    operation = schema["paths"][path][method]
    assert "requestBody" in operation, f"{method.upper()} {path} documents no request body"
    content = operation["requestBody"]["content"]
    assert "application/json" in content, content.keys()
    return resolve(schema, content["application/json"]["schema"])


def response_schema(schema: dict, path: str, method: str = "get", status: str = "200") -> dict:
    node = resolve(schema, schema["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"])
    if node.get("type") == "array":
        node = resolve(schema, node["items"])
    return node


def test_it_serves_a_valid_openapi_3_document(schema):
    assert schema["openapi"].startswith("3.")
    assert schema["info"]["title"] == "One-key 120 API"
    validate_schema(schema)  # raises on anything the OpenAPI 3 JSON schema refuses


def test_it_serves_the_schema_as_yaml_by_default(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    assert yaml.safe_load(response.content)["openapi"].startswith("3.")


@pytest.mark.parametrize("path", sorted(CONTRACT))
def test_it_lists_every_endpoint_of_the_wire_contract(schema, path):
    assert path in schema["paths"], sorted(schema["paths"])
    methods = {m for m in schema["paths"][path] if m in {"get", "post", "put", "patch", "delete"}}
    assert CONTRACT[path] <= methods, (path, methods)


def test_it_lists_nothing_outside_the_api(schema):
    assert all(path.startswith("/api/v1/") for path in schema["paths"])


@pytest.mark.parametrize("path, method", sorted(BODIES), ids=[f"{m}:{p}" for p, m in sorted(BODIES)])
def test_it_documents_each_request_body_with_its_fields(schema, path, method):
    body = body_schema(schema, path, method)
    fields, required = BODIES[(path, method)]
    properties = set(body.get("properties", {}))
    assert fields <= properties, (path, properties)
    assert required <= set(body.get("required", [])), (path, body.get("required"))


def test_it_documents_the_crs_choices_and_coordinate_ranges(schema):
    sos = body_schema(schema, "/api/v1/sos", "post")
    crs = resolve(schema, sos["properties"]["crs"])
    assert set(crs["enum"]) == {"wgs84", "gcj02", "bd09"}
    lat = sos["properties"]["lat"]
    assert (lat["minimum"], lat["maximum"]) == (-90, 90)
    assert (sos["properties"]["lon"]["minimum"], sos["properties"]["lon"]["maximum"]) == (-180, 180)


def test_it_documents_the_idempotency_key_header_and_the_refusals_of_a_tap(schema):
    operation = schema["paths"]["/api/v1/sos"]["post"]
    headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
    assert "Idempotency-Key" in headers
    assert {"201", "400", "422", "429"} <= set(operation["responses"])


def test_it_documents_the_crew_status_choices(schema):
    status = resolve(schema, body_schema(schema, "/api/v1/ambulances/{ambulance_id}/status", "post")["properties"]["status"])
    assert {"en_route", "on_scene", "transporting", "at_hospital", "handed_over", "available", "out_of_service"} == set(status["enum"])


@pytest.mark.parametrize(
    "path, fields",
    [
        ("/api/v1/me", {"role", "ambulance", "hospital"}),
        ("/api/v1/ambulances", {"call_sign", "status", "lat", "lon"}),
        ("/api/v1/ambulances/{ambulance_id}", {"call_sign"}),
        ("/api/v1/hospitals", {"code", "name_zh", "name_en", "capabilities", "ed_status"}),
        ("/api/v1/dispatch/cases/{case_id}/recommendations", {"ambulance", "distance_m", "eta_s"}),
        ("/api/v1/dispatch/cases", {"last_seq", "results"}),
        ("/api/v1/dispatch/cases/{case_id}", {"status", "notified_at", "admission"}),
        ("/api/v1/cases/{case_id}", {"status", "ambulance", "eta_s", "hospital"}),
        ("/api/v1/ambulances/{ambulance_id}/assignment", {"case", "admission", "suggested_hospitals"}),
        ("/api/v1/hospitals/{hospital_id}/admissions", {"last_seq", "results"}),
    ],
)
def test_it_documents_what_each_read_returns(schema, path, fields):
    assert fields <= set(response_schema(schema, path).get("properties", {}))


def test_it_documents_token_authentication(schema):
    schemes = schema["components"]["securitySchemes"]
    token = next(s for s in schemes.values() if s.get("type") == "apiKey" and s.get("in") == "header")
    assert token["name"] == "Authorization"
    me = schema["paths"]["/api/v1/me"]["get"]
    assert any(name in req for req in me["security"] for name in schemes)


@pytest.mark.django_db
def test_it_generates_the_schema_without_a_single_warning():
    # Warnings are how drf-spectacular says an endpoint is described wrongly or not at all.
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=io.StringIO(), stderr=io.StringIO())


@pytest.mark.django_db
def test_it_serves_the_browsable_docs(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html.lower()
    assert "/api/schema/" in html


def test_it_documents_the_priority_basis_beside_the_reason(schema):
    case = response_schema(schema, "/api/v1/dispatch/cases/{case_id}")["properties"]
    assert {"priority_reason", "priority_basis"} <= set(case)
    basis = case["priority_basis"]
    assert basis.get("description") and basis.get("nullable") is True
    shape = resolve(schema, basis if "$ref" in basis else basis.get("allOf", [basis])[0])
    kinds = resolve(schema, shape["properties"]["kind"])
    assert set(kinds["enum"]) == {"complaint", "answers", "archive", "dispatcher"}
    assert {"priority", "complaint", "answers", "by"} <= set(shape["properties"])


def test_it_documents_what_a_merged_caller_sees_of_the_help_coming(schema):
    case = response_schema(schema, "/api/v1/cases/{case_id}")["properties"]
    help_coming = case["help_coming"]
    assert help_coming.get("description") and help_coming.get("nullable") is True
    shape = resolve(schema, help_coming if "$ref" in help_coming else help_coming.get("allOf", [help_coming])[0])
    assert set(shape["properties"]) == {"status", "call_sign", "eta_s"}
    assert set(resolve(schema, shape["properties"]["status"])["enum"]) == {
        "waiting", "dispatched", "en_route", "on_scene", "left_scene", "cancelled",
    }
