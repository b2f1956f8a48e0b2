/*
 * board.js — the hospital's admission board (院前接收), wiring only:
 *   snapshot  GET /api/v1/hospitals/{id}/admissions (+ today's arrivals, + the ED's own status,
 *             + GET /api/v1/hospitals/{id}/alerts: patients not acknowledged in time)
 *   stream    /ws/hospitals/{id}/ through /static/onekey/stream.js (session cookie)
 *   commands  acknowledge (POST /api/v1/admissions/{id}/acknowledge), ED status and beds (edstatus.js)
 * An unacknowledged patient (alert.raised, kind admission_unacknowledged) flashes and sounds again on
 * every repeat the server sends (ALERT_ADMISSION_ACK_S), until alert.cleared.
 * Cards: patients.js; ETA countdown: countdown.js; arrivals: arrivals.js; health summary: health.js.
 */

import { api } from "/static/onekey/api.js";
import { SIGN_IN_AGAIN_CODES, StreamClient } from "/static/onekey/stream.js";
import { isMuted, playAlert, setMuted } from "/static/onekey/sound.js";
import { arrivalOf, localMidnightIso, renderArrivals } from "./arrivals.js";
import { boardNow, noteServerTime } from "./clock.js";
import { etaState } from "./countdown.js";
import { el } from "./dom.js";
import { EdPanel } from "./edstatus.js";
import { PatientCard } from "./patients.js";
import { t, tf, tn, choice } from "/static/onekey/i18n.js";

const config = JSON.parse(document.getElementById("board-config").textContent);
const hospitalId = config.hospital.id;
const labels = config.labels;
// Admissions the ED is waiting for or receiving; handed over ones move to today's arrivals.
const ON_BOARD = new Set(["incoming", "acknowledged", "arrived"]);
const NEW_FOR_MS = 15000;

const $ = (id) => document.getElementById(id);
const list = $("incoming-list");
const cards = new Map(); // admission id -> PatientCard
const arrivals = new Map(); // admission id -> admission (no health data)
const alerts = new Map(); // alert id -> raised admission_unacknowledged alert about this hospital
// The board's day, clock and countdowns follow the server's time, not the PC's (clock.js).
noteServerTime(config.server_time, Date.now());
const today = () => localMidnightIso(new Date(boardNow()));
let since = today();
let loaded = false;

const ed = new EdPanel($("ed"), { hospitalId });
ed.show(config.hospital);

// --- commands ------------------------------------------------------------------------------------

async function acknowledge(admission, registrationNo) {
  return api(`/api/v1/admissions/${admission.id}/acknowledge`, { method: "POST", body: { registration_no: registrationNo } });
}

// --- state ---------------------------------------------------------------------------------------

function announce(text) {
  $("announcer").textContent = text;
}

function arrived(admission) {
  const card = new PatientCard(admission, { labels, onAcknowledge: acknowledge });
  cards.set(admission.id, card);
  return card;
}

function markNew(card) {
  card.node.classList.add("is-new");
  window.setTimeout(() => card.node.classList.remove("is-new"), NEW_FOR_MS);
  const a = card.admission;
  const { state, seconds } = etaState(a);
  const complaint = choice(labels.complaint[a.complaint] || a.complaint);
  const eta = state === "counting" ? tf(", ETA %(min)s min", { min: Math.max(1, Math.round(seconds / 60)) }) : "";
  announce(tf("New incoming patient: %(complaint)s%(eta)s", { complaint, eta }));
}

function alertNew() {
  playAlert("incoming");
}

/** Apply one admission as the server now has it. Returns true when it is new on the board. */
function applyAdmission(admission) {
  const id = admission.id;
  const card = cards.get(id);
  if (admission.hospital !== hospitalId || !ON_BOARD.has(admission.status)) {
    if (card) {
      card.node.remove();
      cards.delete(id);
    }
    if (admission.hospital === hospitalId && admission.status === "handed_over") arrivals.set(id, arrivalOf(admission));
    else arrivals.delete(id);
    return false;
  }
  if (card) {
    card.update(admission);
    return false;
  }
  arrived(admission);
  return true;
}

// --- alerts: a patient the ED has not acknowledged in time ----------------------------------------

function isOurAlert(alert) {
  return alert && alert.kind === "admission_unacknowledged" && alert.hospital === hospitalId && alert.state === "raised";
}

