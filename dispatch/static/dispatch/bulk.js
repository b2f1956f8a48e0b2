/*
 * bulk.js — a shift supervisor puts several units out of service (or back) at once, with one
 * reason (POST /api/v1/ambulances/bulk-status), and sees each unit's outcome: a unit on a case is
 * refused (unit_busy) and named, never stranded. The unit.status_changed events update the list.
 */

import { api } from "/static/onekey/api.js";
import { el } from "./labels.js";
import { t, tf, tn } from "/static/onekey/i18n.js";

export function createBulk(ctx) {
  const picked = new Set();
  const count = el("span", { class: "bulk-count small" });
  const reason = el("input", {
    type: "text", id: "bulk-reason", name: "reason", maxlength: "200", autocomplete: "off",
    placeholder: t("why, e.g. Jinshui Road flooded"), "aria-label": t("Reason for the status change"),
  });
  const out = el("button", { type: "button", class: "button small danger bulk-out" }, t("Out of service"));
  const back = el("button", { type: "button", class: "button small bulk-back" }, t("Back in service"));
  const results = el("ul", { class: "bulk-results small", "aria-live": "polite" });
  const error = el("p", { class: "alert alert-error bulk-error", role: "alert", hidden: true });
  const bar = el("div", { class: "bulk-bar", hidden: true }, count, reason, el("div", { class: "bulk-buttons" }, out, back), error, results);
  ctx.els.unitsPanel.insertBefore(bar, ctx.els.unitsPanel.querySelector(".units-table"));

  function render() {
    count.textContent = tn("%(n)s unit selected", "%(n)s units selected", picked.size, { n: picked.size });
    out.disabled = back.disabled = !picked.size;
  }

  function setError(message) {
    error.textContent = message || "";
    error.hidden = !message;
  }

  async function send(status, button) {
    const why = reason.value.trim();
    if (!why) {
      setError(t("Say why."));
      reason.focus();
      return;
    }
    setError(null);
    button.disabled = true;
    try {
      const body = await api(ctx.cfg.bulkStatusUrl, { method: "POST", body: { ambulances: [...picked], status, reason: why } });
      results.textContent = "";
      for (const r of body.results || []) {
        const unit = ctx.state.units.get(r.ambulance);
        const sign = unit ? unit.call_sign : `#${r.ambulance}`;
        results.append(el("li", { class: `bulk-result bulk-${r.code}`, "data-ambulance-id": r.ambulance, "data-code": r.code },
          el("strong", {}, sign), " ", r.changed ? t("changed") : r.code === "unit_busy" ? t("on a case: not changed") : r.code === "unchanged" ? t("already so") : t("not found")));
      }
      ctx.announce(tf("%(changed)s changed, %(not)s not changed.", { changed: (body.changed || []).length, not: (body.not_changed || []).length }));
      picked.clear();
      ctx.units.unpickAll();
      reason.value = "";
    } catch (err) {
      setError(`${err.status ? `${err.status} — ` : ""}${err.detail || err.message}`);
    } finally {
      render();
    }
  }
  out.addEventListener("click", () => send("out_of_service", out));
  back.addEventListener("click", () => send("available", back));

  function pick(id, on) {
    if (on) picked.add(id);
    else picked.delete(id);
    render();
  }

  function enable(on) {
    bar.hidden = !on;
    ctx.els.unitsPanel.classList.toggle("can-bulk", Boolean(on));
  }

  render();
  return { pick, enable };
}
