/*
 * crew.js — the crew tablet (车组终端): the unit's assignment, live from /ws/ambulances/{id}/,
 * the status buttons of the lifecycle, GPS reporting, and presses that survive a tunnel.
 *
 * Modules: geo.js (distance, ETA, navigation links), outbox.js (queued presses with Idempotency-Key),
 * gps.js (watchPosition + manual fixes), health.js (the patient's summary), dom.js (elements).
 * Shared: /static/onekey/stream.js (the stream protocol), api.js, sound.js, map.js.
 */

import { api } from "/static/onekey/api.js";
import { AnswersAhead, StreamClient, SIGN_IN_AGAIN_CODES } from "/static/onekey/stream.js";
import { isMuted, playAlert, setMuted } from "/static/onekey/sound.js";
import { el } from "/static/onekey/dom.js";
import { distanceM, distanceText, durationText, etaS, isPoint, navigationLinks } from "./geo.js";
import { GpsReporter } from "./gps.js";
import { renderHealth } from "./health.js";
import { Outbox } from "./outbox.js";
import { IS_ZH, choice, localized, t, tf } from "/static/onekey/i18n.js";
import { priorityReasonText } from "/static/onekey/priority_basis.js";

const cfg = JSON.parse(document.getElementById("crew-config").textContent);
const UNIT = cfg.ambulance;
const label = (kind, value) => choice((cfg.labels[kind] && cfg.labels[kind][value]) || value || "");
const reasonText = (c) => priorityReasonText(c, (complaint) => label("complaint", complaint));

// The buttons, in lifecycle order: [press, words on the button].
const STEPS = [
  ["en_route", t("En route")],
  ["on_scene", t("On scene")],
  ["transporting", t("Transporting")],
  ["at_hospital", t("At hospital")],
  ["handed_over", t("Handed over")],
  ["available", t("Available")],
];
// What each press makes of the case, and what may follow each case status (services._CREW_STEPS).
const RESULT = { en_route: "en_route", on_scene: "on_scene", transporting: "transporting", at_hospital: "at_hospital", handed_over: "handed_over", available: "closed" };
const NEXT = {
  dispatched: ["en_route"],
  en_route: ["on_scene"],
  on_scene: ["transporting", "available"],
  transporting: ["at_hospital"],
  at_hospital: ["handed_over", "available"],
  handed_over: ["available"],
};
const ORDER = ["dispatched", "en_route", "on_scene", "transporting", "at_hospital", "handed_over", "closed"];
const ENDED = new Set(["closed", "cancelled"]);
const STEP_TEXT = Object.fromEntries(STEPS);
const PRIORITY_WORDS = {
  1: t("Life-threatening: every minute counts"),
  2: t("Urgent call"),
  3: t("Less urgent call"),
  4: t("Non-urgent call"),
};

const $ = (id) => document.getElementById(id);
const state = {
  unit: null,
  case: null,
  admission: null,
  health: null,
  suggestions: [],
  hospitals: new Map(), // id -> HospitalSerializer data (ED status, free beds)
  choosing: false,
  connection: "connecting",
  fix: null,
};
let map = null;
// The unit's status as our presses were answered, against the stream's (status_at).
const unitAnswers = new AnswersAhead();

// --- snapshot and events ---------------------------------------------------------------------------

async function snapshot() {
  // The assignment carries last_seq and (since issue 7) the unit; an older server gets a second
  // read, made after last_seq, so it can only be newer (events in between are replayed).
  const assignment = await api(`/api/v1/ambulances/${UNIT}/assignment`);
  const unit = assignment.unit || (await api(`/api/v1/ambulances/${UNIT}`));
  return { ...assignment, unit };
}

function onSnapshot(snap) {
  const before = state.case && state.case.id;
  state.unit = snap.unit;
  // A snapshot read before our press committed is followed by that press's event (replayed).
  unitAnswers.clear();
  setCase(snap.case, { health: snap.health_summary });
  state.admission = snap.admission;
  state.suggestions = snap.suggested_hospitals || [];
  // The snapshot's hospitals are as new as its last_seq: an ED status kept from events before a
  // resync must not paint over them (the choice merges state.hospitals on top of the suggestion).
  for (const s of state.suggestions) state.hospitals.set(s.hospital.id, s.hospital);
  if (snap.case && snap.case.id !== before) announce();
  render();
}