/** Keep an alert as the server has it. Returns true when it is new or repeated (ring again). */
function applyAlert(alert) {
  if (!isOurAlert(alert)) {
    if (alert) alerts.delete(alert.id);
    return false;
  }
  const before = alerts.get(alert.id);
  alerts.set(alert.id, alert);
  return !before || (Number(alert.repeats) || 0) > (Number(before.repeats) || 0);
}

function alertOfAdmission(admissionId) {
  for (const alert of alerts.values()) if (alert.admission === admissionId) return alert;
  return null;
}

function ring(alert) {
  const card = cards.get(alert.admission);
  if (card) {
    card.setAlert(alert);
    card.flash();
  }
  const unit = card && card.admission.ambulance ? card.admission.ambulance.call_sign : "";
  announce(tf("Patient not acknowledged yet (unit %(unit)s): enter the registration number.", { unit: unit || "—" }));
  playAlert("overdue");
}

function renderAlerts() {
  const open = [...alerts.values()].filter((a) => cards.has(a.admission) && cards.get(a.admission).admission.status === "incoming");
  for (const card of cards.values()) card.setAlert(alertOfAdmission(card.admission.id));
  const box = $("alerts");
  box.hidden = open.length === 0;
  $("alerts-count").textContent = String(open.length);
  $("alerts-list").replaceChildren(
    ...open.map((alert) => {
      const card = cards.get(alert.admission);
      const a = card.admission;
      const asked = (Number(alert.repeats) || 0) + 1;
      const goTo = el("button", { type: "button", class: "button small-button" }, t("Acknowledge"));
      goTo.addEventListener("click", () => {
        const input = card.node.querySelector("input[name=registration_no]");
        card.node.scrollIntoView({ block: "center" });
        if (input) input.focus();
      });
      return el(
        "li",
        { class: "alert-item", "data-alert-id": alert.id, "data-admission-id": alert.admission },
        el("strong", {}, choice(labels.complaint[a.complaint] || a.complaint)),
        " · ",
        tf("unit %(unit)s", { unit: (a.ambulance && a.ambulance.call_sign) || "—" }),
        " · ",
        tn("asked %(n)s time", "asked %(n)s times", asked, { n: asked }),
        " ",
        goTo,
      );
    }),
  );
}

function etaKey(admission) {
  if (admission.status === "arrived") return -Infinity; // at the door: first
  const at = admission.eta_at ? Date.parse(admission.eta_at) : NaN;
  return Number.isFinite(at) ? at : Infinity;
}

function render() {
  const ordered = [...cards.values()].sort(
    (x, y) => etaKey(x.admission) - etaKey(y.admission) || x.admission.id - y.admission.id,
  );
  const now = [...list.children];
  // Reorder only when the order changed: moving a card would take the focus out of its form.
  if (ordered.length !== now.length || ordered.some((card, i) => card.node !== now[i])) {
    list.replaceChildren(...ordered.map((card) => card.node));
  }
  $("incoming-count").textContent = String(ordered.length);
  $("incoming-empty").hidden = ordered.length > 0;
  const shown = renderArrivals($("arrival-rows"), arrivals, labels, { since });
  $("arrivals-count").textContent = String(shown);
  $("arrivals-empty").hidden = shown > 0;
  renderAlerts();
}

// --- the stream ----------------------------------------------------------------------------------

async function todaysArrivals() {
  const url = `/api/v1/hospitals/${hospitalId}/arrivals`;
  const sent = Date.now();
  let answer;
  try {
    answer = await api(`${url}?since=${encodeURIComponent(since)}`);
  } catch (err) {
    // Should the day still be wrong, the server's last 24 hours beat no board at all.
    if (!(err && err.status === 400)) throw err;
    answer = await api(url);
  }
  noteServerTime(answer.now, sent, Date.now());
  return answer;
}

async function snapshot() {
  // The feed first: its last_seq covers the reads after it (an event racing them is replayed,
  // and replaying a state already shown changes nothing).
  const feed = await api(`/api/v1/hospitals/${hospitalId}/admissions`);
  since = today();
  const [listed, hospitals, open] = await Promise.all([
    todaysArrivals(),
    api("/api/v1/hospitals"),
    api(`/api/v1/hospitals/${hospitalId}/alerts`),
  ]);
  return {
    last_seq: feed.last_seq,
    alerts: open.results,
    admissions: feed.results,
    arrivals: listed.results,
    hospital: (hospitals || []).find((h) => h.id === hospitalId) || null,
  };
}

