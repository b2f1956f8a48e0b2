"""Coordinates: China's map datums to WGS-84, and distances.

GCJ-02 is the obfuscated datum every map SDK in mainland China returns; BD-09 is Baidu's further
transform of it. Without converting, a caller in central Zhengzhou is placed ~550 m east of where
they are. The forward transform is the public formula on the Krasovsky ellipsoid; the inverse is
iterated until it is under a centimetre.
"""

from __future__ import annotations

import math

from geographiclib.geodesic import Geodesic

_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = math.pi * 3000.0 / 180.0
EARTH_RADIUS_M = 6371008.8


def outside_china(lat: float, lon: float) -> bool:
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


# GCJ-02 and BD-09 exist only for maps of China. A degree of slack around the published box keeps a
# fix from a border town (or a map tile just over the line) usable; a point on another continent
# labelled with a Chinese datum is a client bug or a probe, never a caller.
CHINA_DATUM_SLACK_DEG = 1.0


def near_china(lat: float, lon: float) -> bool:
    slack = CHINA_DATUM_SLACK_DEG
    return 72.004 - slack <= lon <= 137.8347 + slack and 0.8293 - slack <= lat <= 55.8271 + slack


def is_valid_point(lat, lon) -> bool:
    """A WGS-84 point every distance and ETA function can take. Stored rows are checked too: a row
    written before input validation was strict, or by hand, must not turn a later read into a 500."""
    try:
        return -90.0 <= float(lat) <= 90.0 and -180.0 <= float(lon) <= 180.0  # NaN fails every comparison
    except (TypeError, ValueError):
        return False


def _transform_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lon(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def wgs84_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    if outside_china(lat, lon):
        return lat, lon
    dlat = _transform_lat(lon - 105.0, lat - 35.0)
    dlon = _transform_lon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(radlat) ** 2
    sqrtmagic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * math.cos(radlat) * math.pi)
    return lat + dlat, lon + dlon


def gcj02_to_wgs84(lat: float, lon: float) -> tuple[float, float]:
    """Iterative inverse: start from the one-step guess and correct until under ~1 cm."""
    if outside_china(lat, lon):
        return lat, lon
    guess_lat, guess_lon = lat, lon
    for _ in range(30):
        fwd_lat, fwd_lon = wgs84_to_gcj02(guess_lat, guess_lon)
        err_lat, err_lon = fwd_lat - lat, fwd_lon - lon
        guess_lat -= err_lat
        guess_lon -= err_lon
        if abs(err_lat) < 1e-9 and abs(err_lon) < 1e-9:
            break
    return guess_lat, guess_lon


def bd09_to_gcj02(lat: float, lon: float) -> tuple[float, float]:
    x, y = lon - 0.0065, lat - 0.006
    z = math.sqrt(x * x + y * y) - 0.00002 * math.sin(y * _X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _X_PI)
    return z * math.sin(theta), z * math.cos(theta)


def gcj02_to_bd09(lat: float, lon: float) -> tuple[float, float]:
    z = math.sqrt(lon * lon + lat * lat) + 0.00002 * math.sin(lat * _X_PI)
    theta = math.atan2(lat, lon) + 0.000003 * math.cos(lon * _X_PI)
    return z * math.sin(theta) + 0.006, z * math.cos(theta) + 0.0065


def to_wgs84(lat: float, lon: float, crs: str) -> tuple[float, float]:
    if crs == "wgs84":
        return lat, lon
    if crs == "gcj02":
        return gcj02_to_wgs84(lat, lon)
    if crs == "bd09":
        return gcj02_to_wgs84(*bd09_to_gcj02(lat, lon))
    raise ValueError(f"unknown crs {crs!r}")


_WGS84 = Geodesic.WGS84


def geodesic_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Karney's geodesic on WGS-84: what geopy's ``geodesic`` computes, called without geopy's
    point parsing and asking only for the distance (about half the cost per call)."""
    return _WGS84.Inverse(lat1, lon1, lat2, lon2, Geodesic.DISTANCE)["s12"]


def fast_distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Equirectangular approximation: within 0.5% of geodesic over city distances, ~50x cheaper."""
    x = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    y = math.radians(lat2 - lat1)
    return EARTH_RADIUS_M * math.hypot(x, y)


# WGS-84 (the ellipsoid geodesic_m measures on): equatorial radius and first eccentricity squared.
WGS84_A = _WGS84.a
WGS84_E2 = _WGS84.f * (2 - _WGS84.f)
# The smallest meridian radius of curvature (at the equator): no path covers a degree of latitude
# in less than this many metres per radian.
_MERIDIAN_MIN_M = WGS84_A * (1 - WGS84_E2)


def bounding_box(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float]:
    """(min_lat, max_lat, min_lon, max_lon) holding every point within ``radius_m`` of (lat, lon)
    along the WGS-84 geodesic, proven rather than estimated: along any path a metre moves at most
    1/M radians north (M >= a(1-e²), the equatorial meridian radius) and at most 1/(N·cos φ)
    radians east (N >= a, and cos φ is smallest at the latitude farthest from the equator the path
    can reach). A box that reaches a pole spans every longitude; one that crosses the antimeridian
    runs past ±180 (the caller decides what to do with it)."""
    dlat = radius_m / _MERIDIAN_MIN_M
    farthest = math.radians(abs(lat)) + dlat
    if farthest >= math.pi / 2:
        return lat - math.degrees(dlat), lat + math.degrees(dlat), -180.0, 180.0
    dlon = math.degrees(radius_m / (WGS84_A * math.cos(farthest)))
    return lat - math.degrees(dlat), lat + math.degrees(dlat), lon - dlon, lon + dlon


def ecef(lat: float, lon: float) -> tuple[float, float, float]:
    """Earth-centred cartesian coordinates (metres) of a point on the WGS-84 ellipsoid."""
    phi, lam = math.radians(lat), math.radians(lon)
    sin_phi, cos_phi = math.sin(phi), math.cos(phi)
    n = WGS84_A / math.sqrt(1 - WGS84_E2 * sin_phi * sin_phi)
    return n * cos_phi * math.cos(lam), n * cos_phi * math.sin(lam), n * (1 - WGS84_E2) * sin_phi


def chord_m(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    """Straight-line distance between two ``ecef`` points: never more than the geodesic between
    them (no path over the surface is shorter than the straight line through it), and less by only
    about s³/24R², 0.1 mm at 5 km and 1 mm at 10 km. That makes it an exact lower bound that ranks
    almost like the geodesic, at about a hundredth of its cost."""
    return math.dist(a, b)


def point_in_ring(lon: float, lat: float, ring) -> bool:
    """Ray casting: is (lon, lat) inside a closed ring of [lon, lat] pairs (GeoJSON order)?"""
    inside = False
    j = len(ring) - 1
    for i in range(len(ring)):
        xi, yi = ring[i]
        xj, yj = ring[j]
        if (yi > lat) != (yj > lat) and lon < (xj - xi) * (lat - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def point_in_polygon(lon: float, lat: float, polygon) -> bool:
    """Inside the outer ring and in none of the holes (a GeoJSON Polygon's coordinates)."""
    return point_in_ring(lon, lat, polygon[0]) and not any(point_in_ring(lon, lat, hole) for hole in polygon[1:])