function onEvent({ event, data }) {
  if (event.startsWith("case.")) applyCase(event, data);
  else if (event.startsWith("unit.") && data.id === UNIT) state.unit = mergeUnit(state.unit, data, unitAnswers.event(UNIT, data.status_at));
  else if (event.startsWith("admission.") && state.case && data.case === state.case.id) state.admission = data;
  else if (event === "hospital.status_changed") state.hospitals.set(data.id, data);
  render();
}

/** The unit from an event or an answer to our press, keeping the status shown when that is newer. */
function mergeUnit(unit, data, fresh) {
  return fresh || !unit ? { ...unit, ...data } : { ...unit, ...data, status: unit.status, status_at: unit.status_at };
}

function applyCase(event, payload) {
  const { health_summary: health, ...data } = payload;
  const ours = data.ambulance && data.ambulance.id === UNIT;
  const current = state.case && state.case.id === data.id;
  if (!current && !(ours && event === "case.assigned")) return;
  if (!ours || ENDED.has(data.status)) {
    // Over, or given to another unit: nothing of it (least of all health data) stays on screen.
    const why = !ours ? t("Reassigned to another unit") : data.status === "cancelled" ? t("Cancelled") : null;
    if (why) notice(`${why}: #${data.id}`);
    if (why) playAlert("info");
    setCase(null);
    return;
  }
  const isNew = !current;
  const before = state.case;
  // Events come in order, but the server's answer to our own press comes beside them and may be
  // ahead: a loaded stream can still bring "en route" after "on scene" was answered. A case only
  // moves forward while it is ours (a reassignment takes it away), so an older step is stale.
  if (!isNew && ORDER.indexOf(data.status) < ORDER.indexOf(before.status)) data.status = before.status;
  setCase(data, { health, keep: !isNew });
  if (!isNew) noteChange(event, before, data);
  if (isNew) {
    state.admission = null;
    state.suggestions = [];
    announce();
  }
}

/** What the crew must hear about a change to its case while on it (triage, merge). */
function noteChange(event, before, data) {
  if (event === "case.triaged" && before && data.priority !== before.priority) {
    notice(tf("Priority now P%(p)s: %(reason)s", { p: data.priority, reason: reasonText(data) }));
    if (data.priority < before.priority) playAlert("info");
  } else if (event === "case.merged") {
    // This case is the one kept: another caller's report of the same emergency joined it.
    state.mergedNote = t("Another caller reported the same emergency; their report was merged into this case.");
    notice(state.mergedNote);
    playAlert("info");
  }
}

function setCase(data, { health = null, keep = false } = {}) {
  if (!data || !state.case || state.case.id !== data.id) state.mergedNote = null;
  state.case = data || null;
  if (!data) {
    state.admission = null;
    state.suggestions = [];
    state.choosing = false;
  }
  if (health) state.health = health;
  else if (!keep) state.health = null;
}

function announce() {
  playAlert("assignment");
  const card = $("case");
  card.classList.remove("flash");
  void card.offsetWidth; // restart the animation
  card.classList.add("flash");
}

// --- presses ----------------------------------------------------------------------------------------

const outbox = new Outbox({
  ambulanceId: UNIT,
  onSent: (item, unit) => {
    state.unit = mergeUnit(state.unit, unit, unitAnswers.answer(UNIT, unit.status_at, state.unit && state.unit.status_at));
    // The server applied it; the stream will say so too, but the buttons need not wait for it.
    const result = RESULT[item.body.status];
    const sameCase = state.case && (item.body.case == null || item.body.case === state.case.id);
    if (sameCase && result && ORDER.indexOf(result) > ORDER.indexOf(state.case.status)) {
      if (result === "closed") setCase(null);
      else state.case = { ...state.case, status: result };
    }
    render();
  },
  onRefused: (item, err, { kept = false } = {}) => {
    const what = STEP_TEXT[item.body.status] || item.body.status;
    showError(kept ? `${what}: ${t("sign in again to send it")} (${err.detail})` : `${what}: ${err.detail}`);
    render();
  },
  onChange: () => renderOutbox(),
});

