// The shared Leaflet map of the consoles (dispatcher, crew, citizen stand-in).
//
//   import { createMap } from "/static/onekey/map.js";
//   const map = createMap(document.getElementById("map"), { tileUrl: el.dataset.tileUrl || null });
//   await map.showDistricts();      // Zhengzhou's districts (served GeoJSON); works with no tiles
//   map.fitZhengzhou();             // whole municipality; fitZhengzhou({ core: true }) = urban core
//   map.setCase(caseObj);           // {id, lat, lon, accuracy_m, status, complaint, address?, district?,
//                                   //  caller_phone?, trail?: [{lat, lon}]}: marker + accuracy circle +
//                                   //  location trail (kept from successive setCase calls when the
//                                   //  object carries no trail); closed/cancelled cases are removed
//   map.removeCase(id);
//   map.setUnit(unit);              // {id, call_sign, status, lat, lon, position_at}: coloured by
//                                   //  status, fix age in the tooltip, faded when the fix is stale
//   map.removeUnit(id);
//   map.setHospital(h);             // {id, name_zh, name_en, lat, lon, ed_status, ed_free_beds}
//   map.select(caseId);             // highlight (and pan to) a case; null clears
//   map.onSelect((caseId) => {});   // a case marker was clicked
//   map.onClick(({lat, lon}) => {}); // a click on the map itself (phoned-in calls pick a place)
//   map.setPick({lat, lon} | null); // the place being picked for a phoned-in call
//   map.showRoute(from, to | null); // a straight dashed line, e.g. unit -> scene
//   (setCase with route: {from: {lat, lon}, to: {lat, lon}} draws that case's own dashed line,
//    class onekey-route onekey-route-<id>: its unit to the scene, or to the hospital while transporting)
//   map.fitPoints([{lat, lon}, ...]);
//   map.counts();                   // {cases, units, hospitals}: for tests and status bars
//   map.destroy();
//
// Everything is WGS-84. Text from users (address, complaint, phone) is put in with textContent,
// never as HTML. Leaflet is the vendored ES module build (served by the app, so a centre with no
// internet still has a map); styles come from linked stylesheets, which CSP style-src 'self' allows.
// SVG shapes carry class names (onekey-case-<id>, onekey-unit-<id>, onekey-hospital-<id>) so pages
// and browser tests can find them.

import * as L from "/static/vendor/leaflet/leaflet-src.esm.js";
import { IS_ZH, t, tf } from "/static/onekey/i18n.js";

export { L };

const STATIC = "/static/";
const DISTRICTS_URL = `${STATIC}onekey/zhengzhou-districts.geojson`;
// Municipality and urban core, from ../shared reference data (WGS-84).
const ZHENGZHOU_BOUNDS = [[34.27, 112.70], [34.97, 114.23]];
const ZHENGZHOU_CORE = [[34.68, 113.50], [34.90, 113.87]];
const STALE_FIX_S = 60;
const TRAIL_MAX = 50;
const ENDED = new Set(["closed", "cancelled"]);
// Leaflet's own panes: shapes (units, circles, trails) 400, markers (hospitals) 600, tooltips 650.
// Cases sit above hospitals and units, so a case next to a hospital is the one a click reaches;
// the selected case above every other case. Both stay under tooltips.
const CASES_PANE = "onekey-cases";
const SELECTED_CASE_PANE = "onekey-case-selected";

export const UNIT_COLOURS = {
  available: "#2e7d32",
  dispatched: "#f57c00",
  en_route: "#e65100",
  on_scene: "#1565c0",
  transporting: "#6a1b9a",
  at_hospital: "#00838f",
  out_of_service: "#757575",
};

const UNIT_LABELS = {
  available: t("Available"),
  dispatched: t("Dispatched"),
  en_route: t("En route"),
  on_scene: t("On scene"),
  transporting: t("Transporting"),
  at_hospital: t("At hospital"),
  out_of_service: t("Out of service"),
};

