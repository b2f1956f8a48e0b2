/*
 * main.js — the dispatcher console (调度台): wiring only.
 *
 * The REST snapshot (cases with last_seq, units, hospitals) is the truth; the dispatch stream
 * (/ws/dispatch/, through the shared StreamClient) brings every change after it, in order. Each
 * concern lives in its own module: queue.js (case table), details.js (side panel), health.js,
 * recommendations.js, operations.js, newcall.js (phoned-in calls), units.js, alerts.js (the
 * server's escalations), priority.js, messages.js (silent calls), merge.js, surge.js, bulk.js, and
 * the shared map (/static/onekey/map.js). No framework, no build step.
 */

import { api, serverNow } from "/static/onekey/api.js";
import { createMap } from "/static/onekey/map.js";
import { AnswersAhead, StreamClient } from "/static/onekey/stream.js";
import { createAlerts } from "./alerts.js";
import { createBulk } from "./bulk.js";
import { closeDetails, hideReassign, markUnitInDetails, openDetails, renderCaseAlerts, renderLive, syncDetails, toggleReassign } from "./details.js";
import { storeMessage } from "./messages.js";
import { createSurge } from "./surge.js";
import { renderHealthBadge } from "./health.js";
import { CONN_TEXT, ENDED, el, label, readJson } from "./labels.js";
import { createNewCall } from "./newcall.js";
import { createEntry, layoutRows, renderHospitalCell, renderRow, renderSummary, renderUnitCell, renderWaiting } from "./queue.js";
import { createUnits } from "./units.js";
import { t, tf, tn, choice, localized } from "/static/onekey/i18n.js";

const root = document.getElementById("console");
const pageConfig = readJson("console-config") || {};
const REMOVE_ENDED_AFTER_MS = 30000;

const cfg = {
  casesUrl: root.dataset.casesUrl,
  recommendationsUrl: root.dataset.recommendationsUrlTemplate,
  assignUrl: root.dataset.assignUrlTemplate,
  reassignUrl: root.dataset.reassignUrlTemplate,
  hospitalUrl: root.dataset.hospitalUrlTemplate,
  cancelUrl: root.dataset.cancelUrlTemplate,
  caseUrl: root.dataset.caseUrlTemplate,
  overrideUrl: root.dataset.healthOverrideUrlTemplate,
  renewUrl: root.dataset.healthRenewUrlTemplate,
  ambulancesUrl: root.dataset.ambulancesUrl,
  ambulanceStatusUrl: root.dataset.ambulanceStatusUrlTemplate,
  hospitalsUrl: root.dataset.hospitalsUrl,
  alertsUrl: root.dataset.alertsUrl,
  triageUrl: root.dataset.triageUrlTemplate,
  messagesUrl: root.dataset.messagesUrlTemplate,
  mergeUrl: root.dataset.mergeUrlTemplate,
  surgeUrl: root.dataset.surgeUrl,
  districtsUrl: root.dataset.districtsUrl,
  bulkStatusUrl: root.dataset.bulkStatusUrl,
  meUrl: root.dataset.meUrl,
  wsPath: root.dataset.wsPath || "/ws/dispatch/",
  loginUrl: root.dataset.loginUrl || "/accounts/login/",
  tileUrl: pageConfig.tile_url || null,
  tileAttribution: pageConfig.tile_attribution || "",
};

const els = {
  root,
  rows: document.getElementById("case-rows"),
  empty: document.getElementById("empty"),
  conn: document.getElementById("connection"),
  summary: document.getElementById("summary"),
  error: document.getElementById("console-error"),
  announcer: document.getElementById("announcer"),
  details: document.getElementById("details"),
  newCall: document.getElementById("new-call"),
  newCallOpen: document.getElementById("new-call-open"),
  mute: document.getElementById("mute"),
  alarm: document.getElementById("alarm"),
  unitRows: document.getElementById("unit-rows"),
  unitsCount: document.getElementById("units-count"),
  unitsError: document.getElementById("units-error"),
  captionNote: document.getElementById("cases-caption-note"),
  map: document.getElementById("map"),
  surge: document.getElementById("surge"),
  districts: document.getElementById("districts"),
  unitsPanel: document.getElementById("units-panel"),
  reports: document.getElementById("reports-link"),
};

const state = {
  cases: new Map(), // id -> entry {id, data, health, row, cells, panel, endedAt, etaAt}
  units: new Map(), // id -> the newest unit payload
  hospitals: new Map(),
  selected: null,
  connState: "connecting",
  centre: null, // the snapshot's `centre`, then centre.surge_changed
  messages: new Map(), // case id -> its texts, oldest first
  supervisor: false,
};

