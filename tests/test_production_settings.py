"""Production defaults (issue 6, item 12): with DEBUG=0 and only the required variables set, the
deployment checklist passes; secure values are the defaults and HTTPS=0 is the one opt-out; every
page carries a Content-Security-Policy without inline script, and the pages work under it (the
browser half is in tests/test_console_browser.py)."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parent.parent

# The variables a production start requires. Key material is taken from the test process (tests/
# settings.py sets throwaway values for every key the apps require: HEALTH_*, ACCESS_LOG_*), so a
# newly required key only needs its test value there.
_REQUIRED_PREFIXES = ("HEALTH_", "ACCESS_LOG_")


def production_env(**overrides: str) -> dict[str, str]:
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR", "SYSTEMROOT") if key in os.environ}
    env.update({key: value for key, value in os.environ.items() if key.startswith(_REQUIRED_PREFIXES)})
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings", "SECRET_KEY": secrets.token_urlsafe(50), "DEBUG": "0"})
    env.update(overrides)
    return env


def run_python(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)


_SHOW_SETTINGS = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({k: getattr(s, k, None) for k in ("
    "'SECURE_SSL_REDIRECT', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', 'SECURE_HSTS_SECONDS', "
    "'SECURE_HSTS_INCLUDE_SUBDOMAINS', 'SECURE_PROXY_SSL_HEADER', 'X_FRAME_OPTIONS', 'SECURE_REFERRER_POLICY', "
    "'LOG_FORMAT')}))"
)


def shown_settings(**overrides: str) -> dict:
    result = run_python(production_env(**overrides), "-c", _SHOW_SETTINGS)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_it_passes_the_deployment_checklist_with_only_the_required_variables():
    result = run_python(production_env(), "manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]


def test_it_is_secure_by_default_with_debug_off():
    shown = shown_settings()
    assert shown["SECURE_SSL_REDIRECT"] is True
    assert shown["SESSION_COOKIE_SECURE"] is True and shown["CSRF_COOKIE_SECURE"] is True
    assert shown["SECURE_HSTS_SECONDS"] >= 31536000 and shown["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert shown["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert shown["X_FRAME_OPTIONS"] == "DENY"
    assert shown["SECURE_REFERRER_POLICY"] == "same-origin"
    assert shown["LOG_FORMAT"] == "json"


def test_https_0_turns_off_the_redirect_the_secure_cookies_and_hsts():
    shown = shown_settings(HTTPS="0")
    assert shown["SECURE_SSL_REDIRECT"] is False
    assert shown["SESSION_COOKIE_SECURE"] is False and shown["CSRF_COOKIE_SECURE"] is False
    assert shown["SECURE_HSTS_SECONDS"] == 0
    assert shown["SECURE_PROXY_SSL_HEADER"] is None
    # Opting out of HTTPS keeps the rest: framing and referrer rules do not depend on TLS.
    assert shown["X_FRAME_OPTIONS"] == "DENY"


def test_it_refuses_a_log_format_it_does_not_know():
    result = run_python(production_env(LOG_FORMAT="xml"), "-c", "import django; django.setup()")
    assert result.returncode != 0
    assert "LOG_FORMAT" in result.stderr


def _csp(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.request['PATH_INFO']}"
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def _assert_strict(policy: dict[str, list[str]]) -> None:
    assert policy["script-src"] == ["'self'"]
    assert "'unsafe-inline'" not in policy.get("style-src", []) and "'unsafe-eval'" not in policy["script-src"]
    assert policy["frame-ancestors"] == ["'none'"] and policy["object-src"] == ["'none'"]


def _inline_scripts(html: str) -> list[str]:
    """<script> elements that carry code in the page: neither src= nor a JSON data island."""
    found = []
    for attrs, body in re.findall(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.S | re.I):
        if "src=" in attrs or 'type="application/json"' in attrs:
            continue
        if body.strip():
            found.append(body.strip()[:80])
    return found


def test_the_dispatcher_console_carries_a_strict_csp_and_no_inline_script(dispatcher):
    client = Client()
    client.force_login(dispatcher)
    response = client.get("/console/dispatch/")
    assert response.status_code == 200
    _assert_strict(_csp(response))
    assert response.headers["X-Frame-Options"] == "DENY"
    assert _inline_scripts(response.content.decode()) == []


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/", "/api/docs/"])
def test_the_login_admin_and_docs_pages_carry_the_csp_and_no_inline_script(db, path):
    response = Client().get(path)
    assert response.status_code == 200, path
    _assert_strict(_csp(response))
    html = response.content.decode()
    assert _inline_scripts(html) == [], path
    assert "<style" not in html, f"{path} has an inline <style> the CSP blocks"


def test_the_docs_start_up_script_is_served_as_a_file(db):
    page = Client().get("/api/docs/").content.decode()
    script_src = re.search(r'<script src="([^"]*script=[^"]*)"', page)
    assert script_src, page[-800:]
    response = Client().get(script_src.group(1).replace("&amp;", "&"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in response.content.decode()


@pytest.mark.parametrize("path", ["/admin/", "/admin/accounts/user/", "/admin/accounts/user/{id}/change/", "/admin/accounts/user/add/"])
def test_the_admin_pages_an_operator_uses_have_no_inline_script(db, path):
    from tests.support.cast import make_user

    operator = make_user("ops-csp", "admin")
    operator.is_staff = operator.is_superuser = True
    operator.save()
    client = Client()
    client.force_login(operator)
    response = client.get(path.format(id=operator.pk))
    assert response.status_code == 200, path
    _assert_strict(_csp(response))
    assert _inline_scripts(response.content.decode()) == [], path
