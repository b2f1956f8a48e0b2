/*
 * alerts.js — what makes a dispatcher look up. A new emergency sounds and flashes. Escalations are
 * the server's (dispatch/alerts.py: a case without a unit past its priority's threshold, a crew not
 * rolling, a hospital not answering, a unit's GPS silent): the snapshot from GET
 * /api/v1/dispatch/alerts, then alert.raised (replace by id; sounds every time, repeats included)
 * and alert.cleared (drop by id) from the dispatch stream. The banner links the ten most urgent and
 * counts the rest, so a surge never pushes the map and the queue off the screen. surge_proposed is
 * not a case's alarm: surge.js shows it as a prompt. Mute stops the sound only.
 */

import { alertStats, isMuted, playAlert, setMuted } from "/static/onekey/sound.js";
import { api } from "/static/onekey/api.js";
import { el, parseTime, urlFor } from "./labels.js";
import { t, tf, choice } from "/static/onekey/i18n.js";

const FLASH_MS = 4000;
// At most this many alerts are linked in the banner; the rest are counted.
const BANNER_LINKS = 10;
// Most urgent first: a patient without a unit, then a unit that does not move, then the rest.
const KIND_RANK = { case_unassigned: 0, crew_not_rolling: 1, unit_gps_silent: 2, admission_unacknowledged: 3, surge_proposed: 9 };

