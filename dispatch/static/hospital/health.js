/*
 * health.js — the incoming patient's health summary as the ED needs it at the door: allergies and
 * blood type first and large, then conditions, medications, devices, pregnancy, directives,
 * contacts. When there is no summary, the reason in words (never an empty box).
 * The summary arrives with the feed (read for this hospital and logged in the patient's access
 * log); it is kept only in this page's memory and never in storage.
 */

import { asList, asText, bi, el, telLink } from "./dom.js";

const REASONS = {
  no_consent: ["The patient has not agreed to share their archive with 120.", "患者未授权向 120 共享健康档案。"],
  not_for_self: ["Called by someone else: the caller's archive is not the patient's.", "他人代呼：呼叫者的档案不是患者本人的。"],
  no_archive: ["The patient has no health archive.", "患者没有健康档案。"],
  not_on_case: ["Health data is not open to this hospital for this patient.", "该患者的健康档案未向本院开放。"],
  grant_closed: ["Access ended when the case closed.", "病例结束，访问授权已结束。"],
  grant_expired: ["Access has expired; the 120 centre can renew it.", "访问授权已过期，可由 120 调度中心续期。"],
  no_grant: ["No access grant for this hospital yet.", "本院尚无访问授权。"],
  wrong_patient: ["The archive does not match this patient.", "档案与患者不符。"],
  reader_inactive: ["Your account is not active.", "您的账号未启用。"],
  unavailable: ["The archive cannot be read right now; the administrators have been alerted.", "健康档案暂时无法读取，已通知管理员。"],
};

const SEXES = { male: ["male", "男"], female: ["female", "女"], other: ["other", "其他"] };
const RH = { positive: "+", negative: "−" };
const SEVERITY = { mild: ["mild", "轻度"], moderate: ["moderate", "中度"], severe: ["severe", "重度"] };
const PREGNANCY = { pregnant: ["pregnant", "妊娠中"], not_pregnant: ["not pregnant", "未妊娠"] };

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

function row(en, zh, cls, content) {
  return el("div", { class: `hx ${cls}` }, el("dt", {}, bi(en, zh)), el("dd", {}, content));
}

function items(list, render) {
  return list.length ? el("ul", { class: "hx-list" }, list.map(render)) : el("span", { class: "muted" }, bi("none recorded", "无记录"));
}

/** The health block of one patient card, from the feed's `health_summary` ({available, summary|reason}). */
export function healthBlock(block) {
  if (!block) {
    return el("div", { class: "health health-none" }, el("p", { class: "muted" }, bi("No health summary received.", "未收到健康摘要。")));
  }
  if (!block.available) {
    const reason = asText(block.reason) || "unavailable";
    const [en, zh] = REASONS[reason] || REASONS.unavailable;
    return el(
      "div",
      { class: "health health-none", "data-reason": reason },
      el("p", { class: "health-why" }, el("strong", {}, bi("No health summary", "无健康摘要")), " — ", bi(en, zh)),
    );
  }
  const s = block.summary || {};
  const allergies = asList(s.allergies);
  const who = el("p", { class: "health-who" }, el("strong", { class: "health-name" }, asText(s.name) || "—"));
  const sex = SEXES[s.sex];
  if (sex) who.append(" · ", bi(sex[0], sex[1]));
  const age = s.date_of_birth ? ageFrom(s.date_of_birth) : null;
  if (age !== null) who.append(" · ", `${age} y `, el("span", { lang: "zh-CN" }, "岁"));
  if (s.access_basis === "override") who.append(" · ", el("span", { class: "basis-override" }, bi("emergency override", "紧急授权")));

  const allergyBox = el(
    "div",
    { class: `allergy-box${allergies.length ? " has-allergies" : ""}` },
    el("span", { class: "hx-title" }, bi("Allergies", "过敏")),
    allergies.length
      ? el(
          "ul",
          { class: "allergy-list" },
          allergies.map((a) => {
            const severity = asText(a && a.severity);
            const sev = SEVERITY[severity];
            return el(
              "li",
              { class: `allergy${severity === "severe" ? " severe" : ""}` },
              el("strong", { class: "substance" }, asText(a && a.substance)),
              a && a.reaction ? ` — ${asText(a.reaction)}` : null,
              sev ? " " : null,
              sev ? el("span", { class: `sev sev-${severity}` }, bi(sev[0], sev[1])) : null,
            );
          }),
        )
      : el("span", { class: "no-allergies" }, bi("none known", "无已知过敏")),
  );
  const bloodBox = el(
    "div",
    { class: "blood-box" },
    el("span", { class: "hx-title" }, bi("Blood type", "血型")),
    el("strong", { class: "blood-type" }, bloodText(s.blood_type)),
  );

  const pregnancy = s.pregnancy && typeof s.pregnancy === "object" ? s.pregnancy : null;
  const details = el("dl", { class: "hx-grid" });
  details.append(
    row("Conditions", "慢性病", "conditions", items(asList(s.chronic_conditions), (c) => el("li", {}, asText(c)))),
    row("Medications", "用药", "medications", items(asList(s.medications), (m) =>
      el("li", {}, el("strong", {}, asText(m && m.name)), m && m.dose ? ` ${asText(m.dose)}` : null))),
  );
  const devices = asList(s.implanted_devices);
  if (devices.length) details.append(row("Devices", "植入装置", "devices", items(devices, (d) => el("li", {}, asText(d)))));
  if (pregnancy && PREGNANCY[pregnancy.status]) {
    const [en, zh] = PREGNANCY[pregnancy.status];
    details.append(row("Pregnancy", "妊娠", "pregnancy", el("span", {}, bi(en, zh), pregnancy.due_date ? ` · ${asText(pregnancy.due_date)}` : null)));
  }
  if (s.advance_directives) details.append(row("Directives", "预先医疗指示", "directives", asText(s.advance_directives)));
  const contacts = asList(s.emergency_contacts);
  if (contacts.length) {
    details.append(row("Contacts", "紧急联系人", "contacts", items(contacts, (c) =>
      el("li", {}, asText(c && c.name), c && c.relation ? ` (${asText(c.relation)}) ` : " ", c && c.phone ? telLink(c.phone) : null))));
  }
  return el("div", { class: "health health-available" }, who, el("div", { class: "health-key" }, bloodBox, allergyBox), details);
}
