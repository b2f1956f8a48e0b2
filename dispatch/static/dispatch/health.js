/*
 * health.js — the patient's health summary on the dispatcher console: the badge in the queue, the
 * card in the details panel, the emergency override (break-glass) and the renewal of an expired grant.
 *
 * Each read of a patient's archive is audited (dispatch/health.py), so the console reads one only
 * when the dispatcher opens a case (GET /api/v1/dispatch/cases/{id}), keeps it in memory while the
 * case is active and forgets it when the case ends. Reading again is an explicit button.
 */

import { api, serverNow } from "/static/onekey/api.js";
import { ENDED, asList, asText, bi, el, formatDate, urlFor } from "./labels.js";

export const HEALTH_REASONS = {
  no_consent: ["no consent", "未授权", "The patient has not consented to share their archive with 120.", "患者未授权向 120 共享健康档案。"],
  not_for_self: ["not the patient", "非本人", "Called for someone else: the caller's archive is not the patient's.", "他人代呼：呼叫者的档案不是患者本人的。"],
  no_account: ["no account", "无账号", "A call taken by phone: the caller has no account, so no archive.", "电话来电：来电人没有账号，因此没有健康档案。"],
  no_archive: ["no archive", "无档案", "The caller has no health archive.", "呼叫者没有健康档案。"],
  not_on_case: ["no access", "无权查看", "This case is no longer open to you; its health data is closed.", "该病例已不在您的处理范围内，健康档案已关闭。"],
  unavailable: ["unavailable", "暂不可用", "The archive cannot be read right now; the administrators have been alerted.", "健康档案暂时无法读取，已通知管理员。"],
  grant_closed: ["access ended", "授权已结束", "Access ended when the case closed.", "病例结束，访问授权已结束。"],
  grant_expired: ["access expired", "授权已过期", "The access grant has expired.", "访问授权已过期。"],
};
const SEXES = { male: ["male", "男"], female: ["female", "女"], other: ["other", "其他"], unknown: ["sex unknown", "性别不详"] };
const SEVERITIES = { mild: ["mild", "轻度"], moderate: ["moderate", "中度"], severe: ["severe", "重度"] };
const RH = { positive: ["positive", "阳性"], negative: ["negative", "阴性"] };
const PREGNANCY = { pregnant: ["Pregnant", "怀孕"], not_pregnant: ["Not pregnant", "未怀孕"], unknown: ["Unknown", "不详"] };

export function isHealthBlock(block) {
  return block != null && typeof block === "object" && typeof block.available === "boolean";
}

/** Keep a summary block for the case (from an event, a read or an override) and show it. */
export function setHealth(ctx, entry, block) {
  if (!isHealthBlock(block) || ENDED.has(entry.data.status)) return;
  const before = entry.health;
  entry.health = block;
  renderHealthBadge(entry.cells.health, block);
  ctx.onHealth(entry);
  // The same refusal again (an event replayed) leaves the panel, and a reason being typed, alone.
  const same = before && !before.available && !block.available && before.reason === block.reason;
  if (entry.panel && !same) renderHealthPanel(ctx, entry);
}

function bloodShort(bt) {
  const abo = bt && bt.abo && bt.abo !== "unknown" ? String(bt.abo) : "?";
  const rh = bt && bt.rh === "positive" ? "+" : bt && bt.rh === "negative" ? "−" : "?";
  return abo === "?" && rh === "?" ? null : `${abo} Rh${rh}`;
}

function bloodLong(bt) {
  const abo = bt && bt.abo && bt.abo !== "unknown" ? String(bt.abo) : "ABO unknown 不详";
  const rh = bt && RH[bt.rh] ? `Rh ${RH[bt.rh][0]} ${RH[bt.rh][1]}` : "Rh unknown 不详";
  return `${abo}, ${rh}`;
}