function onSnapshot(snap) {
  const seen = new Set(cards.keys());
  const present = new Set(snap.admissions.map((a) => a.id));
  for (const [id, card] of cards) {
    if (!present.has(id)) {
      card.node.remove();
      cards.delete(id);
    }
  }
  arrivals.clear();
  for (const a of snap.arrivals) arrivals.set(a.id, arrivalOf(a));
  const fresh = [];
  for (const a of snap.admissions) {
    if (applyAdmission(a) && loaded && !seen.has(a.id)) fresh.push(cards.get(a.id));
  }
  const known = new Map(alerts);
  alerts.clear();
  const ringing = [];
  for (const alert of snap.alerts || []) {
    applyAlert(alert);
    const before = known.get(alert.id);
    if (isOurAlert(alert) && (!before || alert.repeats > before.repeats)) ringing.push(alert);
  }
  ed.show(snap.hospital);
  render();
  ringing.forEach(ring);
  // A patient who came on board while the board was disconnected is as new as a live one.
  if (fresh.length) {
    fresh.forEach(markNew);
    alertNew();
  }
  loaded = true;
}

function onEvent(frame) {
  if (frame.event === "hospital.status_changed") {
    if (frame.data.id === hospitalId) ed.show(frame.data);
    return;
  }
  if (frame.event === "alert.raised" || frame.event === "alert.cleared") {
    let again = false;
    if (frame.event === "alert.raised") again = applyAlert(frame.data);
    else alerts.delete(frame.data.id);
    render();
    if (again) ring(frame.data);
    return;
  }
  if (!frame.event.startsWith("admission.")) return;
  const isNew = applyAdmission(frame.data);
  render();
  if (isNew) {
    markNew(cards.get(frame.data.id));
    alertNew();
  }
}

const STATES = {
  connecting: t("Connecting…"),
  live: t("Live"),
  reconnecting: t("Reconnecting…"),
  offline: t("Offline"),
};

function onState(state) {
  const box = $("connection");
  box.dataset.state = state;
  box.className = `conn conn-${state}`;
  const en = STATES[state] || state;
  box.querySelector(".conn-text").replaceChildren(en);
}

function onEnded(code, frame) {
  const box = $("board-error");
  const detail = (frame && frame.detail) || t("The live feed has stopped.");
  box.replaceChildren(el("span", {}, detail, " "));
  if (SIGN_IN_AGAIN_CODES.has(code)) {
    const next = encodeURIComponent(window.location.pathname);
    box.append(el("a", { href: `${config.login_url}?next=${next}` }, t("Sign in again")));
  } else {
    box.append(t("Reload the page to try again."));
  }
  box.hidden = false;
}

const client = new StreamClient({ path: config.ws_path, token: null, snapshot, onSnapshot, onEvent, onState, onEnded });
client.start();

// --- every second: the countdowns, the clock, and the day's turn ---------------------------------

function tick() {
  for (const card of cards.values()) card.tick();
  $("clock").textContent = new Date(boardNow()).toLocaleTimeString("en-GB", { hour12: false });
  const day = today();
  if (day !== since) {
    since = day;
    render(); // yesterday's arrivals leave the list at midnight
  }
}
tick();
window.setInterval(tick, 1000);

// --- sound ---------------------------------------------------------------------------------------

const mute = $("mute");
function showMute() {
  const muted = isMuted();
  mute.setAttribute("aria-pressed", String(muted));
  mute.querySelector(".mute-on").hidden = muted;
  mute.querySelector(".mute-off").hidden = !muted;
}
mute.addEventListener("click", () => {
  setMuted(!isMuted());
  showMute();
});
document.addEventListener("onekey:mute", showMute);
showMute();

// Browsers keep a page silent until someone clicks or types on it (sound.js then unlocks audio):
// a wall screen nobody touched would miss the new-patient tone without this hint.
const hint = $("sound-hint");
if (!(navigator.userActivation && navigator.userActivation.hasBeenActive)) {
  hint.hidden = false;
  for (const type of ["pointerdown", "keydown"]) {
    window.addEventListener(type, () => { hint.hidden = true; }, { once: true, capture: true });
  }
}

// For tests and devtools: what the board shows, without reaching into its modules.
window.oneKeyBoard = {
  get incoming() {
    return [...cards.keys()];
  },
  get arrivals() {
    return [...arrivals.keys()];
  },
  get alerts() {
    return [...alerts.values()].map((a) => ({ id: a.id, admission: a.admission, repeats: a.repeats }));
  },
};
