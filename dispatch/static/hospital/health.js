/*
 * health.js — the incoming patient's health summary as the ED needs it at the door: allergies and
 * blood type first and large, then conditions, medications, devices, pregnancy, directives,
 * contacts. When there is no summary, the reason in words (never an empty box).
 * The summary arrives with the feed (read for this hospital and logged in the patient's access
 * log); it is kept only in this page's memory and never in storage.
 */

import { allergyItem } from "/static/onekey/allergies.js";
import { asList, asText, el, telLink } from "./dom.js";
import { t, tf, tn, choice } from "/static/onekey/i18n.js";

const REASONS = {
  no_consent: t("The patient has not agreed to share their archive with 120."),
  not_for_self: t("Called by someone else: the caller's archive is not the patient's."),
  no_archive: t("The patient has no health archive."),
  not_on_case: t("Health data is not open to this hospital for this patient."),
  grant_closed: t("Access ended when the case closed."),
  grant_expired: t("Access has expired; the 120 centre can renew it."),
  no_grant: t("No access grant for this hospital yet."),
  wrong_patient: t("The archive does not match this patient."),
  reader_inactive: t("Your account is not active."),
  unavailable: t("The archive cannot be read right now; the administrators have been alerted."),
};

const SEXES = { male: t("male"), female: t("female"), other: t("other") };
const RH = { positive: "+", negative: "−" };
const PREGNANCY = { pregnant: t("pregnant"), not_pregnant: t("not pregnant") };

function bloodText(blood) {
  if (!blood || typeof blood !== "object" || !blood.abo || blood.abo === "unknown") return "?";
  return `${blood.abo}${RH[blood.rh] || ""}`;
}

function ageFrom(iso) {
  const born = new Date(iso);
  if (Number.isNaN(born.getTime())) return null;
  const now = new Date();
  let age = now.getFullYear() - born.getFullYear();
  if (now < new Date(now.getFullYear(), born.getMonth(), born.getDate())) age -= 1;
  return age >= 0 ? age : null;
}

function row(en, cls, content) {
  return el("div", { class: `hx ${cls}` }, el("dt", {}, en), el("dd", {}, content));
}

function items(list, render) {
  return list.length ? el("ul", { class: "hx-list" }, list.map(render)) : el("span", { class: "muted" }, t("none recorded"));
}

/** The health block of one patient card, from the feed's `health_summary` ({available, summary|reason}). */
export function healthBlock(block) {
  if (!block) {
    return el("div", { class: "health health-none" }, el("p", { class: "muted" }, t("No health summary received.")));
  }
  if (!block.available) {
    const reason = asText(block.reason) || "unavailable";
    const en = REASONS[reason] || REASONS.unavailable;
    return el(
      "div",
      { class: "health health-none", "data-reason": reason },
      el("p", { class: "health-why" }, el("strong", {}, t("No health summary")), " — ", en),
    );
  }
  const s = block.summary || {};
  const allergies = asList(s.allergies);
  const who = el("p", { class: "health-who" }, el("strong", { class: "health-name" }, asText(s.name) || "—"));
  const sex = SEXES[s.sex];
  if (sex) who.append(" · ", sex);
  const age = s.date_of_birth ? ageFrom(s.date_of_birth) : null;
  if (age !== null) who.append(" · ", tf("%(age)s y", { age }));
  if (s.access_basis === "override") who.append(" · ", el("span", { class: "basis-override" }, t("emergency override")));

  const allergyBox = el(
    "div",
    { class: `allergy-box${allergies.length ? " has-allergies" : ""}` },
    el("span", { class: "hx-title" }, t("Allergies")),
    allergies.length
      ? el(
          "ul",
          { class: "allergy-list" },
          allergies.map(allergyItem),
        )
      : el("span", { class: "no-allergies" }, t("none known")),
  );
  const bloodBox = el(
    "div",
    { class: "blood-box" },
    el("span", { class: "hx-title" }, t("Blood type")),
    el("strong", { class: "blood-type" }, bloodText(s.blood_type)),
  );

  const pregnancy = s.pregnancy && typeof s.pregnancy === "object" ? s.pregnancy : null;
  const details = el("dl", { class: "hx-grid" });
  details.append(
    row(t("Conditions"), "conditions", items(asList(s.chronic_conditions), (c) => el("li", {}, asText(c)))),
    row(t("Medications"), "medications", items(asList(s.medications), (m) =>
      el("li", {}, el("strong", {}, asText(m && m.name)), m && m.dose ? ` ${asText(m.dose)}` : null))),
  );
  const devices = asList(s.implanted_devices);
  if (devices.length) details.append(row(t("Devices"), "devices", items(devices, (d) => el("li", {}, asText(d)))));
  if (pregnancy && PREGNANCY[pregnancy.status]) {
    const en = PREGNANCY[pregnancy.status];
    details.append(row(t("Pregnancy"), "pregnancy", el("span", {}, en, pregnancy.due_date ? ` · ${asText(pregnancy.due_date)}` : null)));
  }
  if (s.advance_directives) details.append(row(t("Directives"), "directives", asText(s.advance_directives)));
  const contacts = asList(s.emergency_contacts);
  if (contacts.length) {
    details.append(row(t("Contacts"), "contacts", items(contacts, (c) =>
      el("li", {}, asText(c && c.name), c && c.relation ? ` (${asText(c.relation)}) ` : " ", c && c.phone ? telLink(c.phone) : null))));
  }
  return el("div", { class: "health health-available" }, who, el("div", { class: "health-key" }, bloodBox, allergyBox), details);
}