export function renderHealthBadge(cell, block) {
  cell.textContent = "";
  if (!block) {
    cell.dataset.health = "unknown";
    cell.append(el("span", { class: "muted", title: "Read when the case details are opened 打开详情时读取" }, "—"));
    return;
  }
  if (!block.available) {
    const reason = asText(block.reason) || "unavailable";
    cell.dataset.health = reason;
    const [en, zh] = HEALTH_REASONS[reason] || ["not shown", "不可用"];
    cell.append(el("span", { class: `health-reason reason-${reason}`, title: reason }, bi(en, zh)));
    return;
  }
  const s = block.summary || {};
  cell.dataset.health = "available";
  const blood = bloodShort(s.blood_type);
  cell.append(el("span", { class: "blood", title: `Blood type 血型: ${bloodLong(s.blood_type)}` }, blood || bi("blood ?", "血型不详")));
  const allergies = asList(s.allergies);
  if (allergies.length) {
    cell.append(
      " ",
      el(
        "span",
        { class: "allergy-flag", title: allergies.map((a) => asText(a && a.substance)).join(", ") },
        `⚠ allergies ${allergies.length} `,
        el("span", { lang: "zh-CN" }, "过敏"),
      ),
    );
  }
  if (s.access_basis === "override") cell.append(" ", el("span", { class: "override-flag" }, bi("override", "紧急授权")));
}

/** The health section of the details panel; filled by renderHealthPanel. */
export function createHealthCard(ctx, entry) {
  const id = `health-${entry.id}`;
  const title = el("h3", { class: "panel-title", id, tabindex: "-1" }, bi("Health archive", "健康档案"));
  const reread = el(
    "button",
    {
      type: "button",
      class: "button small reread",
      title: "Each read is written to the patient's access log. 每次读取都会记入患者的访问日志。",
      onclick: () => loadHealth(ctx, entry),
    },
    bi("Read again", "重新读取"),
  );
  const status = el("p", { class: "panel-status small muted", role: "status", "aria-live": "polite" });
  const error = el("p", { class: "alert alert-error health-error", role: "alert", hidden: true });
  const body = el("div", { class: "health-body" });
  const section = el("section", { class: "health-card", "aria-labelledby": id }, el("div", { class: "panel-head" }, title, reread), status, error, body);
  return { section, healthSection: section, healthTitle: title, healthStatus: status, healthError: error, healthBody: body, reread, override: null };
}

function showHealthLoading(panel, loading) {
  panel.reread.disabled = loading;
  panel.healthStatus.textContent = loading ? "Reading the health archive… 正在读取健康档案" : "";
}

function setHealthError(panel, message) {
  panel.healthError.textContent = message || "";
  panel.healthError.hidden = !message;
}

/** Show what is known, reading the archive only when nothing was read yet. */
export function showHealth(ctx, entry) {
  if (!entry.panel) return;
  if (entry.health) renderHealthPanel(ctx, entry);
  else if (entry.healthLoading) showHealthLoading(entry.panel, true); // a read already under way
  else loadHealth(ctx, entry);
}

/** One audited read (GET the case); at most one at a time per case, whatever the panel does. */
export async function loadHealth(ctx, entry) {
  if (entry.healthLoading) return;
  entry.healthLoading = true;
  if (entry.panel) {
    setHealthError(entry.panel, null);
    showHealthLoading(entry.panel, true);
  }
  let body = null;
  let failure = null;
  try {
    body = await api(urlFor(ctx.cfg.caseUrl, entry.id));
  } catch (err) {
    failure = err;
  }
  entry.healthLoading = false;
  const panel = entry.panel; // the one open now, if any
  if (panel) showHealthLoading(panel, false);
  if (failure) {
    if (panel) setHealthError(panel, `Could not read the health archive 无法读取健康档案: ${failure.status ? `${failure.status} — ` : ""}${failure.message}`);
    return;
  }
  if (body && isHealthBlock(body.health_summary)) {
    if (ctx.state.cases.get(entry.id) !== entry) return; // removed meanwhile
    const { health_summary: block, ...caseData } = body;
    ctx.upsertCase(caseData, { quiet: true }); // the case in full, fresh
    setHealth(ctx, entry, block); // the read is logged whether or not the panel is still open
  }
}

function fieldBox(en, zh, className, content) {
  return el("div", { class: `health-field ${className}` }, el("dt", {}, bi(en, zh)), el("dd", {}, content));
}

