/*
 * queue.js — the case table: one row per active case, in the server's working order
 * (dispatch/selectors.py QUEUE_ORDER_RULE, mirrored once in queueKey below so a case an event
 * changed is re-placed the same way); ended cases greyed out at the bottom for a while.
 * Clicking a row (or its Details button) selects the case, as clicking it on the map does.
 */

import { t, tf } from "/static/onekey/i18n.js";
import { serverNow } from "/static/onekey/api.js";
import { renderHealthBadge } from "./health.js";
import { reasonText } from "./priority.js";
import {
  ENDED,
  ETA_TARGET,
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
  cells.priority = el("span", { class: "prio" });
  cells.flags = el("span", { class: "case-flags" });
  cells.id.append(cells.priority, " ", cells.number, el("br"), cells.received, cells.flags);
  cells.who = el("span", { class: "who" });
  cells.health = el("span", { class: "col-health" });
  cells.patient.append(cells.who, el("br"), cells.health);

  const entry = { id: data.id, data, health: null, row, cells, panel: null, endedAt: null, etaAt: null, fresh: false };
  const button = el(
    "button",
    { type: "button", class: "button small details", "aria-expanded": "false", "aria-controls": "details" },
    t("Details"),
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
  renderPriorityBadge(cells.priority, c);
  renderFlags(ctx, entry);
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

  const who = c.for_self ? t("The caller") : t("Someone else");
  cells.who.textContent = "";
  cells.who.append(who);
  const name = patientName(entry);
  if (name) cells.who.append(" · ", el("strong", { class: "patient-name" }, name));
  // A silent caller cannot speak: the number is not a thing to click.
  const tel = c.silent ? el("span", { class: "silent-mark small" }, t("silent — text only")) : telLink(c.caller_phone);
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
    eta != null && target ? el("span", { class: "small eta unit-eta" }, tf("ETA %(eta)s %(target)s", { eta: formatEta(eta), target })) : null,
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
    if (c.merged_into) cell.append(el("br"), el("span", { class: "small merged-note" }, tf("merged into #%(id)s", { id: c.merged_into })));
  } else if (c.status === "received") {
    // Overdue is the server's word (a raised case_unassigned alert), with its per-priority threshold.
    overdue = Boolean(ctx.alertsFor && ctx.alertsFor(c.id).some((a) => a.kind === "case_unassigned"));
    cell.textContent = formatDuration(now - received);
    if (overdue) cell.append(" ", el("span", { class: "overdue-flag" }, t("overdue")));
  } else {
    const notified = parseTime(c.notified_at);
    cell.textContent = "";
    if (notified != null) {
      cell.append(`${formatDuration(notified - received)} `, el("span", { class: "small muted" }, t("to dispatch")));
    } else {
      cell.append(formatDuration(now - received));
    }
  }
  entry.row.classList.toggle("overdue", overdue);
  entry.overdue = overdue;
}

/**
 * QUEUE_ORDER_RULE (dispatch/selectors.py), the one client-side copy: waiting for a unit (status
 * received) before the rest, then priority (1 first), then the oldest call, then the id; in surge
 * priority comes strictly first. Ended cases, which the server no longer lists, sink to the bottom.
 */
export function queueKey(data, { surge = false, endedAt = 0 } = {}) {
  if (ENDED.has(data.status)) return [1, 0, 0, -(endedAt || 0), -data.id];
  const waiting = data.status === "received" ? 0 : 1;
  const priority = Number.isFinite(data.priority) ? data.priority : 9;
  const received = parseTime(data.received_at) || 0;
  return surge ? [0, priority, waiting, received, data.id] : [0, waiting, priority, received, data.id];
}

function compareKeys(a, b) {
  for (let i = 0; i < a.length; i += 1) {
    if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  }
  return 0;
}

export function renderPriorityBadge(node, c) {
  const p = Number.isFinite(c.priority) ? c.priority : null;
  node.className = `prio prio-${p || "none"}`;
  node.textContent = p ? `P${p}` : "P?";
  node.title = reasonText(c);
  node.setAttribute("aria-label", p ? tf("Priority %(p)s", { p }) : t("Priority not set"));
}

function renderFlags(ctx, entry) {
  const c = entry.data;
  const flags = entry.cells.flags;
  flags.textContent = "";
  if (c.silent) flags.append(el("br"), el("span", { class: "badge silent-badge" }, t("silent")));
  if (c.possible_duplicate_of && !ENDED.has(c.status)) {
    const dup = el("button", { type: "button", class: "link-like dup-badge", "data-duplicate-of": c.possible_duplicate_of },
      tf("possible duplicate of #%(id)s", { id: c.possible_duplicate_of }));
    dup.addEventListener("click", (event) => {
      event.stopPropagation();
      ctx.select(c.possible_duplicate_of);
    });
    flags.append(el("br"), dup);
  }
}

/** Put rows in order, moving only those out of place (moving a node keeps its state). */
export function layoutRows(ctx) {
  const entries = [...ctx.state.cases.values()];
  const surge = Boolean(ctx.state.centre && ctx.state.centre.active);
  const keys = new Map(entries.map((e) => [e, queueKey(e.data, { surge, endedAt: e.endedAt })]));
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
  const text = tf("%(active)s active · %(waiting)s waiting for a unit · %(overdue)s of them overdue", { active, waiting, overdue });
  if (ctx.els.summary.textContent !== text) {
    ctx.els.summary.textContent = text;
    ctx.els.summary.title = text; // the bar may cut it short at 1366 px
  }
}
