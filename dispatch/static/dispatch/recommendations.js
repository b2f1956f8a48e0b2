/*
 * recommendations.js — the ranked available units for a case (GET …/recommendations, fastest first)
 * with a button per unit: "Assign" while the case waits for its first unit, "Send instead" to
 * reassign a case whose unit has not reached the scene. A unit taken by another dispatcher in the
 * meantime is a 409: said so, and the list is fetched again.
 */

import { api } from "/static/onekey/api.js";
import { el, formatDistance, formatEta, label, urlFor } from "./labels.js";
import { t, tf, tn, choice } from "/static/onekey/i18n.js";

const MODES = {
  assign: {
    title: (id) => tf("Recommended units for case #%(id)s", { id }),
    button: t("Assign"),
    busy: t("Assigning"),
    failed: t("not assigned"),
    done: (sign, id) => tf("%(sign)s dispatched to case #%(id)s.", { sign, id }),
  },
  reassign: {
    title: (id) => tf("Send another unit to case #%(id)s", { id }),
    button: t("Send instead"),
    busy: t("Reassigning"),
    failed: t("not reassigned"),
    done: (sign, id) => tf("%(sign)s now sent to case #%(id)s.", { sign, id }),
  },
};

export function createRecommendations(ctx, entry, mode) {
  const how = MODES[mode];
  const titleId = `rec-${mode}-${entry.id}`;
  const status = el("p", { class: "rec-status", role: "status", "aria-live": "polite" });
  const error = el("p", { class: "alert alert-error rec-error", role: "alert", hidden: true });
  const list = el("div", { class: "rec-list" });
  const refresh = el("button", { type: "button", class: "button small" }, t("Refresh"));
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
    status.textContent = t("Loading…");
    let ranked;
    try {
      ranked = await api(urlFor(ctx.cfg.recommendationsUrl, entry.id));
    } catch (err) {
      if (rec.closed) return;
      status.textContent = "";
      setError(`${t("Could not load recommendations")}: ${err.status ? `${err.status} ` : ""}${err.message}`);
      return;
    }
    if (rec.closed) return;
    render(Array.isArray(ranked) ? ranked : []);
  }

  function render(ranked) {
    list.textContent = "";
    buttons.clear();
    if (!ranked.length) {
      status.textContent = t("No available units.");
      return;
    }
    // Both halves say the same: the server ranks by ETA to the scene.
    // recommend_units ranks by an ETA computed from the straight-line distance: nearest is fastest.
    status.textContent = tn(
      "%(n)s available unit, nearest first; its ETA is estimated from the straight-line distance.",
      "%(n)s available units, nearest first; ETAs are estimated from the straight-line distance.",
      ranked.length,
      { n: ranked.length },
    );
    const head = el(
      "tr",
      {},
      el("th", { scope: "col" }, t("Unit")),
      el("th", { scope: "col" }, t("Level")),
      el("th", { scope: "col" }, t("Distance")),
      el("th", { scope: "col" }, t("ETA")),
      el("th", { scope: "col" }, el("span", { class: "sr-only" }, how.button)),
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
          "aria-label": `${how.button} ${unit.call_sign} → #${entry.id}`,
        },
        how.button,
      );
      button.addEventListener("click", () => send(unit, button));
      buttons.set(unit.id, button);
      // Surge: a unit still at a hospital, offered with when it is expected free.
      const soon = Number.isFinite(item.free_in_s);
      const freeIn = soon
        ? el("span", { class: "free-soon-note small" }, tf("free in %(n)s min", { n: Math.max(0, Math.ceil(item.free_in_s / 60)) }))
        : null;
      // Surge reserve: the last units are held for the most urgent calls; still assignable.
      const held = item.reserved ? el("span", { class: "reserved-note small" }, t("held in reserve for the most urgent calls")) : null;
      const classes = [soon ? "free-soon" : "", item.reserved ? "reserved" : ""].filter(Boolean).join(" ") || null;
      body.append(
        el(
          "tr",
          { "data-ambulance-id": unit.id, class: classes, "data-free-in-s": soon ? item.free_in_s : null },
          el("th", { scope: "row" }, el("span", { class: "call-sign" }, unit.call_sign), el("br"), freeIn || el("span", { class: "small muted station" }, unit.station || "—"), held ? el("br") : null, held),
          // The short code in the narrow side panel; the full "English 中文" name on hover.
          el("td", { class: "level", title: label("unit_level", unit.level) }, String(unit.level || "—").toUpperCase()),
          el("td", { class: "num" }, formatDistance(item.distance_m)),
          el("td", { class: "num" }, formatEta(item.eta_s)),
          el("td", {}, button),
        ),
      );
      const seen = ctx.state.units.get(unit.id);
      if (seen && !soon) markUnit(seen);
    });
    list.append(el("table", { class: "rec-table" }, el("thead", {}, head), body));
  }

  /** A unit changed status elsewhere: only an available one can be sent. */
  function markUnit(unit) {
    const button = buttons.get(unit.id);
    if (!button || button.dataset.busy) return;
    if (button.closest("tr.free-soon")) return; // offered while busy on purpose (surge)
    const available = unit.status === "available";
    button.disabled = !available;
    button.title = available ? "" : label("unit_status", unit.status);
  }

  async function send(unit, button) {
    setError(null);
    button.disabled = true;
    button.dataset.busy = "1";
    status.textContent = `${how.busy} ${unit.call_sign}…`;
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
        setError(`${tf("Network error, %(what)s", { what: how.failed })}: ${err.message}`);
        return;
      }
      if (err.status === 409) {
        setError(`${tf("409 Conflict — %(what)s", { what: how.failed })}: ${err.detail}`);
        load(); // the list has changed
        return;
      }
      button.disabled = false;
      setError(`${err.status} — ${how.failed}: ${err.detail}`);
      return;
    }
    delete button.dataset.busy;
    ctx.upsertCase(body, { quiet: true });
    ctx.announce(how.done(unit.call_sign, entry.id));
    ctx.afterOperation(entry);
  }

  return rec;
}
