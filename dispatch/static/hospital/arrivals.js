/*
 * arrivals.js — today's arrivals: patients handed over to this ED since local midnight. Built from
 * GET /api/v1/hospitals/{id}/arrivals and from `admission.updated` (status handed_over) on the
 * stream; neither carries health data, and a row taken from the incoming list drops its summary.
 */

import { asText, el, hhmm, label } from "./dom.js";

/** The start of the board's day, as the endpoint's `since` (ISO 8601, UTC). */
export function localMidnightIso(now = new Date()) {
  const midnight = new Date(now);
  midnight.setHours(0, 0, 0, 0);
  return midnight.toISOString();
}

/** Only what the arrivals list shows: never a health summary, even if the source had one. */
export function arrivalOf(admission) {
  const { health_summary: _dropped, ...rest } = admission;
  return rest;
}

export function renderArrivals(tbody, arrivals, labels, { since }) {
  const rows = [...arrivals.values()]
    .filter((a) => !since || Date.parse(a.updated_at) >= Date.parse(since))
    .sort((a, b) => Date.parse(b.updated_at) - Date.parse(a.updated_at) || b.id - a.id);
  tbody.replaceChildren(
    ...rows.map((a) =>
      el(
        "tr",
        { class: "arrival-row", "data-admission-id": a.id },
        el("td", {}, el("time", { datetime: asText(a.updated_at) }, hhmm(a.updated_at))),
        el("td", { class: "unit" }, asText(a.ambulance && a.ambulance.call_sign) || "—"),
        el("td", {}, label(labels.complaint[a.complaint], asText(a.complaint))),
        el("td", { class: "reg-no" }, asText(a.registration_no) || "—"),
      ),
    ),
  );
  return rows.length;
}
