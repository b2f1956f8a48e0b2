/*
 * units.js — the fleet: each unit's status and the age of its last fix, on the map and in the
 * "Units" list, where a dispatcher puts an idle unit out of service and back
 * (POST /api/v1/ambulances/{id}/status, the crew's own endpoint, which dispatchers may use too).
 */

import { api } from "/static/onekey/api.js";
import { fixAgeText } from "/static/onekey/map.js";
import { AnswersAhead } from "/static/onekey/stream.js";
import { el, label, parseTime, urlFor } from "./labels.js";
import { t, tf, tn, choice } from "/static/onekey/i18n.js";

/** A fix older than the one held (position_at, the device's own time), with the same status. */
function isOlderFix(got, have) {
  const gotFix = parseTime(got.position_at);
  const haveFix = parseTime(have.position_at);
  return parseTime(have.status_at) === parseTime(got.status_at) && gotFix != null && haveFix != null && gotFix < haveFix;
}

export function createUnits(ctx) {
  const rows = new Map(); // id -> {row, status, fix, button}
  // Answers to this page's requests (going out of service and back), ordered against the stream
  // by status_at (stream.js).
  const unitAnswers = new AnswersAhead();
  const tbody = ctx.els.unitRows;

  function setError(message) {
    ctx.els.unitsError.textContent = message || "";
    ctx.els.unitsError.hidden = !message;
  }

  function rowFor(unit) {
    let r = rows.get(unit.id);
    if (r) return r;
    const button = el("button", { type: "button", class: "button small service-toggle" });
    button.addEventListener("click", () => toggleService(unit.id, button));
    // Supervisors pick several units for one bulk status change (bulk.js); hidden for the others.
    const pick = el("input", { type: "checkbox", class: "unit-pick", "data-ambulance-id": unit.id });
    pick.addEventListener("change", () => ctx.onUnitPicked && ctx.onUnitPicked(unit.id, pick.checked));
    r = {
      pick,
      pickCell: el("td", { class: "unit-pick-cell" }, pick),
      row: el("tr", { class: "unit-row", "data-ambulance-id": unit.id }),
      sign: el("th", { scope: "row", class: "call-sign" }),
      status: el("td", { class: "unit-status" }),
      fix: el("td", { class: "unit-fix small muted" }),
      action: el("td", {}, button),
      button,
    };
    r.row.append(r.pickCell, r.sign, r.status, r.fix, r.action);
    rows.set(unit.id, r);
    return r;
  }

  function render(unit) {
    const r = rowFor(unit);
    r.row.dataset.status = unit.status;
    r.sign.textContent = unit.call_sign;
    r.pick.setAttribute("aria-label", tf("Select %(sign)s", { sign: unit.call_sign }));
    r.status.textContent = label("unit_status", unit.status);
    r.status.className = `unit-status unit-${unit.status}`;
    r.fix.textContent = fixAgeText(unit.position_at);
    const idle = unit.status === "available" || unit.status === "out_of_service";
    r.button.hidden = !idle;
    r.button.textContent = "";
    r.button.append(unit.status === "out_of_service" ? t("Back in service") : t("Out of service"));
    r.button.setAttribute("aria-label", `${unit.call_sign}: ${unit.status === "out_of_service" ? t("back in service") : t("out of service")}`);
  }

  function layout() {
    const sorted = [...ctx.state.units.values()].sort((a, b) => String(a.call_sign).localeCompare(String(b.call_sign)));
    let cursor = tbody.firstChild;
    for (const unit of sorted) {
      const node = rowFor(unit).row;
      if (node === cursor) cursor = cursor.nextSibling;
      else tbody.insertBefore(node, cursor);
    }
    let available = 0;
    let out = 0;
    for (const unit of ctx.state.units.values()) {
      if (unit.status === "available") available += 1;
      if (unit.status === "out_of_service") out += 1;
    }
    ctx.els.unitsCount.textContent = tf("%(available)s available · %(out)s out of service · %(all)s in all", { available, out, all: ctx.state.units.size });
  }

  /** All units from a snapshot. */
  function replace(list) {
    unitAnswers.clear();
    ctx.state.units.clear();
    for (const row of rows.values()) row.row.remove();
    rows.clear();
    for (const unit of list) {
      ctx.state.units.set(unit.id, unit);
      render(unit);
      if (ctx.map) ctx.map.setUnit(unit);
    }
    layout();
  }

  /** One unit from an event or an answer; returns the unit as now known, or null when it was stale. */
  function update(unit, { event = false } = {}) {
    if (!unit || unit.id == null) return null;
    const have = ctx.state.units.get(unit.id);
    const fresh = event ? unitAnswers.event(unit.id, unit.status_at) : unitAnswers.answer(unit.id, unit.status_at, have && have.status_at);
    if (!fresh || (have && isOlderFix(unit, have))) return null;
    const merged = { ...(have || {}), ...unit };
    ctx.state.units.set(unit.id, merged);
    render(merged);
    if (ctx.map) ctx.map.setUnit(merged);
    layout();
    return merged;
  }

  async function toggleService(id, button) {
    const unit = ctx.state.units.get(id);
    if (!unit) return;
    const status = unit.status === "out_of_service" ? "available" : "out_of_service";
    setError(null);
    button.disabled = true;
    try {
      const body = await api(urlFor(ctx.cfg.ambulanceStatusUrl, id), { method: "POST", body: { status } });
      update(body);
      ctx.announce(`${unit.call_sign}: ${label("unit_status", body.status)}`);
    } catch (err) {
      setError(`${err.status ? `${err.status} — ` : ""}${unit.call_sign}: ${err.detail || err.message}`);
    } finally {
      button.disabled = false;
    }
  }

  /** Fix ages grow by themselves. */
  function tick() {
    for (const [id, r] of rows) {
      const unit = ctx.state.units.get(id);
      if (unit) r.fix.textContent = fixAgeText(unit.position_at);
    }
  }

  function unpickAll() {
    for (const r of rows.values()) r.pick.checked = false;
  }

  return { replace, update, tick, unpickAll };
}
