"""Addresses: place names for coordinates and coordinates for typed places, behind geopy's Geocoder
interface so the provider is a setting (GEOCODER):

- ``offline`` (default): no network. Reverse = the district the point falls in (the served district
  GeoJSON, point in polygon) + the nearest well-known place (dispatch/data/zhengzhou_places.json:
  hospitals, stations, landmarks). Forward = name matching, Chinese or English, whole/prefix/substring,
  and a typed address that *contains* a known name ("金水区纬五路7号河南省人民医院") finds it too.
- ``nominatim:https://host[/path]``: a self-hosted Nominatim through geopy's Nominatim. If it fails
  the answer falls back to the offline one (logged): a dispatcher with a caller on the line gets a
  candidate rather than an error.

The case payload's ``address``/``district`` always come from the offline geocoder (``place_of``): it
is a pure function of the point, microseconds once cached, and never waits on a network inside a
write or a stream push.
"""

from __future__ import annotations

import json
import logging
import math
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from geopy.exc import GeopyError
from geopy.geocoders.base import Geocoder
from geopy.location import Location
from geopy.point import Point

from dispatch.geo import fast_distance_m, is_valid_point, point_in_polygon

logger = logging.getLogger(__name__)

_APP_DIR = Path(__file__).resolve().parent
DISTRICTS_FILE = _APP_DIR / "static" / "onekey" / "zhengzhou-districts.geojson"
PLACES_FILE = _APP_DIR / "data" / "zhengzhou_places.json"

# Beyond this the nearest known place says nothing useful about where the caller is.
NEAR_PLACE_MAX_M = 3000.0
# Cached reverse lookups are keyed by the point rounded to ~10 m: finer than the places we name.
CACHE_DECIMALS = 4
SEARCH_LIMIT = 8
_DISTRICT_SUFFIXES = ("回族区", "区", "县", "市")


@dataclass(frozen=True)
class District:
    code: str
    name_zh: str
    name_en: str
    polygons: tuple  # ((outer, hole, ...), ...) rings of (lon, lat)
    bbox: tuple  # (min_lon, min_lat, max_lon, max_lat)
    label_lat: float
    label_lon: float

    def contains(self, lat: float, lon: float) -> bool:
        min_lon, min_lat, max_lon, max_lat = self.bbox
        if not (min_lon <= lon <= max_lon and min_lat <= lat <= max_lat):
            return False
        for polygon in self.polygons:
            if point_in_polygon(lon, lat, polygon):
                return True
        return False


@dataclass(frozen=True)
class Place:
    name_zh: str
    name_en: str
    kind: str
    lat: float
    lon: float
    aliases: tuple = field(default=())


def _normalise(text: str) -> str:
    # NFKC folds full-width letters and digits (common in Chinese input methods) to ASCII.
    text = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"[\s()（）·,，.。'’\-_/]+", "", text)


