"""One language per page (en or zh-Hans), through Django's i18n.

The catalogs are kept as .po and committed compiled (.mo), because a fresh machine running
`make run` has Python but no msgfmt: these tests fail when the two disagree, when a string on a
page (template or script) has no Chinese, and when a page still shows both languages side by side.
"""

from __future__ import annotations

import ast
import gettext
import json
import re
from pathlib import Path

import pytest
from django.utils.translation.template import templatize

from accounts.models import Role
from tests.support.cast import make_user

ROOT = Path(__file__).resolve().parent.parent
# Our apps (a directory with apps.py); each keeps its own catalogs in <app>/locale/zh_Hans/LC_MESSAGES.
OUR_APPS = sorted(p.parent.name for p in ROOT.glob("*/apps.py"))
CJK = re.compile(r"[\u3000-\u9fff\uff00-\uffef]")
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


# --- reading the catalogs and the sources (stdlib only) -----------------------------------------


def parse_po(path: Path) -> dict[str, str]:
    """msgid (or "singular\\x00plural") -> msgstr (plural forms joined by \\x00); fuzzy entries left out,
    as msgfmt leaves them out."""
    entries: dict[str, str] = {}
    current: dict[str, str] = {}
    field = None
    fuzzy = False

    def flush():
        nonlocal current, fuzzy
        if "msgid" in current and not fuzzy:
            key = current["msgid"]
            if "msgid_plural" in current:
                key += "\x00" + current["msgid_plural"]
                forms = sorted(k for k in current if k.startswith("msgstr["))
                value = "\x00".join(current[k] for k in forms)
            else:
                value = current.get("msgstr", "")
            if "msgctxt" in current:
                key = current["msgctxt"] + "\x04" + key
            entries[key] = value
        current, fuzzy = {}, False

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            flush()
            field = None
            continue
        if line.startswith("#,") and "fuzzy" in line:
            fuzzy = True
            continue
        if line.startswith("#"):
            continue
        if line.startswith('"'):
            current[field] += ast.literal_eval(line)
            continue
        keyword, _, rest = line.partition(" ")
        if keyword in ("msgid", "msgctxt") and any(k.startswith("msgstr") for k in current):
            flush()
        field = keyword
        current[field] = ast.literal_eval(rest)
    flush()
    entries.pop("", None)  # the header
    return entries


def read_mo(path: Path) -> dict[str, str]:
    with path.open("rb") as fp:
        catalog = gettext.GNUTranslations(fp)._catalog
    merged: dict[str, str] = {}
    plurals: dict[str, dict[int, str]] = {}
    for key, value in catalog.items():
        if isinstance(key, tuple):
            plurals.setdefault(key[0], {})[key[1]] = value
        elif key:
            merged[key] = value
    # GNUTranslations keys plural entries by the singular; the .po key carries the plural too.
    return merged, plurals


def catalog_path(app: str, domain: str) -> Path:
    return ROOT / app / "locale" / "zh_Hans" / "LC_MESSAGES" / f"{domain}.po"


def app_of(path: Path) -> str:
    """Whose catalog holds a page's strings: the app the file lives in, or templates/<app>/ its app;
    the citizen app's page is mobile_api's, the shared frame and sign-in accounts', the rest dispatch's."""
    parts = path.relative_to(ROOT).parts
    if parts[0] == "templates":
        if parts[1] == "app":
            return "mobile_api"
        if parts[1] in ("base.html", "registration"):
            return "accounts"
        return parts[1] if parts[1] in OUR_APPS else "dispatch"
    return parts[0]


def template_files() -> list[Path]:
    return sorted(p for p in (ROOT / "templates").rglob("*.html") if "drf_spectacular" not in p.parts and "admin" not in p.parts)


def script_files() -> list[Path]:
    found = []
    for app in OUR_APPS:
        found += [p for p in (ROOT / app / "static").rglob("*.js") if "vendor" not in p.parts]
    return sorted(found)


_TEMPLATE_CALL = re.compile(r"""\bn?gettext\((u?(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"))""")


def template_msgids(path: Path) -> set[str]:
    """Django's own reading of {% translate %} / {% blocktranslate %} (what makemessages runs)."""
    return {ast.literal_eval(literal) for literal in _TEMPLATE_CALL.findall(templatize(path.read_text(encoding="utf-8")))}


_JS_STRING = r'"((?:[^"\\\n]|\\.)*)"'
_JS_CALL = re.compile(r"\b(?:t|tf)\(\s*" + _JS_STRING)
_JS_PLURAL = re.compile(r"\btn\(\s*" + _JS_STRING + r",\s*" + _JS_STRING)