/** The case status once every queued press is applied: what the buttons follow. */
function effectiveStatus() {
  let status = state.case ? state.case.status : null;
  for (const item of outbox.pending()) {
    const result = RESULT[item.body.status];
    if (status && result && ORDER.indexOf(result) > ORDER.indexOf(status)) status = result;
  }
  return status;
}

function legalPresses() {
  const status = effectiveStatus();
  if (status && status !== "closed") return new Set(NEXT[status] || []);
  // No case (or the queued presses close it): the unit goes between available and out of service.
  const queued = outbox.pending().map((i) => i.body.status);
  const last = queued[queued.length - 1];
  const unitStatus = last ? (last === "out_of_service" ? "out_of_service" : "available") : state.unit && state.unit.status;
  if (unitStatus === "out_of_service") return new Set(["available"]);
  if (unitStatus === "available" || status === "closed") return new Set(["out_of_service"]);
  return new Set();
}

function press(status, extra = {}) {
  showError(null);
  state.choosing = false;
  // Name the case pressed for: if it was cancelled or reassigned while this press waited in a
  // tunnel, the server refuses it instead of applying it to the next case.
  const about = state.case && status !== "out_of_service" ? { case: state.case.id } : {};
  outbox.push({ status, ...about, ...extra });
  render();
}

async function chooseHospital() {
  state.choosing = true;
  render();
  // Fresh suggestions and ED status when the network allows; the last ones otherwise.
  try {
    const [assignment, hospitals] = await Promise.all([api(`/api/v1/ambulances/${UNIT}/assignment`), api("/api/v1/hospitals")]);
    if (assignment.case && state.case && assignment.case.id === state.case.id) {
      state.suggestions = assignment.suggested_hospitals || [];
      if (assignment.health_summary) state.health = assignment.health_summary;
    }
    for (const h of hospitals) state.hospitals.set(h.id, h);
  } catch (err) {
    console.warn("suggestions not refreshed", err && err.detail);
  }
  render();
}

// --- rendering --------------------------------------------------------------------------------------

function render() {
  renderBar();
  renderCase();
  renderButtons();
  renderHospitalChoice();
  renderOutbox();
  renderMap();
}

function renderBar() {
  const unit = state.unit;
  const status = $("unit-status");
  status.dataset.status = unit ? unit.status : "";
  status.textContent = unit ? label("unit_status", unit.status) : "";
  const conn = $("connection");
  conn.dataset.state = state.connection;
  const words = { connecting: t("Connecting…"), live: t("Live"), reconnecting: t("Reconnecting…"), offline: t("Offline") }[state.connection] || "";
  conn.replaceChildren(words);
  const mute = $("mute");
  mute.setAttribute("aria-pressed", String(isMuted()));
  mute.replaceChildren(isMuted() ? t("Sound off") : t("Sound on"));
}

function destination() {
  const c = state.case;
  if (!c) return null;
  if (["transporting", "at_hospital", "handed_over"].includes(c.status) && c.hospital) {
    return { lat: c.hospital.lat, lon: c.hospital.lon, name: c.hospital.name_zh || c.hospital.name_en, hospital: true };
  }
  return { lat: c.lat, lon: c.lon, name: localized(c, "address") || localized(c, "district") || "" };
}

function unitPosition() {
  if (state.fix) return state.fix;
  const u = state.unit;
  return u && isPoint(u.lat, u.lon) ? { lat: u.lat, lon: u.lon } : null;
}

