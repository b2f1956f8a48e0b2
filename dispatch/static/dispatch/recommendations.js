/*
 * recommendations.js — the ranked available units for a case (GET …/recommendations, fastest first)
 * with a button per unit: "Assign" while the case waits for its first unit, "Send instead" to
 * reassign a case whose unit has not reached the scene. A unit taken by another dispatcher in the
 * meantime is a 409: said so, and the list is fetched again.
 */

import { api } from "/static/onekey/api.js";
import { bi, el, formatDistance, formatEta, label, urlFor } from "./labels.js";

const MODES = {
  assign: {
    title: (id) => bi(`Recommended units for case #${id}`, `病例 #${id} 推荐车辆`),
    button: ["Assign", "派车"],
    busy: ["Assigning", "派车中"],
    failed: ["not assigned", "未派车"],
    done: (sign, id) => `${sign} dispatched to case #${id}. ${sign} 已派往病例 #${id}。`,
  },
  reassign: {
    title: (id) => bi(`Send another unit to case #${id}`, `为病例 #${id} 改派车辆`),
    button: ["Send instead", "改派"],
    busy: ["Reassigning", "改派中"],
    failed: ["not reassigned", "未改派"],
    done: (sign, id) => `${sign} now sent to case #${id}. 已改派 ${sign} 前往病例 #${id}。`,
  },
};

export function createRecommendations(ctx, entry, mode) {
  const how = MODES[mode];
  const titleId = `rec-${mode}-${entry.id}`;
  const status = el("p", { class: "rec-status", role: "status", "aria-live": "polite" });
  const error = el("p", { class: "alert alert-error rec-error", role: "alert", hidden: true });
  const list = el("div", { class: "rec-list" });
  const refresh = el("button", { type: "button", class: "button small" }, bi("Refresh", "刷新"));
  const section = el(
    "section",
    { class: `rec-section rec-${mode}`, "aria-labelledby": titleId, "data-mode": mode },
    el("h3", { class: "panel-title rec-title", id: titleId }, how.title(entry.id)),
    status,
    error,
    list,
    refresh,
  );
  const buttons = new Map();
  const rec = { section, mode, buttons, load, markUnit, closed: false };
  refresh.addEventListener("click", load);

  function setError(message) {
    error.textContent = message || "";
    error.hidden = !message;
  }

  async function load() {
    status.textContent = "Loading… 加载中";
    let ranked;
    try {
      ranked = await api(urlFor(ctx.cfg.recommendationsUrl, entry.id));
    } catch (err) {
      if (rec.closed) return;
      status.textContent = "";
      setError(`Could not load recommendations 无法加载推荐车辆: ${err.status ? `${err.status} ` : ""}${err.message}`);
      return;
    }
    if (rec.closed) return;
    render(Array.isArray(ranked) ? ranked : []);
  }

  function render(ranked) {
    list.textContent = "";
    buttons.clear();
    if (!ranked.length) {
      status.textContent = "No available units. 没有可用车辆。";
      return;
    }
    // Both halves say the same: the server ranks by ETA to the scene.
    status.textContent = `${ranked.length} available units, fastest (by ETA) first. 共 ${ranked.length} 辆可用车辆，按预计到达时间排序，最快在前。`;
    const head = el(
      "tr",
      {},
      el("th", { scope: "col" }, bi("Unit", "车辆")),
      el("th", { scope: "col" }, bi("Level", "级别")),
      el("th", { scope: "col" }, bi("Distance", "距离")),
      el("th", { scope: "col" }, bi("ETA", "预计到达")),
      el("th", { scope: "col" }, el("span", { class: "sr-only" }, bi(...how.button))),
    );
    const body = el("tbody");
    ranked.forEach((item) => {
      const unit = item.ambulance || {};
      const button = el(
        "button",
        {
          type: "button",
          class: `button small primary ${mode}`,
          "data-ambulance-id": unit.id,
          "aria-label": `${how.button[0]} ${unit.call_sign} → #${entry.id} ${how.button[1]}`,
        },
        bi(...how.button),
      );
      button.addEventListener("click", () => send(unit, button));
      buttons.set(unit.id, button);
      body.append(
        el(
          "tr",
          { "data-ambulance-id": unit.id },
          el("th", { scope: "row" }, el("span", { class: "call-sign" }, unit.call_sign), el("br"), el("span", { class: "small muted station" }, unit.station || "—")),
          // The short code in the narrow side panel; the full "English 中文" name on hover.
          el("td", { class: "level", title: label("unit_level", unit.level) }, String(unit.level || "—").toUpperCase()),
          el("td", { class: "num" }, formatDistance(item.distance_m)),
          el("td", { class: "num" }, formatEta(item.eta_s)),
          el("td", {}, button),
        ),
      );
      const seen = ctx.state.units.get(unit.id);
      if (seen) markUnit(seen);
    });
    list.append(el("table", { class: "rec-table" }, el("thead", {}, head), body));
  }

  /** A unit changed status elsewhere: only an available one can be sent. */
  function markUnit(unit) {
    const button = buttons.get(unit.id);
    if (!button || button.dataset.busy) return;
    const available = unit.status === "available";
    button.disabled = !available;
    button.title = available ? "" : label("unit_status", unit.status);
  }

  async function send(unit, button) {
    setError(null);
    button.disabled = true;
    button.dataset.busy = "1";
    status.textContent = `${how.busy[0]} ${unit.call_sign}… ${how.busy[1]}`;
    const current = entry.data.ambulance;
    let body;
    try {
      body = mode === "assign"
        ? await api(urlFor(ctx.cfg.assignUrl, entry.id), { method: "POST", body: { ambulance: unit.id } })
        : await api(urlFor(ctx.cfg.reassignUrl, entry.id), {
          method: "POST",
          body: { ambulance: unit.id, replacing: current ? current.id : null },
        });
    } catch (err) {
      delete button.dataset.busy;
      if (rec.closed) return;
      status.textContent = "";
      if (!err.status) {
        button.disabled = false;
        setError(`Network error, ${how.failed[0]} 网络错误，${how.failed[1]}: ${err.message}`);
        return;
      }
      if (err.status === 409) {
        setError(`409 Conflict — ${how.failed[0]} 冲突，${how.failed[1]}: ${err.detail}`);
        load(); // the list has changed
        return;
      }
      button.disabled = false;
      setError(`${err.status} — ${how.failed[0]} ${how.failed[1]}: ${err.detail}`);
      return;
    }
    delete button.dataset.busy;
    ctx.upsertCase(body, { quiet: true });
    ctx.announce(how.done(unit.call_sign, entry.id));
    ctx.afterOperation(entry);
  }

  return rec;
}