function ensureStylesheet(href) {
  if (document.querySelector(`link[rel="stylesheet"][href="${href}"]`)) return;
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = href;
  document.head.appendChild(link);
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function finite(value) {
  return typeof value === "number" && Number.isFinite(value);
}

function hasPoint(obj) {
  return obj && finite(obj.lat) && finite(obj.lon);
}

export function fixAgeText(iso, now = Date.now()) {
  if (!iso) return t("no fix");
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (!Number.isFinite(seconds)) return t("no fix");
  if (seconds < 60) return tf("%(n)s s ago", { n: seconds });
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return tf("%(n)s min ago", { n: minutes });
  return tf("%(n)s h ago", { n: Math.floor(minutes / 60) });
}

function fixIsStale(iso, now = Date.now()) {
  if (!iso) return true;
  return (now - Date.parse(iso)) / 1000 > STALE_FIX_S;
}

export function createMap(element, { tileUrl = null, tileAttribution = "", districtsUrl = DISTRICTS_URL } = {}) {
  ensureStylesheet(`${STATIC}vendor/leaflet/leaflet.css`);
  ensureStylesheet(`${STATIC}onekey/map.css`);
  element.classList.add("onekey-map");

  const map = L.map(element, {
    preferCanvas: false, // SVG: shapes are DOM nodes that tests and CSS can address
    zoomSnap: 0.25,
    attributionControl: Boolean(tileUrl),
  });
  map.fitBounds(ZHENGZHOU_CORE);
  if (tileUrl) {
    // Leaflet puts attributions in as HTML; the setting is plain text, so it is escaped here.
    const credit = String(tileAttribution || "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
    L.tileLayer(tileUrl, { maxZoom: 19, attribution: credit }).addTo(map);
  }

  map.createPane("onekey-districts").style.zIndex = "250";
  for (const [name, zIndex] of [[CASES_PANE, "610"], [SELECTED_CASE_PANE, "620"]]) {
    const pane = map.createPane(name);
    pane.style.zIndex = zIndex;
    // The panes span the whole map: only their case shapes may catch the pointer (Leaflet's CSS
    // turns it back on for interactive paths), so hospitals, units and the map below still get it
    // in every browser (Leaflet's advice for panes above its marker pane).
    pane.style.pointerEvents = "none";
  }
  const layers = {
    districts: null,
    trails: L.layerGroup().addTo(map),
    circles: L.layerGroup().addTo(map),
    hospitals: L.layerGroup().addTo(map),
    units: L.layerGroup().addTo(map),
    cases: L.layerGroup().addTo(map),
    extras: L.layerGroup().addTo(map),
  };
  const cases = new Map(); // id -> {data, marker, circle, trail, points}
  const units = new Map(); // id -> {data, marker}
  const hospitals = new Map(); // id -> {data, marker}
  const selectListeners = [];
  const clickListeners = [];
  let selectedId = null;
  let pick = null;
  let route = null;

  map.on("click", (e) => {
    const point = { lat: e.latlng.lat, lon: e.latlng.lng };
    for (const cb of clickListeners) cb(point);
  });

  // --- districts ------------------------------------------------------------------------------
  let districtsPromise = null;
  function showDistricts() {
    if (districtsPromise) return districtsPromise;
    districtsPromise = fetch(districtsUrl, { credentials: "same-origin" })
      .then((response) => {
        if (!response.ok) throw new Error(`districts: HTTP ${response.status}`);
        return response.json();
      })
      .then((geojson) => {
        layers.districts = L.geoJSON(geojson, {
          pane: "onekey-districts",
          interactive: false,
          style: (feature) => ({
            className: feature.properties.level === "city" ? "onekey-city-outline" : "onekey-district",
            color: feature.properties.level === "city" ? "#37474f" : "#78909c",
            weight: feature.properties.level === "city" ? 2 : 1,
            fillColor: "#eceff1",
            // Over tiles the districts are outlines; without tiles their fill is the land.
            fillOpacity: feature.properties.level === "city" ? 0 : tileUrl ? 0.05 : 0.55,
          }),
        }).addTo(map);
        for (const feature of geojson.features) {
          const props = feature.properties;
          if (props.level === "city" || !finite(props.label_lat) || !finite(props.label_lon)) continue;
          L.marker([props.label_lat, props.label_lon], {
            interactive: false,
            keyboard: false,
            pane: "onekey-districts",
            icon: L.divIcon({
              className: "onekey-district-label",
              // Short labels: "Jinshui" rather than "Jinshui District" on an English page.
              html: el("span", null, IS_ZH || !props.name_en ? props.name_zh : String(props.name_en).replace(/ District$/, "")),
              iconSize: null,
            }),
          }).addTo(layers.districts);
        }
        return geojson;
      });
    return districtsPromise;
  }

  function fitZhengzhou({ core = false } = {}) {
    map.fitBounds(core ? ZHENGZHOU_CORE : ZHENGZHOU_BOUNDS);
  }

  function fitPoints(points) {
    const latlngs = points.filter(hasPoint).map((p) => [p.lat, p.lon]);
    if (latlngs.length === 1) map.setView(latlngs[0], Math.max(map.getZoom(), 14));
    else if (latlngs.length > 1) map.fitBounds(latlngs, { padding: [30, 30], maxZoom: 15 });
  }

  // --- cases ----------------------------------------------------------------------------------
  function caseTooltip(data) {
    const box = el("div", "onekey-tip");
    box.appendChild(el("strong", null, `#${data.id} ${data.complaint_label || data.complaint || ""}`));
    if (data.address) box.appendChild(el("div", null, data.address));
    if (data.status) box.appendChild(el("div", "onekey-tip-muted", data.status));
    if (finite(data.accuracy_m)) box.appendChild(el("div", "onekey-tip-muted", `±${Math.round(data.accuracy_m)} m`));
    return box;
  }

  function casePane(id) {
    return id === selectedId ? SELECTED_CASE_PANE : CASES_PANE;
  }

  // A layer's pane is fixed while it is on the map: move the marker by taking it off and on again
  // (its handlers and tooltip stay bound; Leaflet draws it afresh in the other pane's renderer).
  function placeCase(id, entry) {
    const pane = casePane(id);
    if (entry.marker.options.pane === pane) return;
    layers.cases.removeLayer(entry.marker);
    entry.marker.options.pane = pane;
    layers.cases.addLayer(entry.marker);
  }

  // A case's priority (1 most urgent) colours its marker; none known: the old red.
  const PRIORITY_FILL = { 1: "#d50000", 2: "#ef6c00", 3: "#f9a825", 4: "#43a047" };

  function caseStyle(id) {
    const selected = id === selectedId;
    const known = cases.get(id);
    const fill = (known && known.data && PRIORITY_FILL[known.data.priority]) || "#e53935";
    return {
      className: `onekey-case onekey-case-${id}${selected ? " onekey-selected" : ""}`,
      radius: selected ? 11 : 8,
      color: selected ? "#000" : "#b71c1c",
      weight: selected ? 3 : 2,
      fillColor: fill,
      fillOpacity: 0.9,
    };
  }

  function setCase(data) {
    if (!data || data.id === undefined) return;
    if (ENDED.has(data.status) || !hasPoint(data)) {
      removeCase(data.id);
      return;
    }
    const id = data.id;
    let entry = cases.get(id);
    if (!entry) {
      entry = { points: [] };
      entry.marker = L.circleMarker([data.lat, data.lon], { ...caseStyle(id), pane: casePane(id) }).addTo(layers.cases);
      entry.marker.on("click", (e) => {
        L.DomEvent.stopPropagation(e);
        for (const cb of selectListeners) cb(id);
      });
      entry.circle = L.circle([data.lat, data.lon], {
        radius: 0,
        interactive: false,
        className: `onekey-accuracy onekey-accuracy-${id}`,
        color: "#e53935",
        weight: 1,
        fillOpacity: 0.08,
      }).addTo(layers.circles);
      entry.trail = L.polyline([], {
        interactive: false,
        className: `onekey-trail onekey-trail-${id}`,
        color: "#c62828",
        weight: 2,
        dashArray: "4 4",
      }).addTo(layers.trails);
      cases.set(id, entry);
    }
    entry.data = data;
    // A trail from the payload wins; otherwise the trail is built from the fixes this map has seen.
    if (Array.isArray(data.trail) && data.trail.length) {
      entry.points = data.trail.filter(hasPoint).map((p) => [p.lat, p.lon]);
    } else {
      const last = entry.points[entry.points.length - 1];
      if (!last || last[0] !== data.lat || last[1] !== data.lon) entry.points.push([data.lat, data.lon]);
    }
    entry.points = entry.points.slice(-TRAIL_MAX);
    entry.trail.setLatLngs(entry.points.length > 1 ? entry.points : []);
    entry.marker.setLatLng([data.lat, data.lon]);
    entry.marker.setStyle(caseStyle(id));
    entry.circle.setLatLng([data.lat, data.lon]);
    entry.circle.setRadius(finite(data.accuracy_m) ? data.accuracy_m : 0);
    entry.marker.unbindTooltip();
    entry.marker.bindTooltip(caseTooltip(data), { direction: "top", offset: [0, -8] });
    setCaseRoute(id, entry, data.route);
  }

  // Where the case's unit is heading, as the crow flies: no routing service, and none is claimed.
  function setCaseRoute(id, entry, route) {
    const ends = route && hasPoint(route.from) && hasPoint(route.to) ? [[route.from.lat, route.from.lon], [route.to.lat, route.to.lon]] : null;
    if (!ends) {
      if (entry.route) layers.trails.removeLayer(entry.route);
      entry.route = null;
      return;
    }
    if (!entry.route) {
      entry.route = L.polyline(ends, {
        interactive: false,
        className: `onekey-route onekey-route-${id}`,
        color: "#1565c0",
        weight: 3,
        dashArray: "8 6",
      }).addTo(layers.trails);
    } else {
      entry.route.setLatLngs(ends);
    }
  }

  function removeCase(id) {
    const entry = cases.get(id);
    if (!entry) return;
    layers.cases.removeLayer(entry.marker);
    layers.circles.removeLayer(entry.circle);
    layers.trails.removeLayer(entry.trail);
    if (entry.route) layers.trails.removeLayer(entry.route);
    cases.delete(id);
    if (selectedId === id) selectedId = null;
  }

  function select(caseId) {
    const previous = selectedId;
    selectedId = caseId === undefined ? null : caseId;
    for (const id of [previous, selectedId]) {
      const entry = id === null ? null : cases.get(id);
      if (entry) {
        entry.marker.setStyle(caseStyle(id));
        placeCase(id, entry);
        // setStyle does not touch the class attribute: update it by hand.
        const path = entry.marker.getElement && entry.marker.getElement();
        if (path) path.classList.toggle("onekey-selected", id === selectedId);
      }
    }
    const entry = selectedId === null ? null : cases.get(selectedId);
    if (entry) {
      entry.marker.bringToFront();
      if (!map.getBounds().pad(-0.1).contains(entry.marker.getLatLng())) map.panTo(entry.marker.getLatLng());
    }
  }

  // --- units ----------------------------------------------------------------------------------
  function unitTooltip(unit) {
    return () => {
      const box = el("div", "onekey-tip");
      box.appendChild(el("strong", null, unit.data.call_sign || `#${unit.data.id}`));
      box.appendChild(el("div", null, UNIT_LABELS[unit.data.status] || unit.data.status || ""));
      box.appendChild(el("div", "onekey-tip-muted", tf("fix: %(age)s", { age: fixAgeText(unit.data.position_at) })));
      return box;
    };
  }

  function unitStyle(data) {
    const stale = fixIsStale(data.position_at);
    const colour = UNIT_COLOURS[data.status] || "#455a64";
    return {
      className: `onekey-unit onekey-unit-${data.id} onekey-unit-${data.status}${stale ? " onekey-stale" : ""}`,
      radius: 6,
      color: "#ffffff",
      weight: 2,
      fillColor: colour,
      fillOpacity: stale ? 0.45 : 1,
      dashArray: stale ? "2 2" : null,
    };
  }

  function setUnit(data) {
    if (!data || data.id === undefined) return;
    if (!hasPoint(data)) {
      removeUnit(data.id);
      return;
    }
    let entry = units.get(data.id);
    if (!entry) {
      entry = { data };
      entry.marker = L.circleMarker([data.lat, data.lon], unitStyle(data)).addTo(layers.units);
      entry.marker.bindTooltip(unitTooltip(entry), { direction: "top", offset: [0, -6] });
      units.set(data.id, entry);
    }
    entry.data = { ...entry.data, ...data };
    entry.marker.setLatLng([entry.data.lat, entry.data.lon]);
    entry.marker.setStyle(unitStyle(entry.data));
    const path = entry.marker.getElement && entry.marker.getElement();
    if (path) path.setAttribute("class", `leaflet-interactive ${unitStyle(entry.data).className}`);
    if (entry.marker.isTooltipOpen()) entry.marker.setTooltipContent(unitTooltip(entry));
  }

  function removeUnit(id) {
    const entry = units.get(id);
    if (!entry) return;
    layers.units.removeLayer(entry.marker);
    units.delete(id);
  }

  // --- hospitals ------------------------------------------------------------------------------
  function hospitalIcon(data) {
    const diverting = data.ed_status === "diverting";
    const node = el("span", "onekey-hospital-glyph", "H");
    return L.divIcon({
      className: `onekey-hospital onekey-hospital-${data.id}${diverting ? " onekey-diverting" : ""}`,
      html: node,
      iconSize: [18, 18],
      iconAnchor: [9, 9],
    });
  }

  function hospitalTooltip(data) {
    const box = el("div", "onekey-tip");
    // The name in the page's language leads; the other one stays as a muted second line.
    const [first, second] = IS_ZH ? [data.name_zh, data.name_en] : [data.name_en, data.name_zh];
    box.appendChild(el("strong", null, first || second || data.code || `#${data.id}`));
    if (first && second) box.appendChild(el("div", "onekey-tip-muted", second));
    const ed = data.ed_status === "diverting" ? t("ED diverting") : t("ED open");
    // Beds less the patients already on their way (incoming), as suggestions count them.
    const incoming = finite(data.incoming) ? data.incoming : 0;
    const beds = finite(data.ed_free_beds) ? ` · ${tf("%(n)s beds", { n: Math.max(0, data.ed_free_beds - incoming) })}` : "";
    const coming = incoming ? ` (${tf("%(n)s incoming", { n: incoming })})` : "";
    box.appendChild(el("div", null, ed + beds + coming));
    const lost = Array.isArray(data.unavailable_capabilities) ? data.unavailable_capabilities : [];
    if (lost.length) box.appendChild(el("div", "onekey-tip-muted", tf("no %(what)s", { what: lost.join(", ") })));
    return box;
  }

  function setHospital(data) {
    if (!data || data.id === undefined) return;
    let entry = hospitals.get(data.id);
    const merged = { ...(entry ? entry.data : {}), ...data };
    if (!hasPoint(merged)) return;
    if (!entry) {
      entry = { data: merged };
      entry.marker = L.marker([merged.lat, merged.lon], { icon: hospitalIcon(merged), keyboard: false }).addTo(
        layers.hospitals,
      );
      hospitals.set(data.id, entry);
    }
    entry.data = merged;
    entry.marker.setLatLng([merged.lat, merged.lon]);
    entry.marker.setIcon(hospitalIcon(merged));
    entry.marker.unbindTooltip();
    entry.marker.bindTooltip(hospitalTooltip(merged), { direction: "top", offset: [0, -9] });
  }

  // --- extras ---------------------------------------------------------------------------------
  function setPick(point) {
    if (pick) {
      layers.extras.removeLayer(pick);
      pick = null;
    }
    if (hasPoint(point)) {
      pick = L.circleMarker([point.lat, point.lon], {
        className: "onekey-pick",
        radius: 9,
        color: "#0d47a1",
        weight: 3,
        fillColor: "#ffffff",
        fillOpacity: 0.9,
        interactive: false,
      }).addTo(layers.extras);
    }
  }

  function showRoute(from, to) {
    if (route) {
      layers.extras.removeLayer(route);
      route = null;
    }
    if (hasPoint(from) && hasPoint(to)) {
      route = L.polyline(
        [
          [from.lat, from.lon],
          [to.lat, to.lon],
        ],
        { className: "onekey-route", color: "#1565c0", weight: 3, dashArray: "6 6", interactive: false },
      ).addTo(layers.extras);
    }
  }

  // Fix ages move with the clock, not with events: restyle stale units and refresh open tooltips.
  const ticker = window.setInterval(() => {
    for (const entry of units.values()) {
      entry.marker.setStyle(unitStyle(entry.data));
      const path = entry.marker.getElement && entry.marker.getElement();
      if (path) path.setAttribute("class", `leaflet-interactive ${unitStyle(entry.data).className}`);
      if (entry.marker.isTooltipOpen()) entry.marker.setTooltipContent(unitTooltip(entry));
    }
  }, 5000);

  // The container may be laid out after the map is created (tabs, grids): keep Leaflet's size right.
  let resizeObserver = null;
  if (typeof ResizeObserver !== "undefined") {
    resizeObserver = new ResizeObserver(() => map.invalidateSize());
    resizeObserver.observe(element);
  }

  return {
    leaflet: map,
    showDistricts,
    fitZhengzhou,
    fitPoints,
    setCase,
    removeCase,
    setUnit,
    removeUnit,
    setHospital,
    select,
    selected: () => selectedId,
    onSelect(cb) {
      selectListeners.push(cb);
    },
    onClick(cb) {
      clickListeners.push(cb);
    },
    setPick,
    showRoute,
    counts: () => ({ cases: cases.size, units: units.size, hospitals: hospitals.size }),
    destroy() {
      window.clearInterval(ticker);
      if (resizeObserver) resizeObserver.disconnect();
      map.remove();
    },
  };
}