function renderCase() {
  const c = state.case;
  const card = $("case");
  card.dataset.caseId = c ? String(c.id) : "";
  card.dataset.status = c ? effectiveStatus() || c.status : "";
  $("no-case").hidden = Boolean(c);
  $("case-body").hidden = !c;
  if (!c) {
    // Hidden is not gone: a closed case's health data and the caller's number leave the page.
    for (const id of ["priority", "merged-note"]) $(id).replaceChildren();
    $("silent-marker").hidden = true;
    $("merged-note").hidden = true;
    for (const id of ["complaint", "address", "distance", "nav-links", "caller", "note", "admission", "health-body"]) $(id).replaceChildren();
    return;
  }
  renderPriority(c);
  $("silent-marker").hidden = !c.silent;
  $("merged-note").hidden = !state.mergedNote;
  $("merged-note").textContent = state.mergedNote || "";
  $("complaint").replaceChildren(el("strong", {}, label("complaint", c.complaint)), ` · #${c.id} · `, label("case_status", effectiveStatus() || c.status));
  const place = localized(c, "address") || localized(c, "district");
  const coords = `${Number(c.lat).toFixed(5)}, ${Number(c.lon).toFixed(5)}`;
  $("address").replaceChildren(place ? el("span", {}, place, " ", el("span", { class: "muted small" }, coords)) : el("span", {}, coords));
  const dest = destination();
  const from = unitPosition();
  if (dest && from && isPoint(dest.lat, dest.lon)) {
    const metres = distanceM(from.lat, from.lon, dest.lat, dest.lon);
    const seconds = etaS(metres, { roadFactor: cfg.etaRoadFactor, speedKmh: cfg.etaSpeedKmh });
    $("distance").replaceChildren(
      dest.hospital ? t("To hospital") : t("To scene"),
      ": ",
      el("strong", { id: "distance-m" }, distanceText(metres)),
      ` · ${t("ETA")} `,
      el("strong", { id: "eta" }, durationText(seconds)),
    );
  } else {
    $("distance").replaceChildren();
  }
  const nav = $("nav-links");
  nav.replaceChildren();
  if (dest && isPoint(dest.lat, dest.lon)) {
    const links = navigationLinks(dest);
    nav.append(
      el("a", { class: "button nav", href: links.amap, id: "nav-amap" }, t("Amap")),
      el("a", { class: "button nav", href: links.baidu, id: "nav-baidu" }, t("Baidu")),
      el("a", { class: "button nav", href: links.geo, id: "nav-geo" }, t("Map app")),
    );
  }
  const caller = $("caller");
  caller.replaceChildren();
  // A silent caller (deaf, or hiding) must not be rung: the phone would give them away.
  if (c.caller_phone && !c.silent) {
    caller.append(
      el("a", { class: "button call", href: `tel:${c.caller_phone}`, id: "call-caller" }, t("Call caller"), ` ${c.caller_phone}`),
      c.for_self === false ? el("span", { class: "muted" }, " ", t("(called for someone else)")) : "",
    );
  }
  $("note").textContent = c.note || "";
  const adm = state.admission;
  const admBox = $("admission");
  admBox.hidden = !adm;
  if (adm) {
    const hospital = state.hospitals.get(adm.hospital) || c.hospital;
    admBox.replaceChildren(
      t("Admission"),
      `: ${hospital ? hospitalName(hospital) : `#${adm.hospital}`} · ${label("admission_status", adm.status)}`,
      adm.registration_no ? el("strong", { id: "registration-no" }, ` · ${tf("Reg. no. %(no)s", { no: adm.registration_no })}`) : "",
    );
  }
  renderHealth($("health-body"), state.health);
}

function renderPriority(c) {
  const box = $("priority");
  const p = Number(c.priority);
  box.dataset.priority = Number.isInteger(p) ? String(p) : "";
  box.replaceChildren();
  if (!Number.isInteger(p)) return;
  box.append(
    el("span", { class: `priority-badge p${p}`, id: "priority-badge" }, `P${p}`),
    " ",
    el("span", { class: "priority-words" }, PRIORITY_WORDS[p] || ""),
  );
  const why = reasonText(c);
  if (why) box.append(el("span", { class: "priority-reason muted", id: "priority-reason" }, ` · ${why}`));
}

/** A hospital's name in the page's language (the other one when that is missing). */
function hospitalName(h) {
  return (IS_ZH ? h.name_zh || h.name_en : h.name_en || h.name_zh) || "";
}