function noneRecorded() {
  return el("span", { class: "muted" }, bi("None recorded", "未记录"));
}

function itemList(items, render) {
  if (!items.length) return noneRecorded();
  return el("ul", { class: "health-list" }, ...items.map(render));
}

function ageFrom(dob) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(asText(dob));
  if (!m) return null;
  const now = new Date(serverNow());
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  let age = now.getFullYear() - year;
  if (now.getMonth() + 1 < month || (now.getMonth() + 1 === month && now.getDate() < day)) age -= 1;
  return age >= 0 ? age : null;
}

export function renderHealthPanel(ctx, entry) {
  const panel = entry.panel;
  if (!panel) return;
  const body = panel.healthBody;
  const block = entry.health;
  body.textContent = "";
  panel.override = null;
  panel.healthSection.classList.remove("is-override", "is-refused");
  if (!block) return;
  body.dataset.available = String(block.available);
  if (!block.available) {
    const reason = asText(block.reason) || "unavailable";
    panel.healthSection.classList.add("is-refused");
    const [en, zh, longEn, longZh] = HEALTH_REASONS[reason] || ["not shown", "不可用", `No health summary (${reason}).`, "无健康摘要。"];
    body.append(
      el("p", { class: "health-refused" }, el("span", { class: `health-reason reason-${reason}` }, bi(en, zh)), " ", longEn, " ", el("span", { lang: "zh-CN" }, longZh)),
    );
    if (reason === "no_consent" && !ENDED.has(entry.data.status)) body.append(reasonControls(ctx, entry, OVERRIDE));
    if (reason === "grant_expired" && !ENDED.has(entry.data.status)) body.append(reasonControls(ctx, entry, RENEW));
    return;
  }

  const s = block.summary || {};
  const override = s.access_basis === "override";
  panel.healthSection.classList.toggle("is-override", override);
  if (override) {
    body.append(
      el(
        "p",
        { class: "override-note", role: "note" },
        "⚠ Emergency override — flagged for review. ",
        el("span", { lang: "zh-CN" }, "紧急授权，已标记复核。"),
      ),
    );
  }

  const who = el("p", { class: "health-who" }, el("strong", { class: "health-name" }, asText(s.name) || "—"));
  const sex = SEXES[s.sex];
  if (sex) who.append(" · ", bi(sex[0], sex[1]));
  if (s.date_of_birth) {
    const age = ageFrom(s.date_of_birth);
    who.append(" · ", bi("born", "出生"), ` ${asText(s.date_of_birth)}`);
    if (age != null) who.append(` (${age} y `, el("span", { lang: "zh-CN" }, "岁"), ")");
  }
  const blood = bloodShort(s.blood_type);
  const facts = el(
    "p",
    { class: "health-facts" },
    el("span", { class: "health-label" }, bi("Blood type", "血型")),
    " ",
    el("strong", { class: "blood big" }, blood || "?"),
    " ",
    el("span", { class: "small muted" }, bloodLong(s.blood_type)),
  );
  const basis = el(
    "p",
    { class: "health-basis small" },
    el("span", { class: "health-label" }, bi("Access basis", "调阅依据")),
    ": ",
    el("strong", { class: `basis basis-${override ? "override" : "consent"}` }, override ? bi("override", "紧急授权") : bi("consent", "患者授权")),
    " · ",
    el("span", { class: "health-label" }, bi("Verified", "核实于")),
    ": ",
    el("span", { class: "verified-at" }, s.verified_at ? formatDate(s.verified_at) : "—"),
  );

  const pregnancy = s.pregnancy && typeof s.pregnancy === "object" ? s.pregnancy : null;
  let pregnancyContent = noneRecorded();
  if (pregnancy) {
    const [en, zh] = PREGNANCY[pregnancy.status] || [asText(pregnancy.status), ""];
    pregnancyContent = el("span", {}, bi(en, zh));
    if (pregnancy.due_date) pregnancyContent.append(" · ", bi("due", "预产期"), ` ${asText(pregnancy.due_date)}`);
  }
  const doctor = s.family_doctor && typeof s.family_doctor === "object" ? s.family_doctor : null;

  const grid = el(
    "dl",
    { class: "health-grid" },
    fieldBox("Allergies", "过敏", "allergies", itemList(asList(s.allergies), (a) => {
      const severity = asText(a && a.severity);
      const sev = SEVERITIES[severity];
      return el(
        "li",
        { class: `allergy${severity === "severe" ? " severe" : ""}` },
        el("strong", { class: "substance" }, asText(a && a.substance)),
        a && a.reaction ? ` — ${asText(a.reaction)}` : null,
        sev ? " " : null,
        sev ? el("span", { class: `sev sev-${severity}` }, bi(sev[0], sev[1])) : null,
      );
    })),
    fieldBox("Chronic conditions", "慢性病", "conditions", itemList(asList(s.chronic_conditions), (c) => el("li", {}, asText(c)))),
    fieldBox("Medications", "用药", "medications", itemList(asList(s.medications), (m) =>
      el("li", {}, el("strong", {}, asText(m && m.name)), m && m.dose ? ` — ${asText(m.dose)}` : null))),
    fieldBox("Implanted devices", "植入装置", "devices", itemList(asList(s.implanted_devices), (d) => el("li", {}, asText(d)))),
    fieldBox("Pregnancy", "妊娠", "pregnancy", pregnancyContent),
    fieldBox("Advance directives", "预先医疗指示", "directives",
      s.advance_directives ? el("span", { class: "directives-text" }, asText(s.advance_directives)) : noneRecorded()),
    fieldBox("Emergency contacts", "紧急联系人", "contacts", itemList(asList(s.emergency_contacts), (c) =>
      el(
        "li",
        {},
        el("strong", {}, asText(c && c.name)),
        c && c.relation ? ` (${asText(c.relation)})` : null,
        c && c.phone ? " " : null,
        c && c.phone ? el("a", { href: `tel:${asText(c.phone).replace(/[^\d+]/g, "")}` }, asText(c.phone)) : null,
      ))),
    fieldBox("Family doctor", "家庭医生", "doctor", doctor
      ? el("span", {}, asText(doctor.name), doctor.phone ? " · " : null, doctor.phone ? el("span", { class: "phone" }, asText(doctor.phone)) : null)
      : noneRecorded()),
    fieldBox("Past surgeries", "既往手术", "surgeries", itemList(asList(s.past_surgeries), (x) =>
      el("li", {}, asText(x && x.name), x && x.year ? ` (${asText(x.year)})` : null))),
  );
  body.append(el("div", { class: "health-top" }, who, facts, basis), grid);
}


