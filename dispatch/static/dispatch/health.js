/*
 * health.js — the patient's health summary on the dispatcher console: the badge in the queue, the
 * card in the details panel, the emergency override (break-glass) and the renewal of an expired grant.
 *
 * Each read of a patient's archive is audited (dispatch/archive_access.py), so the console reads one only
 * when the dispatcher opens a case (GET /api/v1/dispatch/cases/{id}), keeps it in memory while the
 * case is active and forgets it when the case ends. Reading again is an explicit button.
 */

import { allergyItem } from "/static/onekey/allergies.js";
import { api, serverNow } from "/static/onekey/api.js";
import { ENDED, asList, asText, el, formatDate, urlFor } from "./labels.js";
import { t, tf, tn, choice } from "/static/onekey/i18n.js";

export const HEALTH_REASONS = {
  no_consent: [t("no consent"), t("The patient has not consented to share their archive with 120.")],
  not_for_self: [t("not the patient"), t("Called for someone else: the caller's archive is not the patient's.")],
  no_account: [t("no account"), t("A call taken by phone: the caller has no account, so no archive.")],
  no_archive: [t("no archive"), t("The caller has no health archive.")],
  not_on_case: [t("no access"), t("This case is no longer open to you; its health data is closed.")],
  unavailable: [t("unavailable"), t("The archive cannot be read right now; the administrators have been alerted.")],
  grant_closed: [t("access ended"), t("Access ended when the case closed.")],
  grant_expired: [t("access expired"), t("The access grant has expired.")],
};
const SEXES = { male: t("male"), female: t("female"), other: t("other"), unknown: t("sex unknown") };
const RH = { positive: t("positive"), negative: t("negative") };
const PREGNANCY = { pregnant: t("Pregnant"), not_pregnant: t("Not pregnant"), unknown: t("Unknown") };

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
  const abo = bt && bt.abo && bt.abo !== "unknown" ? String(bt.abo) : t("ABO unknown");
  const rh = bt && RH[bt.rh] ? `Rh ${RH[bt.rh]}` : t("Rh unknown");
  return `${abo}, ${rh}`;
}


export function renderHealthBadge(cell, block) {
  cell.textContent = "";
  if (!block) {
    cell.dataset.health = "unknown";
    cell.append(el("span", { class: "muted", title: t("Read when the case details are opened") }, "—"));
    return;
  }
  if (!block.available) {
    const reason = asText(block.reason) || "unavailable";
    cell.dataset.health = reason;
    const [en] = HEALTH_REASONS[reason] || [t("not shown")];
    cell.append(el("span", { class: `health-reason reason-${reason}`, title: reason }, en));
    return;
  }
  const s = block.summary || {};
  cell.dataset.health = "available";
  const blood = bloodShort(s.blood_type);
  cell.append(el("span", { class: "blood", title: tf("Blood type: %(blood)s", { blood: bloodLong(s.blood_type) }) }, blood || t("blood ?")));
  const allergies = asList(s.allergies);
  if (allergies.length) {
    cell.append(
      " ",
      el(
        "span",
        { class: "allergy-flag", title: allergies.map((a) => asText(a && a.substance)).join(", ") },
        tf("⚠ allergies %(n)s", { n: allergies.length }),
      ),
    );
  }
  if (s.access_basis === "override") cell.append(" ", el("span", { class: "override-flag" }, t("override")));
}

/** The health section of the details panel; filled by renderHealthPanel. */
export function createHealthCard(ctx, entry) {
  const id = `health-${entry.id}`;
  const title = el("h3", { class: "panel-title", id, tabindex: "-1" }, t("Health archive"));
  const reread = el(
    "button",
    {
      type: "button",
      class: "button small reread",
      title: t("Each read is written to the patient's access log."),
      onclick: () => loadHealth(ctx, entry),
    },
    t("Read again"),
  );
  const status = el("p", { class: "panel-status small muted", role: "status", "aria-live": "polite" });
  const error = el("p", { class: "alert alert-error health-error", role: "alert", hidden: true });
  const body = el("div", { class: "health-body" });
  const section = el("section", { class: "health-card", "aria-labelledby": id }, el("div", { class: "panel-head" }, title, reread), status, error, body);
  return { section, healthSection: section, healthTitle: title, healthStatus: status, healthError: error, healthBody: body, reread, override: null };
}

