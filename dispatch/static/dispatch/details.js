/*
 * details.js — the side panel of the selected case: who, where (address and coordinates), the
 * caller's phone as a tel: link, the unit with its live ETA to the scene, the destination with the
 * admission's live ETA and the hospital's registration number, the operations, the health summary,
 * and the ranked units to assign (or to send instead).
 */

import { choice, t, tf } from "/static/onekey/i18n.js";
import { serverNow } from "/static/onekey/api.js";
import { createHealthCard, showHealth } from "./health.js";
import { createOperations, REASSIGNABLE } from "./operations.js";
import { createMerge } from "./merge.js";
import { createThread } from "./messages.js";
import { createTriage, reasonText, triageText } from "./priority.js";
import { admissionEtaLeft, etaLeft, patientName, renderPriorityBadge } from "./queue.js";
import { createRecommendations } from "./recommendations.js";
import {
  ENDED,
  ETA_TARGET,
  el,
  formatCoord,
  formatEta,
  formatLocalTime,
  label,
  parseTime,
  placeText,
  telLink,
} from "./labels.js";

function fact(en, className) {
  const dd = el("dd", { class: className });
  return { dd, nodes: [el("dt", {}, en), dd] };
}

export function openDetails(ctx, entry) {
  const root = ctx.els.details;
  root.textContent = "";
  root.dataset.caseId = entry.id;
  const titleId = `details-title-${entry.id}`;
  const title = el("h2", { id: titleId, tabindex: "-1" }, tf("Case #%(id)s", { id: entry.id }));
  const badge = el("span", { class: "badge" });
  const close = el("button", { type: "button", class: "button small details-close", "aria-label": t("Close the details") }, "×");
  close.addEventListener("click", () => ctx.select(null));

  const facts = {
    received: fact(t("Received"), "fact-received"),
    priority: fact(t("Priority"), "fact-priority"),
    complaint: fact(t("Complaint"), "fact-complaint"),
    place: fact(t("Place"), "fact-place"),
    caller: fact(t("Caller"), "fact-caller"),
    patient: fact(t("Patient"), "fact-patient"),
    unit: fact(t("Unit"), "fact-unit"),
    hospital: fact(t("Hospital"), "fact-hospital"),
  };
  const dl = el("dl", { class: "case-facts" }, ...Object.values(facts).flatMap((f) => f.nodes));
  const unitNote = el("p", { class: "unit-note muted", hidden: true });

  const panel = {
    root,
    title,
    badge,
    facts,
    unitNote,
    assign: null,
    reassign: null,
    ...createHealthCard(ctx, entry),
  };
  entry.panel = panel;
  panel.ops = createOperations(ctx, entry);
  panel.alertBox = el("div", { class: "case-alerts", role: "status" });
  panel.thread = createThread(ctx, entry);
  panel.triage = createTriage(ctx, entry);
  panel.merge = createMerge(ctx, entry);
  panel.recHolder = el("div", { class: "rec-holder" });
  root.append(
    el("header", { class: "details-head" }, title, badge, close),
    panel.alertBox,
    dl,
    panel.thread.section, // a silent caller's texts are the conversation: near the top
    unitNote,
    panel.recHolder, // while the case waits, sending a unit comes first
    panel.triage.section,
    panel.merge.section,
    panel.ops.section,
    panel.section,
  );
  root.setAttribute("aria-labelledby", titleId);
  syncDetails(ctx, entry);
  showHealth(ctx, entry);
}

export function closeDetails(ctx, entry) {
  const root = ctx.els.details;
  if (entry && entry.panel) {
    for (const rec of [entry.panel.assign, entry.panel.reassign]) if (rec) rec.closed = true;
    entry.panel = null;
  }
  root.textContent = "";
  root.dataset.caseId = "";
  root.removeAttribute("aria-labelledby");
  root.append(el("p", { class: "details-hint muted" }, t("Select a case in the table or on the map.")));
}

/** Re-render what depends on the case's data; add or remove the unit lists as its status moves. */
export function syncDetails(ctx, entry) {
  const panel = entry.panel;
  if (!panel) return;
  const c = entry.data;
  panel.badge.className = `badge status-${c.status}`;
  panel.badge.textContent = label("case_status", c.status);
  const f = panel.facts;
  const received = parseTime(c.received_at);
  f.received.dd.textContent = received == null ? "—" : formatLocalTime(received);
  f.priority.dd.textContent = "";
  const prio = el("span");
  renderPriorityBadge(prio, c);
  f.priority.dd.append(prio);
  const why = reasonText(c);
  if (why) f.priority.dd.append(" ", el("span", { class: "small priority-reason" }, why));
  const answers = triageText(c.triage);
  if (answers) f.priority.dd.append(el("br"), answers);
  f.complaint.dd.textContent = label("complaint", c.complaint);
  if (c.note) f.complaint.dd.append(el("br"), el("span", { class: "note muted" }, c.note));
  f.place.dd.textContent = placeText(c);
  // A call taken by phone: what the caller said, beside where the map puts it.
  if (c.reported_address && c.reported_address !== c.address) {
    f.place.dd.append(el("br"), el("span", { class: "reported" }, t("Caller said:"), ` ${c.reported_address}`));
  }
  const acc = Number.isFinite(c.accuracy_m) ? ` ±${Math.round(c.accuracy_m)} m` : "";
  f.place.dd.append(el("br"), el("span", { class: "small muted" }, `${formatCoord(c.lat)}, ${formatCoord(c.lon)}${acc}`));
  f.caller.dd.textContent = "";
  if (c.silent) {
    // Calling back could give a hiding caller away, and a deaf one cannot answer.
    f.caller.dd.append(
      el("strong", { class: "silent-mark" }, t("silent — text only, do not call")),
      c.caller_phone ? el("span", { class: "small muted" }, ` ${c.caller_phone}`) : "",
    );
  } else {
    const tel = telLink(c.caller_phone, "tel call-caller");
    if (tel) f.caller.dd.append(tel, " ", el("span", { class: "small muted" }, t("click to call")));
    else f.caller.dd.append("—");
  }
  f.patient.dd.textContent = "";
  f.patient.dd.append(c.for_self ? t("The caller") : t("Someone else"));
  const name = patientName(entry);
  if (name) f.patient.dd.append(" · ", el("strong", { class: "patient-name" }, name));
  renderLive(entry, serverNow());

  const waiting = c.status === "received";
  panel.unitNote.hidden = waiting || ENDED.has(c.status);
  if (!panel.unitNote.hidden) {
    const unit = c.ambulance;
    panel.unitNote.textContent = "";
    panel.unitNote.append(
      t("Unit assigned:"),
      " ",
      unit ? el("strong", { class: "call-sign" }, unit.call_sign) : "—",
      unit ? ` · ${label("unit_status", unit.status)}` : "",
    );
  }
  // The ranked units: to assign while the case waits; to send instead only when asked.
  if (waiting && !panel.assign) {
    panel.assign = createRecommendations(ctx, entry, "assign");
    panel.recHolder.append(panel.assign.section);
    panel.assign.load();
  } else if (!waiting && panel.assign) {
    panel.assign.closed = true;
    panel.assign.section.remove();
    panel.assign = null;
  }
  if (panel.reassign && !REASSIGNABLE.has(c.status)) hideReassign(entry);
  panel.ops.sync();
  panel.triage.sync();
  panel.merge.sync();
  panel.thread.sync();
  renderCaseAlerts(ctx, entry);
}

