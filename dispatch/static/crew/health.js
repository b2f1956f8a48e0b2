/*
 * health.js — the patient's summary as the crew needs it at the kerb: allergies and blood type
 * first and large, then the rest; or, when there is none, why, in words.
 */

import { SEVERITY } from "/static/onekey/allergies.js";
import { el } from "/static/onekey/dom.js";
import { t, tf, tn, choice } from "/static/onekey/i18n.js";

const REASONS = {
  no_consent: t("The patient has not agreed to share their archive with 120."),
  not_for_self: t("Called for someone else: the caller's archive is not the patient's."),
  no_archive: t("The caller has no health archive."),
  not_on_case: t("This case is no longer yours; its health data is closed."),
  no_grant: t("No access to this archive has been granted for this case."),
  grant_closed: t("Access ended when the case closed."),
  grant_expired: t("Access has expired; the dispatcher can renew it."),
  wrong_patient: t("The archive does not match this patient."),
  reader_inactive: t("Your account is not active."),
  unavailable: t("The archive cannot be read right now; the administrators have been alerted."),
};
const SEX = { male: t("Male"), female: t("Female"), other: t("Other"), unknown: t("Sex unknown") };

const list = (v) => (Array.isArray(v) ? v : []);
const text = (v) => (v == null ? "" : String(v));

function bloodText(blood) {
  if (!blood || !blood.abo || blood.abo === "unknown") return "";
  const rh = blood.rh === "negative" ? "Rh−" : blood.rh === "positive" ? "Rh+" : "";
  return `${blood.abo} ${rh}`.trim();
}

function age(dob) {
  const born = Date.parse(dob);
  if (!Number.isFinite(born)) return "";
  return tf("%(age)s y", { age: Math.floor((Date.now() - born) / (365.25 * 86400000)) });
}

function section(en, items, render) {
  if (!items.length) return null;
  return el("div", { class: "health-section" }, el("h4", {}, en), el("ul", {}, ...items.map((i) => el("li", {}, render(i)))));
}

/** Fill `container` from a health block {available, reason?, summary?} (or null: none yet). */
export function renderHealth(container, block) {
  container.replaceChildren();
  if (!block) {
    container.append(el("p", { class: "muted" }, t("No summary yet.")));
    container.dataset.health = "none";
    return;
  }
  if (!block.available) {
    const en = REASONS[block.reason] || REASONS.unavailable;
    container.dataset.health = text(block.reason) || "unavailable";
    container.append(el("p", { class: "health-reason" }, en));
    return;
  }
  const s = block.summary || {};
  container.dataset.health = "available";
  const allergies = list(s.allergies);
  const blood = bloodText(s.blood_type);
  container.append(
    el(
      "div",
      { class: "health-key" },
      el("div", { class: `blood${blood ? "" : " unknown"}`, id: "blood-type" }, el("span", { class: "label" }, t("Blood")), el("strong", {}, blood || "?")),
      el(
        "div",
        { class: `allergies${allergies.length ? " has-allergies" : ""}`, id: "allergies" },
        el("span", { class: "label" }, t("Allergies")),
        allergies.length
          ? el("strong", {}, allergies.map((a) => `⚠ ${text(a && a.substance)}${a && a.severity ? ` (${SEVERITY[a.severity] || a.severity})` : ""}`).join("  "))
          : el("strong", {}, t("None recorded")),
      ),
    ),
  );
  const pregnant = s.pregnancy && s.pregnancy.status === "pregnant";
  const who = [text(s.name), SEX[s.sex] || "", age(s.date_of_birth), pregnant ? t("Pregnant") : ""].filter(Boolean).join(" · ");
  if (who) container.append(el("p", { class: "patient" }, who));
  if (s.access_basis === "override") container.append(el("p", { class: "override" }, t("Emergency override by dispatch")));
  const parts = [
    section(t("Conditions"), list(s.chronic_conditions), (c) => text(c)),
    section(t("Medications"), list(s.medications), (m) => [text(m && m.name), text(m && m.dose)].filter(Boolean).join(" ")),
    section(t("Devices"), list(s.implanted_devices), (d) => text(d)),
    section(t("Directives"), s.advance_directives ? [s.advance_directives] : [], (d) => text(d)),
    section(t("Contacts"), list(s.emergency_contacts), (c) => {
      const phone = text(c && c.phone);
      return el("span", {}, `${text(c && c.name)} (${text(c && c.relation)}) `, phone ? el("a", { href: `tel:${phone}` }, phone) : "");
    }),
  ];
  container.append(...parts.filter(Boolean));
}