class Gazetteer:
    """Zhengzhou's districts and well-known places, loaded once per process."""

    def __init__(self, districts: list[District], places: list[Place]):
        self.districts = districts
        self.places = places
        # Every new case names its nearest place (its address line): radians computed once here.
        self._place_radians = [(math.radians(place.lat), math.radians(place.lon)) for place in places]
        self._names = []  # (normalised name, entry) for forward search
        for place in places:
            for name in (place.name_zh, place.name_en, *place.aliases):
                if name:
                    self._names.append((_normalise(name), place))
        for district in districts:
            names = {district.name_zh, district.name_en}
            for suffix in _DISTRICT_SUFFIXES:
                if district.name_zh.endswith(suffix) and len(district.name_zh) > len(suffix) + 1:
                    names.add(district.name_zh[: -len(suffix)])
                    break
            if district.name_en.endswith(" District"):
                names.add(district.name_en[: -len(" District")])
            for name in names:
                if name:
                    self._names.append((_normalise(name), district))

    @classmethod
    def from_files(cls, districts_file: Path = DISTRICTS_FILE, places_file: Path = PLACES_FILE) -> Gazetteer:
        collection = json.loads(districts_file.read_text(encoding="utf-8"))
        districts = []
        for feature in collection["features"]:
            props = feature["properties"]
            if props.get("level") == "city":
                continue  # the city outline contains every district: it names nothing
            polygons = tuple(tuple(tuple(map(tuple, ring)) for ring in polygon) for polygon in feature["geometry"]["coordinates"])
            lons = [p[0] for polygon in polygons for p in polygon[0]]
            lats = [p[1] for polygon in polygons for p in polygon[0]]
            districts.append(
                District(
                    code=props["code"],
                    name_zh=props["name_zh"],
                    name_en=props.get("name_en", ""),
                    polygons=polygons,
                    bbox=(min(lons), min(lats), max(lons), max(lats)),
                    label_lat=props["label_lat"],
                    label_lon=props["label_lon"],
                )
            )
        data = json.loads(places_file.read_text(encoding="utf-8"))
        places = [
            Place(
                name_zh=item["name_zh"],
                name_en=item.get("name_en", ""),
                kind=item.get("kind", "place"),
                lat=float(item["lat"]),
                lon=float(item["lon"]),
                aliases=tuple(item.get("aliases", ())),
            )
            for item in data["places"]
        ]
        return cls(districts, places)

    def district_at(self, lat: float, lon: float) -> District | None:
        for district in self.districts:
            if district.contains(lat, lon):
                return district
        return None

    def nearest_place(self, lat: float, lon: float) -> tuple[Place, float] | None:
        """The place nearest by geo.fast_distance_m, and that distance. The places are compared by
        the square of the same equirectangular distance (in radians, the constant factor left out),
        one cosine each: this runs for every new case."""
        if not self.places:
            return None
        lat_r, lon_r, cos = math.radians(lat), math.radians(lon), math.cos
        squares = [
            ((place_lon - lon_r) * cos((lat_r + place_lat) / 2)) ** 2 + (place_lat - lat_r) ** 2
            for place_lat, place_lon in self._place_radians
        ]
        place = self.places[squares.index(min(squares))]
        return place, fast_distance_m(lat, lon, place.lat, place.lon)

    def search(self, query: str, limit: int = SEARCH_LIMIT) -> list[tuple[District | Place, int]]:
        """Entries whose name matches the query, best first: exact, prefix, substring, then names
        the query contains (a typed address naming a known place). Longer names win ties: they are
        more specific ("郑州东站" over "郑州")."""
        q = _normalise(query)
        if not q:
            return []
        scored: dict[int, tuple[int, int, District | Place]] = {}
        for name, entry in self._names:
            if not name:
                continue
            if name == q:
                score = 0
            elif name.startswith(q):
                score = 1
            elif q in name:
                score = 2
            elif len(name) >= 2 and name in q:
                score = 3
            else:
                continue
            key = id(entry)
            candidate = (score, -len(name), entry)
            if key not in scored or candidate[:2] < scored[key][:2]:
                scored[key] = candidate
        ranked = sorted(scored.values(), key=lambda item: (item[0], item[1]))
        return [(entry, score) for score, _, entry in ranked[:limit]]


@lru_cache(maxsize=1)
def gazetteer() -> Gazetteer:
    return Gazetteer.from_files()


def _distance_text(metres: float) -> tuple[str, str]:
    if metres < 150:
        return "附近", "near"
    if metres < 1000:
        rounded = int(round(metres, -1))
        return f"{rounded} m", f"{rounded} m from"
    return f"{metres / 1000:.1f} km", f"{metres / 1000:.1f} km from"


def describe_point(lat: float, lon: float, gaz: Gazetteer | None = None) -> dict:
    """District + nearest known place for a WGS-84 point, in Chinese and English."""
    gaz = gaz or gazetteer()
    district = gaz.district_at(lat, lon)
    nearest = gaz.nearest_place(lat, lon)
    parts_zh, parts_en = [], []
    if district is not None:
        parts_zh.append(district.name_zh)
        parts_en.append(district.name_en)
    else:
        parts_zh.append("郑州市外")
        parts_en.append("Outside Zhengzhou")
    place, distance = (nearest if nearest and nearest[1] <= NEAR_PLACE_MAX_M else (None, None))
    if place is not None:
        zh, en = _distance_text(distance)
        parts_zh.append(f"{place.name_zh} {zh}")
        parts_en.append(f"{en} {place.name_en}" if en != "near" else f"near {place.name_en}")
    if district is None and place is None:
        parts_zh.append(f"{lat:.5f}, {lon:.5f}")
        parts_en.append(f"{lat:.5f}, {lon:.5f}")
    return {
        "label": " · ".join(parts_zh),
        "label_en": " · ".join(parts_en),
        "district": district.name_zh if district else None,
        "district_en": district.name_en if district else None,
        "place": place.name_zh if place else None,
        "distance_m": round(distance) if place is not None else None,
    }


class OfflineGeocoder(Geocoder):
    """geopy's Geocoder interface over the gazetteer: no network, ever."""

    def __init__(self, gaz: Gazetteer | None = None):
        super().__init__(user_agent="onekey120-offline")
        self._gazetteer = gaz

    @property
    def gaz(self) -> Gazetteer:
        return self._gazetteer or gazetteer()

    def geocode(self, query, *, exactly_one=True, limit=None, **kwargs):
        results = []
        for entry, score in self.gaz.search(str(query), limit or SEARCH_LIMIT):
            if isinstance(entry, District):
                lat, lon = entry.label_lat, entry.label_lon
                district = entry
            else:
                lat, lon = entry.lat, entry.lon
                district = self.gaz.district_at(lat, lon)
            label = f"{entry.name_zh} {entry.name_en}".strip()
            raw = {
                "name_zh": entry.name_zh,
                "name_en": entry.name_en,
                "kind": "district" if isinstance(entry, District) else entry.kind,
                "district": district.name_zh if district else None,
                "score": score,
            }
            results.append(Location(label, (lat, lon, 0), raw))
        if not results:
            return None
        return results[0] if exactly_one else results

    def reverse(self, query, *, exactly_one=True, **kwargs):
        point = Point(query)
        described = describe_point(point.latitude, point.longitude, self.gaz)
        location = Location(described["label"], (point.latitude, point.longitude, 0), described)
        return location if exactly_one else [location]