export function createAlerts(ctx) {
  const root = ctx.els.root;
  const muteButton = ctx.els.mute;
  const banner = ctx.els.alarm;
  const open = new Map(); // id -> alert payload
  let renderedKey = null;

  function renderMute() {
    const muted = isMuted();
    muteButton.setAttribute("aria-pressed", String(muted));
    muteButton.classList.toggle("is-muted", muted);
    muteButton.textContent = "";
    muteButton.append(muted ? t("Sound off") : t("Sound on"));
    muteButton.title = muted ? t("Click to turn alert sounds on") : t("Click to mute alert sounds");
  }
  muteButton.addEventListener("click", () => setMuted(!isMuted()));
  document.addEventListener("onekey:mute", renderMute);
  renderMute();

  /** Every tone asked for is counted on the page (tests and devtools read it there). */
  function sound(kind) {
    const played = playAlert(kind);
    const stats = alertStats();
    root.dataset.soundsPlayed = String(stats.played);
    if (stats.lastKind) root.dataset.lastSound = stats.lastKind;
    return played;
  }

  function newEmergency(entry) {
    sound("emergency");
    entry.row.classList.add("flash");
    window.setTimeout(() => entry.row.classList.remove("flash"), FLASH_MS);
    root.classList.add("flash-new");
    window.setTimeout(() => root.classList.remove("flash-new"), FLASH_MS);
  }

  function priorityOf(alert) {
    const entry = alert.case != null ? ctx.state.cases.get(alert.case) : null;
    return entry && Number.isFinite(entry.data.priority) ? entry.data.priority : 9;
  }

  function urgent(a, b) {
    return (KIND_RANK[a.kind] ?? 5) - (KIND_RANK[b.kind] ?? 5)
      || priorityOf(a) - priorityOf(b)
      || (parseTime(a.since) || 0) - (parseTime(b.since) || 0)
      || a.id - b.id;
  }

  /** Open alerts for the banner (surge_proposed is surge.js's), most urgent first. */
  function caseAlarms() {
    return [...open.values()].filter((a) => a.kind !== "surge_proposed").sort(urgent);
  }

  function forCase(caseId) {
    return [...open.values()].filter((a) => a.case === caseId);
  }

  async function reassignTo(alert, unit, button) {
    const entry = ctx.state.cases.get(alert.case);
    const current = entry && entry.data.ambulance;
    button.disabled = true;
    try {
      const body = await api(urlFor(ctx.cfg.reassignUrl, alert.case), {
        method: "POST",
        body: { ambulance: unit.id, replacing: current ? current.id : alert.ambulance },
      });
      ctx.upsertCase(body, { quiet: true });
      ctx.announce(tf("%(sign)s now sent to case #%(id)s.", { sign: unit.call_sign, id: alert.case }));
    } catch (err) {
      button.disabled = false;
      ctx.showError(`${err.status ? `${err.status} — ` : ""}${t("not reassigned")}: ${err.detail || err.message}`);
    }
  }

  /** The one-click answer to a crew that does not roll: send the best suggested unit instead. */
  function reassignButton(alert) {
    const unit = (alert.suggested_units || [])[0];
    if (alert.kind !== "crew_not_rolling" || !unit || alert.case == null) return null;
    const button = el(
      "button",
      { type: "button", class: "button small alert-reassign", "data-alert-id": alert.id, "data-ambulance-id": unit.id },
      tf("Send %(sign)s instead", { sign: unit.call_sign }),
    );
    button.addEventListener("click", (event) => {
      event.stopPropagation();
      reassignTo(alert, unit, button);
    });
    return button;
  }

  function alertItem(alert) {
    const kind = choice(alert.kind_label) || alert.kind;
    const item = el("span", { class: `alarm-item alarm-${alert.kind}`, "data-alert-id": alert.id, title: choice(alert.action) });
    if (alert.case != null) {
      const link = el("button", { type: "button", class: "link-like", "data-case-id": alert.case }, `#${alert.case}`);
      link.addEventListener("click", () => ctx.select(alert.case));
      item.append(link, " ");
    } else if (alert.ambulance != null) {
      const unit = ctx.state.units.get(alert.ambulance);
      item.append(`${unit ? unit.call_sign : `#${alert.ambulance}`} `);
    }
    // "No unit" is the common case and the heading's: only other kinds name themselves, to keep
    // the banner to one short line in a surge.
    if (alert.kind !== "case_unassigned") item.append(el("span", { class: "alarm-kind" }, kind));
    else item.title = `${kind} — ${item.title}`;
    const button = reassignButton(alert);
    if (button) item.append(" ", button);
    return item;
  }

  function render() {
    const list = caseAlarms();
    const key = list.map((a) => `${a.id}:${a.repeats}:${priorityOf(a)}`).join(",");
    if (key === renderedKey) return;
    renderedKey = key;
    banner.hidden = !list.length;
    root.classList.toggle("alarming", list.length > 0);
    banner.textContent = "";
    if (!list.length) return;
    banner.append(el("strong", {}, tf("Alerts (%(n)s):", { n: list.length })), " ");
    list.slice(0, BANNER_LINKS).forEach((alert, i) => {
      if (i) banner.append(" · ");
      banner.append(alertItem(alert));
    });
    const more = list.length - BANNER_LINKS;
    if (more > 0) banner.append(" ", el("span", { class: "more" }, tf("+%(more)s more", { more })));
    // What to do about the most urgent one, in the page's language.
    banner.append(el("span", { class: "alarm-action" }, ` — ${choice(list[0].action)}`));
  }

  function changed(caseIds) {
    render();
    for (const id of caseIds) {
      const entry = ctx.state.cases.get(id);
      if (entry) ctx.onAlertsChanged(entry);
    }
    document.dispatchEvent(new CustomEvent("onekey:alerts"));
  }

  /** The snapshot (GET /api/v1/dispatch/alerts): every raised alert, oldest first. */
  function replace(list) {
    const touched = new Set([...open.values()].map((a) => a.case));
    const known = new Set(open.keys());
    open.clear();
    let fresh = false;
    for (const alert of list || []) {
      if (alert.state !== "raised") continue;
      open.set(alert.id, alert);
      touched.add(alert.case);
      if (!known.has(alert.id) && alert.kind !== "surge_proposed") fresh = true;
    }
    // A console opening (or resyncing) onto alarms nobody here has heard yet sounds once.
    if (fresh) sound("overdue");
    changed([...touched].filter((id) => id != null));
  }

  function raised(alert) {
    if (!alert || alert.id == null) return;
    open.set(alert.id, alert);
    // Every raise sounds, a repeat too: it is the server saying "still nobody has done it".
    sound(alert.kind === "surge_proposed" ? "info" : "overdue");
    changed(alert.case != null ? [alert.case] : []);
  }

  function cleared(alert) {
    if (!alert || alert.id == null) return;
    const had = open.get(alert.id);
    open.delete(alert.id);
    const caseId = (had && had.case) ?? alert.case;
    changed(caseId != null ? [caseId] : []);
  }

  function list() {
    return [...open.values()];
  }

  return { newEmergency, sound, replace, raised, cleared, forCase, list, caseAlarms, reassignButton, render };
}