function renderButtons() {
  const box = $("status-buttons");
  const legal = legalPresses();
  const pending = new Set(outbox.pending().map((i) => i.body.status));
  if (!box.childElementCount) {
    for (const [status, words] of STEPS) {
      box.append(
        el("button", { type: "button", class: `status-button step-${status}`, dataset: { status }, onclick: () => onPress(status) }, el("span", { class: "step-words" }, words)),
      );
    }
  }
  // While a destination is chosen the list takes the column; 返回 brings the buttons back.
  box.hidden = state.choosing;
  for (const button of box.querySelectorAll("button")) {
    const status = button.dataset.status;
    button.disabled = !legal.has(status) || state.choosing;
    button.classList.toggle("pending", pending.has(status));
  }
  const oos = $("out-of-service");
  oos.hidden = !legal.has("out_of_service") || state.choosing;
  oos.replaceChildren(t("Out of service"));
}

function onPress(status) {
  if (status === "transporting") chooseHospital();
  else press(status);
}

function renderHospitalChoice() {
  const box = $("hospital-choice");
  box.hidden = !state.choosing;
  if (!state.choosing) return;
  const list = $("hospital-list");
  list.replaceChildren();
  for (const s of state.suggestions) {
    const h = { ...s.hospital, ...(state.hospitals.get(s.hospital.id) || {}) };
    const diverting = h.ed_status === "diverting";
    list.append(
      el(
        "li",
        {},
        el(
          "button",
          { type: "button", class: `hospital-option${diverting ? " diverting" : ""}${s.capable ? "" : " not-capable"}`, dataset: { hospitalId: String(h.id) }, onclick: () => press("transporting", { hospital: h.id }) },
          el("strong", {}, hospitalName(h)),
          el("span", {}, tf("ETA %(eta)s", { eta: durationText(s.eta_s) })),
          el("span", { class: "ed-status" }, h.ed_status ? (diverting ? t("ED diverting") : t("ED open")) : ""),
          bedsText(h),
          s.capable ? "" : el("span", { class: "muted" }, t("not specialised")),
        ),
      ),
    );
  }
  list.append(
    el("li", {}, el("button", { type: "button", class: "hospital-option auto", onclick: () => press("transporting") }, t("Best suggestion (server decides)"))),
  );
}

/** Free beds as the server ranks them: declared free beds less the patients already incoming. */
function bedsText(h) {
  if (h.ed_free_beds == null) return el("span", {}, "");
  const incoming = Number(h.incoming) || 0;
  const free = Math.max(0, h.ed_free_beds - incoming);
  return el(
    "span",
    { class: `beds${incoming > 0 && free === 0 ? " full" : ""}`, "data-effective-beds": String(free) },
    tf("%(n)s beds free", { n: free }),
    incoming ? el("span", { class: "muted" }, ` (${tf("%(beds)s declared, %(n)s incoming", { beds: h.ed_free_beds, n: incoming })})`) : "",
  );
}

function renderOutbox() {
  const items = outbox.pending();
  const box = $("outbox");
  box.hidden = !items.length;
  box.dataset.pending = String(items.length);
  if (items.length) {
    box.replaceChildren(
      t("Waiting to send (sent once when back online)"),
      ": ",
      items.map((i) => STEP_TEXT[i.body.status] || i.body.status).join(" → "),
    );
  }
}

function renderGps(status, detail) {
  const gps = $("gps");
  gps.dataset.state = status;
  const fix = state.fix;
  const age = fix ? Math.max(0, Math.round((Date.now() - fix.at) / 1000)) : null;
  const words = {
    off: t("GPS off duty"),
    waiting: t("GPS waiting…"),
    gps: t("GPS"),
    manual: t("Manual position"),
    denied: t("GPS refused: set the position by hand"),
    unavailable: t("No GPS signal"),
  }[status] || t("GPS");
  gps.replaceChildren(words);
  if (fix) gps.append(` · ${tf("%(n)s s ago", { n: age })}${fix.accuracy_m ? ` · ±${tf("%(m)s m", { m: Math.round(fix.accuracy_m) })}` : ""}`);
  gps.title = detail || "";
  gps.classList.toggle("stale", age != null && age > 30);
}

// --- map --------------------------------------------------------------------------------------------

