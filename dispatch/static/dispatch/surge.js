/*
 * surge.js — the centre's surge mode: a banner from the snapshot's `centre` and
 * centre.surge_changed, declare / end for shift supervisors (POST /api/v1/dispatch/surge; everyone
 * else sees the state only), the service's proposal (centre.proposed or a surge_proposed alert) as
 * a prompt, and the waiting list by district (GET /api/v1/dispatch/queue/districts), refreshed on
 * case events at most every DISTRICTS_EVERY_MS.
 */

import { api } from "/static/onekey/api.js";
import { el, formatDuration, parseTime } from "./labels.js";
import { IS_ZH, t, tf } from "/static/onekey/i18n.js";
import { serverNow } from "/static/onekey/api.js";

const DISTRICTS_EVERY_MS = 5000;
const DISTRICT_ROWS = 8;

export function createSurge(ctx) {
  const bar = ctx.els.surge;
  const text = el("span", { class: "surge-text" });
  // The reason field opens on the first press: the bar stays one line until a supervisor means it.
  const reason = el("input", {
    hidden: true, type: "text", id: "surge-reason", name: "reason", maxlength: "200", autocomplete: "off",
    placeholder: t("why, e.g. rainstorm, 40 calls waiting"), "aria-label": t("Reason for surge mode"),
  });
  const declare = el("button", { type: "submit", class: "button small danger surge-declare" }, t("Declare surge"));
  const end = el("button", { type: "button", class: "button small surge-end" }, t("End surge"));
  const error = el("span", { class: "surge-error small", role: "alert", hidden: true });
  const form = el("form", { class: "surge-form", novalidate: true, hidden: true }, reason, declare);
  bar.append(text, form, end, error);

  const card = ctx.els.districts;
  const list = el("ol", { class: "district-list" });
  const note = el("p", { class: "small muted district-note" });
  card.append(el("h2", { class: "panel-title" }, t("Waiting by district")), list, note);

  function setError(message) {
    error.textContent = message || "";
    error.hidden = !message;
  }

  function proposed() {
    const centre = ctx.state.centre || {};
    return Boolean(centre.proposed) || (ctx.alerts && ctx.alerts.list().some((a) => a.kind === "surge_proposed"));
  }

  function render() {
    const centre = ctx.state.centre || {};
    const active = Boolean(centre.active);
    const boss = Boolean(ctx.state.supervisor);
    bar.dataset.active = String(active);
    bar.dataset.proposed = String(!active && proposed());
    bar.classList.toggle("surge-on", active);
    bar.classList.toggle("surge-proposed", !active && proposed());
    text.textContent = "";
    if (active) {
      text.append(el("strong", {}, t("Surge mode")), " ");
      const by = centre.declared_by ? ` · ${centre.declared_by}` : "";
      text.append(el("span", { class: "small", title: `${centre.reason || ""}${by}` }, `${centre.reason || ""}${by}`));
    } else if (proposed()) {
      text.append(el("strong", {}, t("Surge proposed")), " ",
        el("span", { class: "small" }, tf("at least %(n)s urgent cases wait for a unit", { n: centre.propose_at ?? "?" })));
    }
    bar.hidden = !active && !proposed() && !boss;
    form.hidden = !boss || active;
    end.hidden = !boss || !active;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (reason.hidden) {
      reason.hidden = false;
      reason.focus();
      return;
    }
    const why = reason.value.trim();
    if (!why) {
      setError(t("Say why surge mode is declared."));
      reason.focus();
      return;
    }
    if (await send({ active: true, reason: why }, declare)) {
      reason.value = "";
      reason.hidden = true;
    }
  });
  end.addEventListener("click", () => send({ active: false }, end));

  async function send(body, button) {
    setError(null);
    button.disabled = true;
    try {
      setCentre(await api(ctx.cfg.surgeUrl, { method: "POST", body }));
      ctx.announce(body.active ? t("Surge mode declared.") : t("Surge mode ended."));
      return true;
    } catch (err) {
      if (err.status === 403) {
        ctx.state.supervisor = false;
        render();
      }
      setError(`${err.status ? `${err.status} — ` : ""}${err.detail || err.message}`);
      return false;
    } finally {
      button.disabled = false;
    }
  }

  function setCentre(centre) {
    if (!centre) return;
    const was = Boolean(ctx.state.centre && ctx.state.centre.active);
    ctx.state.centre = centre;
    render();
    if (was !== Boolean(centre.active)) ctx.relayout();
  }

  // --- districts ---------------------------------------------------------------------------------
  let lastFetch = 0;
  let timer = null;
  let inFlight = false;

  async function fetchDistricts() {
    timer = null;
    if (inFlight) {
      refreshDistricts();
      return;
    }
    inFlight = true;
    lastFetch = Date.now();
    try {
      renderDistricts(await api(ctx.cfg.districtsUrl));
    } catch (err) {
      note.textContent = `${t("Could not load the districts")}: ${err.status || ""} ${err.detail || err.message}`;
    } finally {
      inFlight = false;
    }
  }

  /** Throttled: at most one request every DISTRICTS_EVERY_MS, the last change always fetched. */
  function refreshDistricts() {
    if (timer) return;
    const wait = Math.max(0, lastFetch + DISTRICTS_EVERY_MS - Date.now());
    timer = window.setTimeout(fetchDistricts, wait);
  }

  function renderDistricts(rows) {
    list.textContent = "";
    const items = Array.isArray(rows) ? rows : [];
    card.dataset.count = String(items.length);
    note.textContent = items.length ? "" : t("Nobody waits for a unit.");
    const now = serverNow();
    for (const row of items.slice(0, DISTRICT_ROWS)) {
      const name = (IS_ZH ? row.district : row.district_en || row.district) || t("unknown district");
      const by = row.by_priority || {};
      const parts = [1, 2, 3, 4].filter((p) => by[p]).map((p) => el("span", { class: `prio prio-${p}` }, `P${p}×${by[p]}`));
      const oldest = parseTime(row.oldest_received_at);
      const li = el("li", { class: "district-row", "data-district": row.district || "" },
        el("strong", {}, name), ` ${row.total} `, ...parts.flatMap((n) => [n, " "]),
        oldest != null ? el("span", { class: "small muted" }, tf("oldest %(d)s", { d: formatDuration(now - oldest) })) : "");
      list.append(li);
    }
    const more = items.length - DISTRICT_ROWS;
    if (more > 0) note.textContent = tf("+%(more)s more", { more });
  }

  render();
  return { setCentre, render, refreshDistricts };
}