const ctx = {
  cfg,
  els,
  state,
  map: null,
  select,
  toggleSelect: (id) => select(state.selected === id ? null : id),
  upsertCase,
  announce,
  afterOperation: (entry) => {
    hideReassign(entry); // done: the list of units to send instead has served
    if (entry.panel) entry.panel.title.focus(); // the button pressed is gone; keep focus on the case
  },
  toggleReassign: (entry) => toggleReassign(ctx, entry),
  showError,
  relayout: () => layoutRows(ctx),
  alertsFor: (caseId) => (ctx.alerts ? ctx.alerts.forCase(caseId) : []),
  onAlertsChanged: (entry) => {
    renderWaiting(ctx, entry, serverNow());
    renderCaseAlerts(ctx, entry);
  },
  onUnitPicked: (id, on) => ctx.bulk && ctx.bulk.pick(id, on),
  onHealth: (entry) => {
    renderRow(ctx, entry);
    if (entry.panel) syncDetails(ctx, entry);
  },
};

// ---------------------------------------------------------------------------------------------
// Small helpers

function announce(text) {
  els.announcer.textContent = "";
  // A fresh text node is what makes screen readers speak again.
  window.setTimeout(() => { els.announcer.textContent = text; }, 30);
}

function showError(message) {
  els.error.textContent = message || "";
  els.error.hidden = !message;
}

function setConnState(name) {
  if (state.connState === name && els.conn.dataset.state === name) return;
  state.connState = name;
  els.conn.dataset.state = name;
  els.conn.className = `conn conn-${name}`;
  const text = els.conn.querySelector(".conn-text");
  text.textContent = "";
  const en = CONN_TEXT[name];
  if (name === "signed-out") {
    const next = encodeURIComponent(location.pathname);
    text.append(el("a", { href: `${cfg.loginUrl}?next=${next}` }, en));
  } else {
    text.append(en);
  }
}

function mapCase(c) {
  return {
    id: c.id,
    lat: c.lat,
    lon: c.lon,
    accuracy_m: c.accuracy_m,
    status: c.status,
    complaint: c.complaint,
    complaint_label: label("complaint", c.complaint),
    address: localized(c, "address"),
    district: localized(c, "district"),
    caller_phone: c.caller_phone || null,
    trail: c.trail,
    priority: c.priority,
    route: routeOf(c),
  };
}