async function startMap() {
  try {
    const { createMap } = await import("/static/onekey/map.js");
    map = createMap($("map"), { tileUrl: cfg.tileUrl || null, tileAttribution: cfg.tileAttribution || "" });
    map.showDistricts().catch(() => {});
    map.onClick(({ lat, lon }) => {
      // A tap on a bumpy road must not move the unit while the GPS works.
      if (gps.state === "gps") return;
      $("manual-fix").elements.lat.value = lat.toFixed(6);
      $("manual-fix").elements.lon.value = lon.toFixed(6);
      gps.manual(lat, lon);
    });
    renderMap();
  } catch (err) {
    $("map").replaceChildren(el("p", { class: "muted" }, t("Map unavailable")));
    console.warn("map unavailable", err);
  }
}

let shownCase = null;
let fittedFor = null; // the destination the map was last framed for
function renderMap() {
  if (!map) return;
  const unit = state.unit;
  const pos = unitPosition();
  if (unit && pos) map.setUnit({ ...unit, lat: pos.lat, lon: pos.lon });
  const c = state.case;
  if (shownCase && (!c || c.id !== shownCase)) map.removeCase(shownCase);
  shownCase = c ? c.id : null;
  if (c) map.setCase(c);
  const dest = destination();
  if (dest && dest.hospital && c.hospital) map.setHospital({ ...c.hospital, ...(state.hospitals.get(c.hospital.id) || {}) });
  // Frame unit and destination once per destination, then leave the zoom to the crew.
  const target = c && dest ? `${c.id}:${dest.hospital ? `h${c.hospital.id}` : "scene"}` : null;
  if (target && target !== fittedFor && pos && isPoint(dest.lat, dest.lon)) {
    map.fitPoints([pos, { lat: dest.lat, lon: dest.lon }]);
    fittedFor = target;
  }
  map.showRoute(pos && dest ? pos : null, pos && dest ? dest : null);
}

// --- start ------------------------------------------------------------------------------------------

function showError(message) {
  const box = $("crew-error");
  box.textContent = message || "";
  box.hidden = !message;
}

function notice(message) {
  showError(message);
}

const gps = new GpsReporter({
  ambulanceId: UNIT,
  everyS: cfg.gpsEveryS,
  onFix: (fix) => {
    state.fix = fix;
    renderGps(gps.state);
    renderCase();
    renderMap();
  },
  onState: (status, detail) => renderGps(status, detail),
});

$("manual-fix").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const lat = Number.parseFloat(form.elements.lat.value);
  const lon = Number.parseFloat(form.elements.lon.value);
  if (!isPoint(lat, lon) || form.elements.lat.value.trim() === "" || form.elements.lon.value.trim() === "") {
    showError(t("Give latitude and longitude in degrees, e.g. 34.7466 and 113.6253"));
    return;
  }
  showError(null);
  gps.manual(lat, lon);
});
$("mute").addEventListener("click", () => {
  setMuted(!isMuted());
  renderBar();
});
$("out-of-service").addEventListener("click", () => press("out_of_service"));
$("hospital-cancel").addEventListener("click", () => {
  state.choosing = false;
  render();
});

const client = new StreamClient({
  path: `/ws/ambulances/${UNIT}/`,
  token: null,
  snapshot,
  onSnapshot: (snap) => {
    onSnapshot(snap);
    gps.setOnDuty(state.unit && state.unit.status !== "out_of_service");
  },
  onEvent: (frame) => {
    onEvent(frame);
    gps.setOnDuty(state.unit && state.unit.status !== "out_of_service");
  },
  onState: (connection) => {
    state.connection = connection;
    renderBar();
    if (connection === "live") outbox.flush();
  },
  onEnded: (code, frame) => {
    const signIn = SIGN_IN_AGAIN_CODES.has(code);
    showError(signIn ? t("Signed out: sign in again") : (frame && frame.detail) || tf("Stream ended (%(code)s)", { code }));
  },
});

// Only the fix age ticks; everything else changes with an event or a fix.
window.setInterval(() => renderGps(gps.state), 1000);
render();
startMap();
client.start();
outbox.flush();
// For tests and devtools.
window.oneKeyCrew = { state, outbox, client, gps };