def script_msgids(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    found = {json.loads(f'"{m}"') for m in _JS_CALL.findall(text)}
    found |= {json.loads(f'"{a}"') + "\x00" + json.loads(f'"{b}"') for a, b in _JS_PLURAL.findall(text)}
    return found


def wanted() -> dict[tuple[str, str], set[str]]:
    """(app, domain) -> the msgids its pages use."""
    out: dict[tuple[str, str], set[str]] = {}
    for path in template_files():
        out.setdefault((app_of(path), "django"), set()).update(template_msgids(path))
    for path in script_files():
        if path.name == "i18n.js":
            continue  # its doc comment shows the calls, it has no strings of its own
        out.setdefault((app_of(path), "djangojs"), set()).update(script_msgids(path))
    return out


# --- the catalogs ------------------------------------------------------------------------------------


def test_it_finds_strings_to_translate_in_the_pages():
    found = wanted()
    assert "Dispatch console" in found[("dispatch", "django")]
    assert "Assign" in found[("dispatch", "djangojs")]
    assert "Sign in" in found[("accounts", "django")]
    assert any("\x00" in m for m in found[("dispatch", "djangojs")]), "tn() plurals are found too"


@pytest.mark.parametrize("app,domain", [(a, d) for a in OUR_APPS for d in ("django", "djangojs")])
def test_it_ships_a_compiled_catalog_equal_to_its_po(app, domain):
    po = catalog_path(app, domain)
    if not po.exists():
        assert (app, domain) not in wanted(), f"{po} is missing"
        return
    mo = po.with_suffix(".mo")
    assert mo.exists(), f"{mo} is missing: run `manage.py compilemessages -l zh_Hans -i .venv` and commit it"
    entries = parse_po(po)
    singles, plurals = read_mo(mo)
    expected_singles = {k: v for k, v in entries.items() if "\x00" not in k and v}
    expected_plurals = {k.split("\x00")[0]: v.split("\x00") for k, v in entries.items() if "\x00" in k and v.strip("\x00")}
    assert singles == expected_singles, f"{mo.name} is stale: recompile {po}"
    assert {k: [forms[i] for i in sorted(forms)] for k, forms in plurals.items()} == expected_plurals, f"{mo.name} is stale"


@pytest.mark.parametrize("app,domain", [(a, d) for a in OUR_APPS for d in ("django", "djangojs")])
def test_it_translates_every_string_its_pages_use(app, domain):
    needed = wanted().get((app, domain), set())
    po = catalog_path(app, domain)
    have = parse_po(po) if po.exists() else {}
    missing = sorted(m.replace("\x00", " | ") for m in needed if not have.get(m, "").strip("\x00"))
    assert not missing, f"{po.relative_to(ROOT)} lacks Chinese for: {missing}"


@pytest.mark.parametrize("app,domain", [(a, d) for a in OUR_APPS for d in ("django", "djangojs")])
def test_it_keeps_the_placeholders_of_every_message(app, domain):
    po = catalog_path(app, domain)
    if not po.exists():
        return
    for msgid, msgstr in parse_po(po).items():
        # Chinese has one plural form: it carries the plural msgid's placeholders.
        source = set(PLACEHOLDER.findall(msgid.split("\x00")[-1]))
        for form in msgstr.split("\x00"):
            assert set(PLACEHOLDER.findall(form)) == source, (msgid, form)
        assert CJK.search(msgstr), f"{msgid!r} in {po.name} is not translated into Chinese"


def test_it_shows_no_page_text_in_both_languages_side_by_side():
    offenders = []
    for path in template_files() + script_files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("//")[0] if path.suffix == ".js" else re.sub(r"\{#.*?#\}", "", line)
            if code.lstrip().startswith(("*", "/*")):
                continue
            # The switcher names each language in itself, on purpose.
            if 'lang="zh-CN"' in code or (CJK.search(code) and ">中文</button>" not in code):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert not offenders, "bilingual text left in the pages:\n" + "\n".join(offenders)


# --- Django choosing the language -------------------------------------------------------------------


@pytest.mark.django_db
def test_it_answers_in_the_browsers_language_when_no_choice_was_made(client):
    chinese = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9").content.decode()
    assert '<html lang="zh-Hans">' in chinese and "用户名或手机号" in chinese and "Username or phone" not in chinese
    english = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="en-US").content.decode()
    assert '<html lang="en">' in english and "Username or phone" in english and "用户名或手机号" not in english


@pytest.mark.django_db
def test_it_follows_the_switcher_over_the_browsers_language(client):
    answer = client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/accounts/login/"}, HTTP_ACCEPT_LANGUAGE="en")
    assert answer.status_code == 302 and answer["Location"] == "/accounts/login/"
    page = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "登录" in page and "Sign in" not in page.split("<main", 1)[1]
    client.post("/i18n/setlang/", {"language": "en", "next": "/accounts/login/"})
    assert "Username or phone" in client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()


@pytest.mark.django_db
def test_it_serves_the_script_catalog_in_the_pages_language(client):
    chinese = client.get("/i18n/catalog.js", HTTP_ACCEPT_LANGUAGE="zh-CN")
    assert chinese.status_code == 200 and "javascript" in chinese["Content-Type"]
    body = chinese.content.decode("utf-8")
    assert "\\u6d3e\\u8f66" in body or "派车" in body, "Assign → 派车 is in the catalog"
    english = client.get("/i18n/catalog.js", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "\\u6d3e\\u8f66" not in english and "派车" not in english


@pytest.mark.django_db
@pytest.mark.parametrize(
    "role,path,english,chinese",
    [
        (Role.DISPATCHER, "/console/dispatch/", "Active cases", "进行中的病例"),
        (Role.CREW, "/console/crew/", "No ambulance yet", "尚未绑定车辆"),
    ],
)
def test_it_renders_each_console_in_one_language(client, role, path, english, chinese):
    user = make_user(f"i18n-{role}", role)
    client.force_login(user)
    zh = client.get(path, HTTP_ACCEPT_LANGUAGE="zh-Hans").content.decode()
    en = client.get(path, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert chinese in zh and english not in zh
    assert english in en and chinese not in en
    assert '<script src="/i18n/catalog.js"></script>' in zh, "the catalog loads before the modules"


@pytest.mark.django_db
def test_it_shows_the_hospital_refusal_in_the_pages_language(client):
    client.force_login(make_user("i18n-citizen", Role.CITIZEN))
    zh = client.get("/console/hospital/", HTTP_ACCEPT_LANGUAGE="zh-Hans").content.decode()
    en = client.get("/console/hospital/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Not allowed" in en and "Not allowed" not in zh