function showHealthLoading(panel, loading) {
  panel.reread.disabled = loading;
  panel.healthStatus.textContent = loading ? t("Reading the health archive…") : "";
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
    if (panel) setHealthError(panel, `${t("Could not read the health archive")}: ${failure.status ? `${failure.status} — ` : ""}${failure.message}`);
    return;
  }
  if (body && isHealthBlock(body.health_summary)) {
    if (ctx.state.cases.get(entry.id) !== entry) return; // removed meanwhile
    const { health_summary: block, ...caseData } = body;
    ctx.upsertCase(caseData, { quiet: true }); // the case in full, fresh
    setHealth(ctx, entry, block); // the read is logged whether or not the panel is still open
  }
}

function fieldBox(en, className, content) {
  return el("div", { class: `health-field ${className}` }, el("dt", {}, en), el("dd", {}, content));
}

function noneRecorded() {
  return el("span", { class: "muted" }, t("None recorded"));
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
    const [short, long] = HEALTH_REASONS[reason] || [t("not shown"), tf("No health summary (%(reason)s).", { reason })];
    body.append(
      el("p", { class: "health-refused" }, el("span", { class: `health-reason reason-${reason}` }, short), " ", long),
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
        t("⚠ Emergency override — flagged for review."),
      ),
    );
  }

  const who = el("p", { class: "health-who" }, el("strong", { class: "health-name" }, asText(s.name) || "—"));
  const sex = SEXES[s.sex];
  if (sex) who.append(" · ", sex);
  if (s.date_of_birth) {
    const age = ageFrom(s.date_of_birth);
    who.append(" · ", t("born"), ` ${asText(s.date_of_birth)}`);
    if (age != null) who.append(" ", tf("(%(age)s y)", { age }));
  }
  const blood = bloodShort(s.blood_type);
  const facts = el(
    "p",
    { class: "health-facts" },
    el("span", { class: "health-label" }, t("Blood type")),
    " ",
    el("strong", { class: "blood big" }, blood || "?"),
    " ",
    el("span", { class: "small muted" }, bloodLong(s.blood_type)),
  );
  const basis = el(
    "p",
    { class: "health-basis small" },
    el("span", { class: "health-label" }, t("Access basis")),
    ": ",
    el("strong", { class: `basis basis-${override ? "override" : "consent"}` }, override ? t("override") : t("consent")),
    " · ",
    el("span", { class: "health-label" }, t("Verified")),
    ": ",
    el("span", { class: "verified-at" }, s.verified_at ? formatDate(s.verified_at) : "—"),
  );

  const pregnancy = s.pregnancy && typeof s.pregnancy === "object" ? s.pregnancy : null;
  let pregnancyContent = noneRecorded();
  if (pregnancy) {
    const en = PREGNANCY[pregnancy.status] || asText(pregnancy.status);
    pregnancyContent = el("span", {}, en);
    if (pregnancy.due_date) pregnancyContent.append(" · ", t("due"), ` ${asText(pregnancy.due_date)}`);
  }
  const doctor = s.family_doctor && typeof s.family_doctor === "object" ? s.family_doctor : null;

  const grid = el(
    "dl",
    { class: "health-grid" },
    fieldBox(t("Allergies"), "allergies", itemList(asList(s.allergies), allergyItem)),
    fieldBox(t("Chronic conditions"), "conditions", itemList(asList(s.chronic_conditions), (c) => el("li", {}, asText(c)))),
    fieldBox(t("Medications"), "medications", itemList(asList(s.medications), (m) =>
      el("li", {}, el("strong", {}, asText(m && m.name)), m && m.dose ? ` — ${asText(m.dose)}` : null))),
    fieldBox(t("Implanted devices"), "devices", itemList(asList(s.implanted_devices), (d) => el("li", {}, asText(d)))),
    fieldBox(t("Pregnancy"), "pregnancy", pregnancyContent),
    fieldBox(t("Advance directives"), "directives",
      s.advance_directives ? el("span", { class: "directives-text" }, asText(s.advance_directives)) : noneRecorded()),
    fieldBox(t("Emergency contacts"), "contacts", itemList(asList(s.emergency_contacts), (c) =>
      el(
        "li",
        {},
        el("strong", {}, asText(c && c.name)),
        c && c.relation ? ` (${asText(c.relation)})` : null,
        c && c.phone ? " " : null,
        c && c.phone ? el("a", { href: `tel:${asText(c.phone).replace(/[^\d+]/g, "")}` }, asText(c.phone)) : null,
      ))),
    fieldBox(t("Family doctor"), "doctor", doctor
      ? el("span", {}, asText(doctor.name), doctor.phone ? " · " : null, doctor.phone ? el("span", { class: "phone" }, asText(doctor.phone)) : null)
      : noneRecorded()),
    fieldBox(t("Past surgeries"), "surgeries", itemList(asList(s.past_surgeries), (x) =>
      el("li", {}, asText(x && x.name), x && x.year ? ` (${asText(x.year)})` : null))),
  );
  body.append(el("div", { class: "health-top" }, who, facts, basis), grid);
}


