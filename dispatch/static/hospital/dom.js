/*
 * dom.js — small DOM helpers for the admission board (no framework, no innerHTML: every text is
 * set as text, so nothing from the server can become markup).
 */
import { asText, el } from "/static/onekey/dom.js";
import { t, tf, tn, choice } from "/static/onekey/i18n.js";

export { asList, asText, el } from "/static/onekey/dom.js";

/** A model choice label "Chest pain 胸痛", in the page's language. */
export function label(text, fallback = "") {
  return choice(typeof text === "string" && text ? text : fallback);
}

/** A local wall-clock time (HH:MM) for an ISO instant; "" when there is none. */
export function hhmm(iso) {
  const at = iso ? new Date(iso) : null;
  if (!at || Number.isNaN(at.getTime())) return "";
  return at.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit", hour12: false });
}

/** A phone number as a tel: link (digits and + only in the href). */
export function telLink(phone, attrs = {}) {
  const text = asText(phone);
  return el("a", { href: `tel:${text.replace(/[^\d+]/g, "")}`, class: "tel", ...attrs }, text);
}

/** Show `message` in the element with id `errorId` (hidden when empty) and mark `input` invalid. */
export function fieldError(errorId, message, input = null) {
  const box = document.getElementById(errorId);
  if (box) {
    box.textContent = message || "";
    box.hidden = !message;
  }
  if (input) {
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }
}
