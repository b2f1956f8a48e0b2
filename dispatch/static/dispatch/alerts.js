/*
 * alerts.js — what makes a dispatcher look up: a new emergency sounds and flashes; a case still
 * without a unit after UNASSIGNED_ALERT_S seconds alarms (a tone every few seconds, a red banner
 * naming the cases) until a unit is assigned or the case is cancelled. Mute stops the sound only:
 * the flashing and the banner stay.
 */

import { alertStats, isMuted, playAlert, setMuted } from "/static/onekey/sound.js";
import { bi, el } from "./labels.js";

const FLASH_MS = 4000;
const ALARM_REPEAT_MS = 10000;
// At most this many overdue cases are linked in the banner; the rest are counted.
const BANNER_LINKS = 10;

export function createAlerts(ctx) {
  const root = ctx.els.root;
  const muteButton = ctx.els.mute;
  const banner = ctx.els.alarm;
  let lastAlarmAt = 0;
  let alarmKey = "";

  function renderMute() {
    const muted = isMuted();
    muteButton.setAttribute("aria-pressed", String(muted));
    muteButton.classList.toggle("is-muted", muted);
    muteButton.textContent = "";
    muteButton.append(muted ? bi("Sound off", "声音关") : bi("Sound on", "声音开"));
    muteButton.title = muted ? "Click to turn alert sounds on 点击开启提示音" : "Click to mute alert sounds 点击静音";
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

  /** Called every second with the cases that waited too long for a unit. */
  function overdue(entries) {
    const ids = entries.map((e) => e.id);
    const key = ids.join(",");
    banner.hidden = !ids.length;
    root.classList.toggle("alarming", ids.length > 0);
    if (!ids.length) {
      alarmKey = "";
      banner.textContent = "";
      return;
    }
    if (key !== alarmKey) {
      const s = Math.round(ctx.cfg.unassignedAlertMs / 1000);
      banner.textContent = "";
      banner.append(
        el("strong", {}, bi(`No unit after ${s} s:`, `超过 ${s} 秒未派车：`)),
        " ",
        ...ids.slice(0, BANNER_LINKS).flatMap((id, i) => {
          const link = el("button", { type: "button", class: "link-like", "data-case-id": id }, `#${id}`);
          link.addEventListener("click", () => ctx.select(id));
          return i ? [" ", link] : [link];
        }),
      );
      // In a surge the list would push the map and the queue off the screen; the queue's red rows
      // show every one of them.
      const more = ids.length - BANNER_LINKS;
      if (more > 0) banner.append(" ", el("span", { class: "more" }, bi(`+${more} more`, `另有 ${more} 例`)));
    }
    const now = Date.now();
    // A newly overdue case alarms at once; the alarm then repeats while any case is still waiting.
    const grew = ids.some((id) => !alarmKey.split(",").includes(String(id)));
    if (grew || now - lastAlarmAt >= ALARM_REPEAT_MS) {
      lastAlarmAt = now;
      sound("overdue");
    }
    alarmKey = key;
  }

  return { newEmergency, overdue, sound };
}