@dataclass(frozen=True)
class GeocoderSetting:
    provider: str  # "offline" | "nominatim"
    domain: str = ""
    scheme: str = "https"


def parse_geocoder_setting(value: str) -> GeocoderSetting:
    value = (value or "").strip()
    if value in ("", "offline"):
        return GeocoderSetting("offline")
    if value.startswith("nominatim:"):
        url = urlparse(value[len("nominatim:") :])
        if url.scheme in ("http", "https") and url.hostname:
            domain = url.netloc + url.path.rstrip("/")
            return GeocoderSetting("nominatim", domain=domain, scheme=url.scheme)
    raise ImproperlyConfigured(
        f"GEOCODER={value!r}: use 'offline' or 'nominatim:https://your-nominatim.example.org' (a self-hosted one)"
    )


@lru_cache(maxsize=4)
def _geocoder_for(value: str) -> Geocoder:
    setting = parse_geocoder_setting(value)
    if setting.provider == "offline":
        return OfflineGeocoder()
    from geopy.geocoders import Nominatim

    return Nominatim(domain=setting.domain, scheme=setting.scheme, user_agent="onekey120", timeout=3)


def configured_geocoder() -> Geocoder:
    return _geocoder_for(getattr(settings, "GEOCODER", "offline"))


# Nominatim is asked only about the municipality (lon, lat corners), in Chinese first.
_VIEWBOX = [Point(34.97, 112.70), Point(34.27, 114.23)]


def forward(query: str, *, limit: int = SEARCH_LIMIT) -> list[dict]:
    """Candidates for a typed place: ``[{label, lat, lon, district}]``, best first."""
    geocoder = configured_geocoder()
    locations = None
    if not isinstance(geocoder, OfflineGeocoder):
        try:
            locations = geocoder.geocode(
                query, exactly_one=False, limit=limit, language="zh-CN,en", viewbox=_VIEWBOX, bounded=True, country_codes="cn"
            )
            locations = locations or []
        except GeopyError as exc:
            logger.warning("geocoder unavailable, answering offline: %s", type(exc).__name__)
            locations = None
    if locations is None:
        locations = OfflineGeocoder().geocode(query, exactly_one=False, limit=limit) or []
    gaz = gazetteer()
    out = []
    for location in locations[:limit]:
        lat, lon = location.latitude, location.longitude
        if not is_valid_point(lat, lon):
            continue
        district = gaz.district_at(lat, lon)
        out.append(
            {
                "label": location.address,
                "lat": round(lat, 6),
                "lon": round(lon, 6),
                "district": district.name_zh if district else None,
                "district_en": district.name_en if district else None,
            }
        )
    return out


def reverse(lat: float, lon: float) -> dict:
    """A human place for a point: ``{label, district}`` (plus the English label)."""
    described = place_of(lat, lon)
    geocoder = configured_geocoder()
    if not isinstance(geocoder, OfflineGeocoder):
        try:
            location = geocoder.reverse((lat, lon), exactly_one=True, language="zh-CN,en")
            if location is not None:
                return {**described, "label": location.address}
        except GeopyError as exc:
            logger.warning("geocoder unavailable, answering offline: %s", type(exc).__name__)
    return described


# Active cases are tens to hundreds; 4096 answers (~2 MB) cover a surge without growing a worker.
@lru_cache(maxsize=4096)
def _place_of_rounded(lat: float, lon: float) -> dict:
    return describe_point(lat, lon)


def place_of(lat, lon) -> dict:
    """Offline district + nearest place for a point, cached by the point rounded to ~10 m (a pure
    function of the point, so every worker computes the same answer). Bad points give nulls."""
    if not is_valid_point(lat, lon):  # None, NaN, out of range: a row written by hand
        return {"label": None, "label_en": None, "district": None, "district_en": None, "place": None, "distance_m": None}
    return dict(_place_of_rounded(round(float(lat), CACHE_DECIMALS), round(float(lon), CACHE_DECIMALS)))


def case_address(case) -> dict:
    """What a case payload shows: ``address`` (where its latest fix is) and ``district``, and both
    in English (``address_en``, ``district_en``)."""
    place = place_of(case.lat, case.lon)
    return {
        "address": place["label"],
        "district": place["district"],
        "address_en": place["label_en"],
        "district_en": place["district_en"],
    }