// A reason the server checks (dispatch/inputs.py validate_reason_words: 10+ characters, in words).
const OVERRIDE = {
  kind: "override",
  open: ["Emergency override", "紧急授权"],
  label: ["Reason for emergency access", "紧急调阅理由"],
  hint: ["10–500 characters, in words. Logged, flagged for review and shown to the patient.", "10–500 字，请用文字说明；将记录在案、标记复核并告知患者。"],
  submit: ["Open the archive", "调阅档案"],
  refused: ["override refused", "未授权"],
  url: (ctx, id) => urlFor(ctx.cfg.overrideUrl, id),
};
const RENEW = {
  kind: "renew",
  open: ["Renew access", "续期授权"],
  label: ["Reason for renewing access", "续期理由"],
  hint: ["10–500 characters, in words. Logged and flagged for review.", "10–500 字，请用文字说明；将记录在案并标记复核。"],
  submit: ["Renew and read", "续期并读取"],
  refused: ["renewal refused", "续期被拒绝"],
  url: (ctx, id) => urlFor(ctx.cfg.renewUrl, id),
};

/** Break-glass (read without consent) or renewal (an expired grant): a reason, then the request. */
function reasonControls(ctx, entry, how) {
  const panel = entry.panel;
  const base = `${how.kind}-${entry.id}`;
  const input = el("input", {
    type: "text",
    id: `${base}-reason`,
    name: "reason",
    class: "override-reason",
    required: true,
    minlength: "10",
    maxlength: "500",
    autocomplete: "off",
    "aria-describedby": `${base}-hint ${base}-error`,
  });
  const fieldError = el("p", { class: "field-error", id: `${base}-error`, hidden: true });
  const submit = el("button", { type: "submit", class: "button small danger" }, bi(...how.submit));
  const cancel = el("button", { type: "button", class: "button small" }, bi("Cancel", "取消"));
  const form = el(
    "form",
    { class: "override-form", id: `${base}-form`, hidden: true, novalidate: true, "aria-label": `${how.open[0]} ${how.open[1]}` },
    el("label", { for: input.id }, bi(...how.label)),
    el("p", { class: "small muted", id: `${base}-hint` }, how.hint[0], " ", el("span", { lang: "zh-CN" }, how.hint[1])),
    el("div", { class: "override-inputs" }, input, submit, cancel),
    fieldError,
  );
  const open = el(
    "button",
    { type: "button", class: "button small danger override-open", "aria-expanded": "false", "aria-controls": form.id },
    bi(...how.open),
  );
  const ctl = { form, input, submit, open, fieldError, busy: false };
  panel.override = ctl;
  open.addEventListener("click", () => {
    form.hidden = false;
    open.hidden = true;
    open.setAttribute("aria-expanded", "true");
    input.focus();
  });
  cancel.addEventListener("click", () => {
    form.hidden = true;
    open.hidden = false;
    open.setAttribute("aria-expanded", "false");
    setFieldError(ctl, null);
    setHealthError(panel, null);
    open.focus();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitReason(ctx, entry, ctl, how);
  });
  return el("div", { class: "override" }, open, form);
}