// A reason the server checks (dispatch/inputs.py validate_reason_words: 10+ characters, in words).
const OVERRIDE = {
  kind: "override",
  open: t("Emergency override"),
  label: t("Reason for emergency access"),
  hint: t("10–500 characters, in words. Logged, flagged for review and shown to the patient."),
  submit: t("Open the archive"),
  refused: t("override refused"),
  url: (ctx, id) => urlFor(ctx.cfg.overrideUrl, id),
};
const RENEW = {
  kind: "renew",
  open: t("Renew access"),
  label: t("Reason for renewing access"),
  hint: t("10–500 characters, in words. Logged and flagged for review."),
  submit: t("Renew and read"),
  refused: t("renewal refused"),
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
  const submit = el("button", { type: "submit", class: "button small danger" }, how.submit);
  const cancel = el("button", { type: "button", class: "button small" }, t("Cancel"));
  const form = el(
    "form",
    { class: "override-form", id: `${base}-form`, hidden: true, novalidate: true, "aria-label": `${how.open}` },
    el("label", { for: input.id }, how.label),
    el("p", { class: "small muted", id: `${base}-hint` }, how.hint),
    el("div", { class: "override-inputs" }, input, submit, cancel),
    fieldError,
  );
  const open = el(
    "button",
    { type: "button", class: "button small danger override-open", "aria-expanded": "false", "aria-controls": form.id },
    how.open,
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
    setFieldError(ctl, t("Give a reason of 10 to 500 characters."));
    ctl.input.focus();
    return;
  }
  setFieldError(ctl, null);
  setHealthError(panel, null);
  ctl.busy = true;
  ctl.submit.disabled = true;
  panel.healthStatus.textContent = t("Opening the archive…");
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
      setHealthError(panel, `${t("Network error — nothing recorded")}: ${failure.message}`);
      return;
    }
    if (failure.fields && failure.fields.reason) {
      setFieldError(ctl, failure.fields.reason.join(" "));
      return;
    }
    const what = failure.status === 409 ? tf("409 Conflict — %(what)s", { what: how.refused }) : `${failure.status} — ${how.refused}`;
    setHealthError(panel, `${what}: ${failure.detail}`);
    return;
  }
  if (how.kind === "renew") {
    loadHealth(ctx, entry); // renewed: read the summary under the new grant
    ctx.announce(tf("Access renewed for case #%(id)s; flagged for review.", { id: entry.id }));
    return;
  }
  if (isHealthBlock(body)) {
    setHealth(ctx, entry, body);
    renderHealthPanel(ctx, entry);
    panel.healthTitle.focus(); // the form is gone; keep focus in the health section
    ctx.announce(tf("Emergency override recorded for case #%(id)s; flagged for review.", { id: entry.id }));
  }
}
