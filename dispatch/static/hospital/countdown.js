/*
 * countdown.js — the live ETA of an incoming patient.
 *
 * The server gives `eta_at` (when the unit should arrive, recomputed at each GPS fix and sent as
 * `admission.updated`); the board counts down to it every second between events. "Now" is the
 * server's clock (boardNow(): the PC's clock corrected by the server's own time),
 * so a ward PC whose clock is off still counts the right minutes (clock.js).
 */

import { boardNow } from "./clock.js";
import { t, tf, tn, choice } from "/static/onekey/i18n.js";

const OPEN = new Set(["incoming", "acknowledged"]);

/** {state, seconds}: state is "arrived" | "due" (ETA passed, not arrived) | "counting" | "unknown". */
export function etaState(admission, nowMs = boardNow()) {
  if (admission.status === "arrived") return { state: "arrived", seconds: 0 };
  if (!OPEN.has(admission.status)) return { state: "unknown", seconds: null };
  const at = admission.eta_at ? Date.parse(admission.eta_at) : NaN;
  if (!Number.isFinite(at)) return { state: "unknown", seconds: null };
  const seconds = Math.round((at - nowMs) / 1000);
  return seconds > 0 ? { state: "counting", seconds } : { state: "due", seconds };
}

/** 75 -> "1:15", 3725 -> "1:02:05". */
export function clockText(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

const WORDS = {
  arrived: t("At the door"),
  due: t("Due now"),
  unknown: t("ETA unknown"),
};

/** Paint one ETA element (the card's big number) for its admission, now. */
export function paintEta(node, admission, nowMs = boardNow()) {
  const { state, seconds } = etaState(admission, nowMs);
  const value = node.querySelector(".eta-value");
  const caption = node.querySelector(".eta-caption");
  const key = `${state}|${admission.eta_at || ""}`;
  node.dataset.state = state;
  if (node.dataset.key !== key) {
    node.dataset.key = key;
    caption.replaceChildren();
    if (state === "counting" || state === "due") {
      const at = new Date(admission.eta_at).toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit", hour12: false });
      caption.append(tf("ETA %(at)s", { at }));
    }
  }
  if (state === "counting") {
    node.dataset.seconds = String(seconds);
    value.textContent = clockText(seconds);
    return;
  }
  delete node.dataset.seconds;
  const en = WORDS[state];
  // Long overdue: how late, which matters more at the door than "due".
  const late = state === "due" && seconds < -60 ? ` +${clockText(-seconds)}` : "";
  value.replaceChildren(en + late);
}

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.textContent = text;
  return node;
}
