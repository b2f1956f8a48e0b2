/*
 * geo.js — what the crew tablet computes itself: distance and ETA between two WGS-84 points (so they
 * move with every GPS fix, with no request), and the navigation hand-off links.
 *
 * Amap (高德) takes GCJ-02, the datum every map app in mainland China uses; ours are WGS-84. The
 * forward transform is the public formula, ported from dispatch/geo.py (wgs84_to_gcj02) — the
 * browser test checks the two agree. Baidu is told coord_type=wgs84, so it needs no conversion.
 */

import { tf } from "/static/onekey/i18n.js";

const A = 6378245.0;
const EE = 0.00669342162296594323;
const EARTH_RADIUS_M = 6371008.8;

function outsideChina(lat, lon) {
  return !(lon >= 72.004 && lon <= 137.8347 && lat >= 0.8293 && lat <= 55.8271);
}

function transformLat(x, y) {
  let ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
  ret += ((20.0 * Math.sin(6.0 * x * Math.PI) + 20.0 * Math.sin(2.0 * x * Math.PI)) * 2.0) / 3.0;
  ret += ((20.0 * Math.sin(y * Math.PI) + 40.0 * Math.sin((y / 3.0) * Math.PI)) * 2.0) / 3.0;
  ret += ((160.0 * Math.sin((y / 12.0) * Math.PI) + 320 * Math.sin((y * Math.PI) / 30.0)) * 2.0) / 3.0;
  return ret;
}

function transformLon(x, y) {
  let ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
  ret += ((20.0 * Math.sin(6.0 * x * Math.PI) + 20.0 * Math.sin(2.0 * x * Math.PI)) * 2.0) / 3.0;
  ret += ((20.0 * Math.sin(x * Math.PI) + 40.0 * Math.sin((x / 3.0) * Math.PI)) * 2.0) / 3.0;
  ret += ((150.0 * Math.sin((x / 12.0) * Math.PI) + 300.0 * Math.sin((x / 30.0) * Math.PI)) * 2.0) / 3.0;
  return ret;
}

/** [lat, lon] in GCJ-02 for a WGS-84 point (unchanged outside China, as the Chinese apps expect). */
export function wgs84ToGcj02(lat, lon) {
  if (outsideChina(lat, lon)) return [lat, lon];
  let dLat = transformLat(lon - 105.0, lat - 35.0);
  let dLon = transformLon(lon - 105.0, lat - 35.0);
  const radLat = (lat / 180.0) * Math.PI;
  const magic = 1 - EE * Math.sin(radLat) ** 2;
  const sqrtMagic = Math.sqrt(magic);
  dLat = (dLat * 180.0) / (((A * (1 - EE)) / (magic * sqrtMagic)) * Math.PI);
  dLon = (dLon * 180.0) / ((A / sqrtMagic) * Math.cos(radLat) * Math.PI);
  return [lat + dLat, lon + dLon];
}

export function isPoint(lat, lon) {
  return Number.isFinite(lat) && Number.isFinite(lon) && Math.abs(lat) <= 90 && Math.abs(lon) <= 180;
}

/** Great-circle metres: within a few metres of the server's geodesic over a city. */
export function distanceM(lat1, lon1, lat2, lon2) {
  const rad = Math.PI / 180;
  const dLat = (lat2 - lat1) * rad;
  const dLon = (lon2 - lon1) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** The server's ETA model (distance x road factor / speed, both settings), in seconds. */
export function etaS(distance, { roadFactor, speedKmh }) {
  return Math.round((distance * roadFactor) / ((speedKmh * 1000) / 3600));
}

export function distanceText(metres) {
  return metres < 1000 ? tf("%(m)s m", { m: Math.round(metres) }) : tf("%(km)s km", { km: (metres / 1000).toFixed(1) });
}

export function durationText(seconds) {
  if (seconds < 60) return tf("%(s)s s", { s: seconds });
  const minutes = Math.round(seconds / 60);
  return minutes < 60 ? tf("%(min)s min", { min: minutes }) : tf("%(h)s h %(min)s min", { h: Math.floor(minutes / 60), min: minutes % 60 });
}

const fixed = (value) => Number(value).toFixed(6);

/**
 * Links that hand the destination to the phone's navigation app: the standard geo: URI, Amap's
 * route planner (GCJ-02) and Baidu's directions (told the datum is WGS-84).
 */
export function navigationLinks({ lat, lon, name }) {
  const label = name || `${fixed(lat)},${fixed(lon)}`;
  const [gLat, gLon] = wgs84ToGcj02(lat, lon);
  const amap = new URL("amapuri://route/plan/");
  amap.search = new URLSearchParams({ dlat: fixed(gLat), dlon: fixed(gLon), dname: label, dev: "0", t: "0" }).toString();
  const baidu = new URL("baidumap://map/direction");
  baidu.search = new URLSearchParams({
    destination: `latlng:${fixed(lat)},${fixed(lon)}|name:${label}`,
    coord_type: "wgs84",
    mode: "driving",
  }).toString();
  return {
    geo: `geo:${fixed(lat)},${fixed(lon)}?q=${fixed(lat)},${fixed(lon)}(${encodeURIComponent(label)})`,
    amap: amap.toString(),
    baidu: baidu.toString(),
  };
}
