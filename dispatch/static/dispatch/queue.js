/*
 * queue.js — the case table: one row per active case, in working order (waiting for a unit first,
 * longest waiting first; then cases under way, newest first; ended cases greyed out for a while).
 * Clicking a row (or its Details button) selects the case, as clicking it on the map does.
 */

import { serverNow } from "/static/onekey/api.js";
import { renderHealthBadge } from "./health.js";
import {
  ENDED,
  ETA_TARGET,
  bi,
  el,
  formatCoord,
  formatDuration,
  formatEta,
  formatLocalTime,
  label,
  parseTime,
  placeText,
  telLink,
} from "./labels.js";

const COLUMNS = ["id", "waiting", "status", "complaint", "location", "patient", "unit", "hospital", "actions"];

export function createEntry(ctx, data) {
  const row = el("tr", { class: "case-row" });
  const cells = {};
  for (const name of COLUMNS) {
    const cell = el(name === "id" ? "th" : "td", { class: `col-${name}` });
    if (name === "id") {
      cell.setAttribute("scope", "row");
      cell.tabIndex = -1;
    }
    cells[name] = cell;
    row.append(cell);
  }
  // Parts of cells that other modules address by class (tests too).
  cells.number = el("span", { class: "case-number" });
  cells.received = el("span", { class: "col-received small muted" });
  cells.id.append(cells.number, el("br"), cells.received);
  cells.who = el("span", { class: "who" });
  cells.health = el("span", { class: "col-health" });
  cells.patient.append(cells.who, el("br"), cells.health);

  const entry = { id: data.id, data, health: null, row, cells, panel: null, endedAt: null, etaAt: null, fresh: false };
  const button = el(
    "button",
    { type: "button", class: "button small details", "aria-expanded": "false", "aria-controls": "details" },
    bi("Details", "详情"),
  );
  button.addEventListener("click", (event) => {
    event.stopPropagation();
    ctx.toggleSelect(entry.id);
  });
  cells.actions.append(button);
  entry.detailsButton = button;
  // The whole row selects too (a bigger target than the button), except its links.
  row.addEventListener("click", (event) => {
    if (event.target.closest("a, button")) return;
    ctx.select(entry.id);
  });
  renderHealthBadge(cells.health, null);
  return entry;
}

function lines(cell, ...parts) {
  cell.textContent = "";
  parts.filter((p) => p != null && p !== "").forEach((part, index) => {
    if (index > 0) cell.append(el("br"));
    cell.append(part instanceof Node ? part : document.createTextNode(String(part)));
  });
}

/** Seconds left to the unit's (or the admission's) target, counting down between events. */
export function etaLeft(entry, now) {
  if (entry.etaAt == null) return null;
  return Math.max(0, Math.round((entry.etaAt - now) / 1000));
}

export function admissionEtaLeft(admission, now) {
  if (!admission) return null;
  const at = parseTime(admission.eta_at);
  if (at != null) return Math.max(0, Math.round((at - now) / 1000));
  return Number.isFinite(admission.eta_s) ? admission.eta_s : null;
}

export function renderRow(ctx, entry) {
  const c = entry.data;
  const { row, cells } = entry;
  row.dataset.caseId = c.id;
  row.dataset.status = c.status;
  row.classList.toggle("ended", ENDED.has(c.status));
  row.classList.toggle("selected", ctx.state.selected === c.id);
  row.setAttribute("aria-selected", String(ctx.state.selected === c.id));

  cells.number.textContent = `#${c.id}`;
  const received = parseTime(c.received_at);
  cells.received.textContent = received == null ? "—" : formatLocalTime(received);
  if (received != null) cells.received.title = new Date(received).toLocaleString();

  cells.status.textContent = "";
  cells.status.append(el("span", { class: `badge status-${c.status}` }, label("case_status", c.status)));

  lines(cells.complaint, label("complaint", c.complaint), c.note ? el("span", { class: "note small muted", title: c.note }, c.note) : null);

  const acc = Number.isFinite(c.accuracy_m) ? `±${Math.round(c.accuracy_m)} m` : "";
  const place = el("span", { class: "place" }, placeText(c));
  const coords = c.address ? `${formatCoord(c.lat)}, ${formatCoord(c.lon)} ${acc}`.trim() : acc;
  lines(cells.location, place, coords ? el("span", { class: "small muted coords" }, coords) : null);

  const who = c.for_self ? bi("The caller", "呼叫人本人") : bi("Someone else", "他人");
  cells.who.textContent = "";
  cells.who.append(who);
  const name = patientName(entry);
  if (name) cells.who.append(" · ", el("strong", { class: "patient-name" }, name));
  const tel = telLink(c.caller_phone);
  if (tel) cells.who.append(el("br"), tel);

  renderUnitCell(entry, serverNow());
  renderHospitalCell(entry, serverNow());

  entry.detailsButton.hidden = ENDED.has(c.status);
  entry.detailsButton.setAttribute("aria-expanded", String(ctx.state.selected === c.id));
  renderWaiting(ctx, entry, serverNow());
}