/** The case's open alerts with what to do; a crew that does not roll offers its replacement. */
export function renderCaseAlerts(ctx, entry) {
  const panel = entry.panel;
  if (!panel || !ctx.alerts) return;
  const box = panel.alertBox;
  box.textContent = "";
  const list = ctx.alerts.forCase(entry.id);
  box.hidden = !list.length;
  for (const alert of list) {
    const line = el("p", { class: `case-alert alarm-${alert.kind}`, "data-alert-id": alert.id },
      el("strong", {}, choice(alert.kind_label) || alert.kind), " — ", choice(alert.action));
    const button = ctx.alerts.reassignButton(alert);
    if (button) line.append(" ", button);
    box.append(line);
  }
}

export function toggleReassign(ctx, entry) {
  const panel = entry.panel;
  if (!panel) return false;
  if (panel.reassign) {
    hideReassign(entry);
    return false;
  }
  if (!REASSIGNABLE.has(entry.data.status)) return false;
  panel.reassign = createRecommendations(ctx, entry, "reassign");
  panel.recHolder.append(panel.reassign.section);
  panel.reassign.load();
  return true;
}

export function hideReassign(entry) {
  const panel = entry.panel;
  if (!panel || !panel.reassign) return;
  panel.reassign.closed = true;
  panel.reassign.section.remove();
  panel.reassign = null;
  panel.ops.reassignOpen.setAttribute("aria-expanded", "false");
}

/** The unit's on-board phone as a tel: link, or null. The same node across ticks: the line is
 * rebuilt every second, and a link replaced between mousedown and mouseup would swallow the click. */
function unitTel(panel, phone) {
  const number = phone || null;
  if (panel.unitTelFor !== number) {
    panel.unitTelFor = number;
    panel.unitTel = number ? telLink(number, "tel call-unit") : null;
    if (panel.unitTel) panel.unitTel.title = t("Call the crew");
  }
  return panel.unitTel;
}

/** The unit and hospital lines, with ETAs that count down between events. */
export function renderLive(entry, now) {
  const panel = entry.panel;
  if (!panel) return;
  const c = entry.data;
  const f = panel.facts;
  f.unit.dd.textContent = "";
  if (c.ambulance) {
    f.unit.dd.append(el("strong", { class: "call-sign" }, c.ambulance.call_sign), ` · ${label("unit_status", c.ambulance.status)}`);
    const tel = unitTel(panel, c.ambulance.phone);
    if (tel) f.unit.dd.append(" · ", tel);
    const eta = etaLeft(entry, now);
    const target = ETA_TARGET[c.eta_target];
    if (eta != null && target) f.unit.dd.append(" · ", el("span", { class: "eta unit-eta" }, tf("ETA %(eta)s %(target)s", { eta: formatEta(eta), target })));
  } else {
    f.unit.dd.append("—");
  }
  f.hospital.dd.textContent = "";
  if (c.hospital) {
    f.hospital.dd.append(`${c.hospital.name_zh || c.hospital.name_en} (${c.hospital.code})`);
    const adm = c.admission && c.admission.status !== "cancelled" ? c.admission : null;
    if (adm) {
      f.hospital.dd.append(" · ", label("admission_status", adm.status));
      if (adm.registration_no) f.hospital.dd.append(" · ", el("strong", { class: "registration" }, `#${adm.registration_no}`));
      const left = admissionEtaLeft(adm, now);
      if (left != null && adm.status !== "arrived" && adm.status !== "handed_over") {
        f.hospital.dd.append(" · ", el("span", { class: "eta admission-eta" }, `ETA ${formatEta(left)}`));
      }
    }
  } else {
    f.hospital.dd.append(t("not chosen yet"));
  }
}

/** A unit changed: the lists grey out units that are no longer available. */
export function markUnitInDetails(entry, unit) {
  const panel = entry.panel;
  if (!panel) return;
  for (const rec of [panel.assign, panel.reassign]) if (rec) rec.markUnit(unit);
}
