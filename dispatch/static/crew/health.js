/*
 * health.js — the patient's summary as the crew needs it at the kerb: allergies and blood type
 * first and large, then the rest; or, when there is none, why, in words.
 */

import { bi, el } from "./dom.js";

const REASONS = {
  no_consent: ["The patient has not agreed to share their archive with 120.", "患者未授权向 120 共享健康档案。"],
  not_for_self: ["Called for someone else: the caller's archive is not the patient's.", "他人代呼：呼叫者的档案不是患者本人的。"],
  no_archive: ["The caller has no health archive.", "呼叫者没有健康档案。"],
  not_on_case: ["This case is no longer yours; its health data is closed.", "该病例已不由本车处理，健康档案已关闭。"],
  no_grant: ["No access to this archive has been granted for this case.", "本病例未获得档案访问授权。"],
  grant_closed: ["Access ended when the case closed.", "病例结束，访问授权已结束。"],
  grant_expired: ["Access has expired; the dispatcher can renew it.", "访问授权已过期，可请调度员续期。"],
  wrong_patient: ["The archive does not match this patient.", "档案与患者不符。"],
  reader_inactive: ["Your account is not active.", "您的账号已停用。"],
  unavailable: ["The archive cannot be read right now; the administrators have been alerted.", "健康档案暂时无法读取，已通知管理员。"],
};
const SEX = { male: "Male 男", female: "Female 女", other: "Other 其他", unknown: "Sex unknown 性别不详" };
const SEVERITY = { mild: "mild 轻度", moderate: "moderate 中度", severe: "severe 重度" };

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
  return `${Math.floor((Date.now() - born) / (365.25 * 86400000))} y 岁`;
}

function section(en, zh, items, render) {
  if (!items.length) return null;
  return el("div", { class: "health-section" }, el("h4", {}, bi(en, zh)), el("ul", {}, ...items.map((i) => el("li", {}, render(i)))));
}

/** Fill `container` from a health block {available, reason?, summary?} (or null: none yet). */
export function renderHealth(container, block) {
  container.replaceChildren();
  if (!block) {
    container.append(el("p", { class: "muted" }, bi("No summary yet.", "暂无摘要。")));
    container.dataset.health = "none";
    return;
  }
  if (!block.available) {
    const [en, zh] = REASONS[block.reason] || REASONS.unavailable;
    container.dataset.health = text(block.reason) || "unavailable";
    container.append(el("p", { class: "health-reason" }, bi(en, zh)));
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
      el("div", { class: `blood${blood ? "" : " unknown"}`, id: "blood-type" }, el("span", { class: "label" }, bi("Blood", "血型")), el("strong", {}, blood || "?")),
      el(
        "div",
        { class: `allergies${allergies.length ? " has-allergies" : ""}`, id: "allergies" },
        el("span", { class: "label" }, bi("Allergies", "过敏")),
        allergies.length
          ? el("strong", {}, allergies.map((a) => `⚠ ${text(a && a.substance)}${a && a.severity ? ` (${SEVERITY[a.severity] || a.severity})` : ""}`).join("  "))
          : el("strong", {}, bi("None recorded", "未记录")),
      ),
    ),
  );
  const pregnant = s.pregnancy && s.pregnancy.status === "pregnant";
  const who = [text(s.name), SEX[s.sex] || "", age(s.date_of_birth), pregnant ? "Pregnant 怀孕" : ""].filter(Boolean).join(" · ");
  if (who) container.append(el("p", { class: "patient" }, who));
  if (s.access_basis === "override") container.append(el("p", { class: "override" }, bi("Emergency override by dispatch", "调度紧急授权")));
  const parts = [
    section("Conditions", "慢性病", list(s.chronic_conditions), (c) => text(c)),
    section("Medications", "用药", list(s.medications), (m) => [text(m && m.name), text(m && m.dose)].filter(Boolean).join(" ")),
    section("Devices", "植入装置", list(s.implanted_devices), (d) => text(d)),
    section("Directives", "预嘱", s.advance_directives ? [s.advance_directives] : [], (d) => text(d)),
    section("Contacts", "紧急联系人", list(s.emergency_contacts), (c) => {
      const phone = text(c && c.phone);
      return el("span", {}, `${text(c && c.name)} (${text(c && c.relation)}) `, phone ? el("a", { href: `tel:${phone}` }, phone) : "");
    }),
  ];
  container.append(...parts.filter(Boolean));
}