/** The patient's name when known: the caller's own account (a call for themselves), or the archive. */
export function patientName(entry) {
  const s = entry.health && entry.health.available ? entry.health.summary || {} : null;
  if (s && s.name) return String(s.name);
  if (entry.data.for_self && entry.data.caller_name) return String(entry.data.caller_name);
  return "";
}

export function renderUnitCell(entry, now) {
  const unit = entry.data.ambulance;
  const cell = entry.cells.unit;
  if (!unit) {
    lines(cell, "—");
    return;
  }
  const eta = etaLeft(entry, now);
  const target = ETA_TARGET[entry.data.eta_target];
  lines(
    cell,
    el("strong", { class: "call-sign" }, unit.call_sign),
    el("span", { class: "small muted unit-status" }, label("unit_status", unit.status)),
    eta != null && target ? el("span", { class: "small eta unit-eta" }, `ETA ${formatEta(eta)} `, bi(...target)) : null,
  );
}

export function renderHospitalCell(entry, now) {
  const hospital = entry.data.hospital;
  const adm = entry.data.admission && entry.data.admission.status !== "cancelled" ? entry.data.admission : null;
  const cell = entry.cells.hospital;
  if (!hospital) {
    lines(cell, "—");
    return;
  }
  const name = el("span", { class: "hospital-name" }, `${hospital.name_zh || hospital.name_en} (${hospital.code})`);
  let admText = null;
  if (adm) {
    admText = el("span", { class: "small muted admission" }, label("admission_status", adm.status));
    if (adm.registration_no) admText.append(" · ", el("strong", { class: "registration" }, `#${adm.registration_no}`));
    const left = admissionEtaLeft(adm, now);
    if (!adm.registration_no && left != null && adm.status !== "arrived" && adm.status !== "handed_over") {
      admText.append(" · ", el("span", { class: "eta admission-eta" }, `ETA ${formatEta(left)}`));
    }
  }
  lines(cell, name, admText);
}

export function renderWaiting(ctx, entry, now) {
  const c = entry.data;
  const cell = entry.cells.waiting;
  const received = parseTime(c.received_at);
  let overdue = false;
  if (received == null || ENDED.has(c.status)) {
    cell.textContent = ENDED.has(c.status) ? label("case_status", c.status) : "—";
  } else if (c.status === "received") {
    const waited = now - received;
    overdue = waited > ctx.cfg.unassignedAlertMs;
    cell.textContent = formatDuration(waited);
    if (overdue) {
      const s = Math.round(ctx.cfg.unassignedAlertMs / 1000);
      cell.append(" ", el("span", { class: "overdue-flag" }, bi(`no unit > ${s} s`, `超过 ${s} 秒未派车`)));
    }
  } else {
    const notified = parseTime(c.notified_at);
    cell.textContent = "";
    if (notified != null) {
      cell.append(`${formatDuration(notified - received)} `, el("span", { class: "small muted" }, bi("to dispatch", "派车用时")));
    } else {
      cell.append(formatDuration(now - received));
    }
  }
  entry.row.classList.toggle("overdue", overdue);
  entry.overdue = overdue;
}

function sortKey(entry) {
  const c = entry.data;
  const received = parseTime(c.received_at) || 0;
  if (ENDED.has(c.status)) return [2, -(entry.endedAt || 0), -c.id];
  if (c.status === "received") return [0, received, c.id]; // the queue: longest waiting first
  return [1, -received, -c.id]; // under way: newest first
}

function compareKeys(a, b) {
  for (let i = 0; i < a.length; i += 1) {
    if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  }
  return 0;
}

/** Put rows in order, moving only those out of place (moving a node keeps its state). */
export function layoutRows(ctx) {
  const entries = [...ctx.state.cases.values()];
  const keys = new Map(entries.map((e) => [e, sortKey(e)]));
  entries.sort((a, b) => compareKeys(keys.get(a), keys.get(b)));
  let cursor = ctx.els.rows.firstChild;
  for (const entry of entries) {
    if (entry.row === cursor) cursor = cursor.nextSibling;
    else ctx.els.rows.insertBefore(entry.row, cursor);
  }
  ctx.els.empty.hidden = ctx.state.cases.size > 0;
}

export function renderSummary(ctx) {
  let active = 0;
  let waiting = 0;
  let overdue = 0;
  for (const entry of ctx.state.cases.values()) {
    const c = entry.data;
    if (ENDED.has(c.status)) continue;
    active += 1;
    if (c.status === "received") {
      waiting += 1;
      if (entry.overdue) overdue += 1;
    }
  }
  const s = Math.round(ctx.cfg.unassignedAlertMs / 1000);
  const text = `${active} active 进行中 · ${waiting} waiting for a unit 待派车 · ${overdue} of them over ${s} s 其中超过 ${s} 秒`;
  if (ctx.els.summary.textContent !== text) ctx.els.summary.textContent = text;
}