/** The dashed line on the map: the case's unit to the scene, or to the hospital while transporting. */
function routeOf(c) {
  const unit = c.ambulance;
  if (!unit || !Number.isFinite(unit.lat) || !Number.isFinite(unit.lon)) return null;
  if (c.eta_target === "scene") return { from: unit, to: { lat: c.lat, lon: c.lon } };
  if (c.eta_target === "hospital" && c.hospital) {
    const h = { ...(state.hospitals.get(c.hospital.id) || {}), ...c.hospital };
    return Number.isFinite(h.lat) && Number.isFinite(h.lon) ? { from: unit, to: h } : null;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Applying the snapshot and events

// Answers to this page's requests, ordered against the stream by updated_at (stream.js).
const caseAnswers = new AnswersAhead();

/** A case from the snapshot (authoritative), a stream event (event), or an answer to our own
 * request (the default), which caseAnswers orders against the stream. */
function upsertCase(data, { authoritative = false, event = false, quiet = false } = {}) {
  if (!data || data.id == null) return null;
  let entry = state.cases.get(data.id);
  // The snapshot is shown as it is (applySnapshot has cleared caseAnswers).
  const shown = authoritative
    || (event ? caseAnswers.event(data.id, data.updated_at) : caseAnswers.answer(data.id, data.updated_at, entry && entry.data.updated_at));
  if (!shown) return entry || null;
  let isNew = false;
  if (!entry) {
    if (ENDED.has(data.status) && !authoritative) return null; // never saw it alive; nothing to show
    entry = createEntry(ctx, data);
    state.cases.set(data.id, entry);
    isNew = true;
  }
  const wasEnded = ENDED.has(entry.data.status);
  // A caller's view (e.g. the cancel answer) lacks staff fields: keep what we know.
  entry.data = { ...entry.data, ...data };
  entry.etaAt = Number.isFinite(entry.data.eta_s) ? serverNow() + 1000 * entry.data.eta_s : null;
  if (ENDED.has(entry.data.status)) {
    if (!wasEnded || !entry.endedAt) entry.endedAt = Date.now();
    entry.health = null; // the case's access grants have ended: keep no health data
    renderHealthBadge(entry.cells.health, null);
    if (state.selected === entry.id) select(null);
  } else {
    entry.endedAt = null;
  }
  renderRow(ctx, entry);
  if (ctx.map) ctx.map.setCase(mapCase(entry.data));
  if (entry.panel) syncDetails(ctx, entry);
  if (isNew && !quiet && !ENDED.has(entry.data.status)) {
    alerts.newEmergency(entry);
    announce(tf("New case #%(id)s: %(complaint)s.", { id: data.id, complaint: label("complaint", data.complaint) }));
  }
  layoutRows(ctx);
  renderSummary(ctx);
  return entry;
}

function removeCase(entry) {
  if (state.selected === entry.id) select(null);
  entry.row.remove();
  state.cases.delete(entry.id);
  caseAnswers.forget(entry.id);
  if (ctx.map) ctx.map.removeCase(entry.id);
}

function updateUnit(data) {
  const unit = units.update(data, { event: true });
  if (!unit) return;
  for (const entry of state.cases.values()) {
    const mine = entry.data.ambulance;
    if (mine && mine.id === unit.id) {
      entry.data.ambulance = { ...mine, call_sign: unit.call_sign, status: unit.status, lat: unit.lat, lon: unit.lon, position_at: unit.position_at };
      renderRow(ctx, entry);
      if (ctx.map) ctx.map.setCase(mapCase(entry.data)); // its route line follows the unit
      if (entry.panel) syncDetails(ctx, entry);
    }
    markUnitInDetails(entry, unit);
  }
}

function updateAdmission(admission) {
  if (!admission || admission.case == null) return;
  const entry = state.cases.get(admission.case);
  if (!entry) return;
  const have = entry.data.admission;
  // A cancelled admission that is not the case's newest (the destination moved) changes nothing.
  if (have && have.id !== admission.id && admission.status === "cancelled") return;
  entry.data = { ...entry.data, admission };
  renderRow(ctx, entry);
  if (entry.panel) syncDetails(ctx, entry);
}

function updateHospital(hospital) {
  if (!hospital || hospital.id == null) return;
  state.hospitals.set(hospital.id, hospital);
  if (ctx.map) ctx.map.setHospital(hospital);
  const selected = state.cases.get(state.selected);
  if (selected && selected.panel) selected.panel.ops.sync();
}

function applySnapshot(snap) {
  caseAnswers.clear();
  const seen = new Set();
  for (const data of snap.results || []) {
    seen.add(data.id);
    upsertCase(data, { authoritative: true, quiet: true });
  }
  for (const entry of [...state.cases.values()]) {
    if (!seen.has(entry.id)) removeCase(entry);
  }
  units.replace(Array.isArray(snap.units) ? snap.units : []);
  state.hospitals.clear();
  for (const hospital of Array.isArray(snap.hospitals) ? snap.hospitals : []) updateHospital(hospital);
  state.messages.clear();
  for (const message of Array.isArray(snap.messages) ? snap.messages : []) storeMessage(state, message);
  if (snap.centre) surge.setCentre(snap.centre);
  alerts.replace(snap.alerts ? snap.alerts.results : []);
  const selected = state.cases.get(state.selected);
  if (selected && selected.panel) syncDetails(ctx, selected);
  surge.refreshDistricts();
  layoutRows(ctx);
  renderSummary(ctx);
  showError(null);
}

function applyMessage(message) {
  if (!storeMessage(state, message)) return;
  const entry = state.cases.get(message.case);
  if (entry && entry.panel) entry.panel.thread.sync();
  if (message.sender !== "dispatcher") {
    alerts.sound("info");
    announce(tf("New text on case #%(id)s.", { id: message.case }));
  }
}

function applyEvent({ event, data }) {
  if (event === "case.message") {
    applyMessage(data); // a message, not a case
  } else if (event === "alert.raised") {
    alerts.raised(data);
  } else if (event === "alert.cleared") {
    alerts.cleared(data);
  } else if (event === "centre.surge_changed") {
    surge.setCentre(data);
  } else if (event.startsWith("case.")) {
    // The dispatch stream carries no health summary (the panel reads it, audited); should an event
    // ever carry one, it was read and logged for this dispatcher, so it is kept like a read.
    const { health_summary: health, ...caseData } = data;
    const entry = upsertCase(caseData, { event: true, quiet: event !== "case.created" });
    if (health && entry) {
      entry.health = health;
      renderRow(ctx, entry);
    }
    if (event === "case.merged" && data.merged_into) {
      announce(tf("Case #%(id)s merged into case #%(into)s.", { id: data.id, into: data.merged_into }));
    }
    surge.refreshDistricts();
  } else if (event.startsWith("unit.")) {
    updateUnit(data);
  } else if (event.startsWith("admission.")) {
    updateAdmission(data);
  } else if (event.startsWith("hospital.")) {
    updateHospital(data);
  }
}

// ---------------------------------------------------------------------------------------------
// Selection: the table, the map and the details panel show the same case

function select(id) {
  const next = id == null ? null : state.cases.get(id);
  const target = next && !ENDED.has(next.data.status) ? next.id : null;
  if (state.selected === target) return;
  const previous = state.cases.get(state.selected);
  if (previous) {
    closeDetails(ctx, previous);
    state.selected = null;
    renderRow(ctx, previous);
  } else if (target == null) {
    closeDetails(ctx, null);
  }
  state.selected = target;
  if (ctx.map) ctx.map.select(target);
  if (target == null) return;
  newCall.close();
  openDetails(ctx, next);
  renderRow(ctx, next);
  next.row.scrollIntoView({ block: "nearest" });
}

// ---------------------------------------------------------------------------------------------
// Every second: waiting times, counting ETAs, overdue alarms, ended cases leaving

function tick() {
  const now = serverNow();
  for (const entry of [...state.cases.values()]) {
    if (entry.endedAt && Date.now() - entry.endedAt > REMOVE_ENDED_AFTER_MS) {
      removeCase(entry);
      continue;
    }
    renderWaiting(ctx, entry, now);
    if (entry.etaAt != null || entry.data.admission) {
      renderUnitCell(entry, now);
      renderHospitalCell(entry, now);
      renderLive(entry, now);
    }
  }
  renderSummary(ctx);
  layoutRows(ctx);
}

// ---------------------------------------------------------------------------------------------
// Start

const alerts = createAlerts(ctx);
ctx.alerts = alerts;
const units = createUnits(ctx);
ctx.units = units;
const surge = createSurge(ctx);
const bulk = createBulk(ctx);
ctx.bulk = bulk;
try {
  ctx.map = createMap(els.map, { tileUrl: cfg.tileUrl, tileAttribution: cfg.tileAttribution });
  ctx.map.showDistricts().catch((err) => console.warn("district layer", err));
  ctx.map.onSelect((id) => select(id));
} catch (err) {
  // The console works without its map (the table has everything); say so instead of failing.
  console.warn("map unavailable", err);
  els.map.textContent = t("Map unavailable");
}
const newCall = createNewCall(ctx);

{
  els.captionNote.textContent = "";
  els.captionNote.append(
    t("Waiting for a unit first, then by priority; the centre alarms when a case waits too long for its priority."),
    " ",
    t("Times are local."),
    " ",
    t("Health archives are read (and logged) only when you open a case."),
  );
}

async function fetchSnapshot() {
  // The queue first, then the alerts: resuming from the queue's last_seq replays anything raised or
  // cleared between the two reads, in order, onto the (newer) alert list: harmless.
  const cases = await api(`${cfg.casesUrl}?limit=1000`);
  const alertList = await api(cfg.alertsUrl);
  return { ...cases, alerts: alertList };
}

/** Supervisor or not decides which controls show (surge, bulk status, reports): GET /api/v1/me says. */
async function detectSupervisor() {
  let boss = false;
  try {
    const me = await api(cfg.meUrl);
    boss = me.supervisor === true;
  } catch (err) {
    boss = false;
  }
  state.supervisor = boss;
  root.classList.toggle("is-supervisor", boss);
  els.reports.hidden = !boss;
  bulk.enable(boss);
  surge.render();
}

const CONN_STATE = { connecting: "connecting", live: "connected", reconnecting: "reconnecting", offline: "reconnecting" };

const client = new StreamClient({
  path: cfg.wsPath,
  token: null,
  snapshot: fetchSnapshot,
  onSnapshot: applySnapshot,
  onEvent: applyEvent,
  onState: (s) => {
    if (state.connState === "signed-out") return;
    setConnState(CONN_STATE[s] || "connecting");
    if (s === "live") showError(null);
  },
  onEnded: () => setConnState("signed-out"),
});

// For tests and for curious dispatchers with a devtools console.
window.oneKeyConsole = {
  get lastSeq() { return client.lastSeq; },
  get connected() { return Boolean(client.ready && client.state === "live"); },
  get socket() { return client.socket; },
  get state() { return state.connState; },
  get selected() { return state.selected; },
  get soundsPlayed() { return Number(root.dataset.soundsPlayed || 0); },
  get supervisor() { return state.supervisor; },
  get surge() { return Boolean(state.centre && state.centre.active); },
  alerts: () => alerts.list(),
  caseIds() { return [...state.cases.keys()]; },
  select,
  reconnectNow: () => client.reconnectNow(),
  map: () => ctx.map,
};

setConnState("connecting");
layoutRows(ctx);
renderSummary(ctx);
window.setInterval(tick, 1000);
window.setInterval(() => units.tick(), 5000);
client.start();
detectSupervisor();
