/*
 * labels.js — display text and small DOM helpers of the dispatcher console.
 *
 * Text is in the page's language (onekey/i18n.js). Model choices come from the server (json_script
 * "console-labels", the models' own bilingual labels) and show only the page's half; the rest is here.
 * Every value from the server reaches the DOM through textContent, never as HTML.
 */

import { serverNow } from "/static/onekey/api.js";
import { asText, el } from "/static/onekey/dom.js";
import { t, tf, tn, choice, localized } from "/static/onekey/i18n.js";

export function readJson(id) {
  const node = document.getElementById(id);
  if (!node) return null;
  try { return JSON.parse(node.textContent); } catch (_) { return null; }
}

export const LABELS = readJson("console-labels") || {};
export const ENDED = new Set(["closed", "cancelled"]);

export function label(kind, value) {
  const table = LABELS[kind] || {};
  return table[value] ? choice(table[value]) : value == null ? "—" : String(value);
}

export { asList, asText, el } from "/static/onekey/dom.js";

export function urlFor(template, id) {
  return template.replace(/\/0(?=\/|$)/, "/" + encodeURIComponent(id));
}

export const pad = (n) => String(n).padStart(2, "0");

export function parseTime(iso) {
  if (!iso) return null;
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? ms : null;
}

/** Local wall-clock time of an instant; the date is added when it is not today. */
export function formatLocalTime(ms) {
  const d = new Date(ms);
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const today = new Date(serverNow());
  const sameDay = d.getFullYear() === today.getFullYear() && d.getMonth() === today.getMonth() && d.getDate() === today.getDate();
  return sameDay ? time : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

export function formatDate(iso) {
  const ms = parseTime(iso);
  if (ms == null) return asText(iso) || "—";
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function formatDuration(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  return h ? `${h}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
}

export function formatDistance(m) {
  if (!Number.isFinite(m)) return "—";
  return m < 1000 ? tf("%(m)s m", { m: Math.round(m) }) : tf("%(km)s km", { km: (m / 1000).toFixed(1) });
}

export function formatEta(s) {
  if (!Number.isFinite(s)) return "—";
  s = Math.max(0, Math.round(s));
  const min = Math.floor(s / 60);
  return min ? tf("%(min)s min %(s)s s", { min, s: pad(s % 60) }) : tf("%(s)s s", { s });
}

export function formatCoord(value) {
  return Number.isFinite(value) ? value.toFixed(5) : "—";
}

/** A phone number as a tel: link (digits and + only in the href). */
export function telLink(phone, className = "tel") {
  const text = asText(phone);
  if (!text) return null;
  return el("a", { href: `tel:${text.replace(/[^\d+]/g, "")}`, class: className, title: t("Call") }, text);
}

/** Where the case is: the address when the server resolved one, else the coordinates. */
export function placeText(c) {
  const address = localized(c, "address");
  const district = localized(c, "district");
  if (address) return district && !String(address).includes(district) ? `${district} · ${address}` : String(address);
  return `${formatCoord(c.lat)}, ${formatCoord(c.lon)}`;
}

export const CONN_TEXT = {
  connecting: t("Connecting…"),
  connected: t("Connected"),
  reconnecting: t("Reconnecting…"),
  "signed-out": t("Signed out — sign in again"),
};

/** ETA text for a case's unit: to the scene, or to the hospital while transporting. */
export const ETA_TARGET = {
  scene: t("to scene"),
  hospital: t("to hospital"),
};