function setFieldError(ctl, message) {
  ctl.fieldError.textContent = message || "";
  ctl.fieldError.hidden = !message;
  if (message) ctl.input.setAttribute("aria-invalid", "true");
  else ctl.input.removeAttribute("aria-invalid");
}

async function submitReason(ctx, entry, ctl, how) {
  const panel = entry.panel;
  if (!panel || ctl.busy) return;
  const reason = ctl.input.value.trim();
  if (reason.length < 10 || reason.length > 500) {
    setFieldError(ctl, "Give a reason of 10 to 500 characters. 请填写 10–500 字的理由。");
    ctl.input.focus();
    return;
  }
  setFieldError(ctl, null);
  setHealthError(panel, null);
  ctl.busy = true;
  ctl.submit.disabled = true;
  panel.healthStatus.textContent = "Opening the archive… 正在调阅";
  let body = null;
  let failure = null;
  try {
    body = await api(how.url(ctx, entry.id), { method: "POST", body: { reason } });
  } catch (err) {
    failure = err;
  }
  ctl.busy = false;
  ctl.submit.disabled = false;
  if (entry.panel !== panel) return; // closed (or the case ended) meanwhile
  panel.healthStatus.textContent = "";
  if (failure) {
    if (!failure.status) {
      setHealthError(panel, `Network error — nothing recorded 网络错误，未记录: ${failure.message}`);
      return;
    }
    if (failure.fields && failure.fields.reason) {
      setFieldError(ctl, failure.fields.reason.join(" "));
      return;
    }
    const what = failure.status === 409 ? `409 Conflict — ${how.refused[0]} 冲突，${how.refused[1]}` : `${failure.status} — ${how.refused[0]} ${how.refused[1]}`;
    setHealthError(panel, `${what}: ${failure.detail}`);
    return;
  }
  if (how.kind === "renew") {
    loadHealth(ctx, entry); // renewed: read the summary under the new grant
    ctx.announce(`Access renewed for case #${entry.id}; flagged for review. 授权已续期，已标记复核。`);
    return;
  }
  if (isHealthBlock(body)) {
    setHealth(ctx, entry, body);
    renderHealthPanel(ctx, entry);
    panel.healthTitle.focus(); // the form is gone; keep focus in the health section
    ctx.announce(`Emergency override recorded for case #${entry.id}; flagged for review. 紧急授权已记录，已标记复核。`);
  }
}
