/*
 * priority.js — a case's priority in the details panel: the P1–P4 badge with its reason, the
 * caller's triage answers, and the dispatcher's control to set it with a reason
 * (POST /api/v1/dispatch/cases/{id}/triage; the only way to lower a priority). The answer and the
 * case.triaged event re-place the row by the queue's rule.
 */

import { api } from "/static/onekey/api.js";
import { el, ENDED, label, urlFor } from "./labels.js";
import { t, tf } from "/static/onekey/i18n.js";
import { priorityReasonText } from "/static/onekey/priority_basis.js";

/** Why the case has its priority, in the page's language (the server sends the basis as data). */
export function reasonText(c) {
  return priorityReasonText(c, (complaint) => label("complaint", complaint));
}

const PRIORITY_TEXT = {
  1: () => t("P1 — immediately life-threatening"),
  2: () => t("P2 — urgent"),
  3: () => t("P3 — less urgent"),
  4: () => t("P4 — non-urgent"),
};

const QUESTIONS = [
  ["conscious", () => t("Conscious"), false],
  ["breathing_normally", () => t("Breathing normally"), false],
  ["heavy_bleeding", () => t("Heavy bleeding"), true],
];

/** The caller's answers in words ("Conscious: no"), the alarming ones marked; null when none. */
export function triageText(triage) {
  const answers = triage && typeof triage === "object" ? triage : {};
  const parts = [];
  for (const [key, name, alarming] of QUESTIONS) {
    if (typeof answers[key] !== "boolean") continue;
    const bad = answers[key] === alarming;
    parts.push(el("span", { class: `triage-answer${bad ? " triage-bad" : ""}`, "data-question": key },
      `${name()}: ${answers[key] ? t("yes") : t("no")}`));
  }
  if (!parts.length) return null;
  const box = el("span", { class: "triage-answers" });
  parts.forEach((part, i) => box.append(i ? " · " : "", part));
  return box;
}

export function createTriage(ctx, entry) {
  const id = entry.id;
  const select = el("select", { id: `triage-${id}-priority`, name: "priority", class: "triage-priority" });
  for (const p of [1, 2, 3, 4]) select.append(el("option", { value: p }, PRIORITY_TEXT[p]()));
  const reason = el("input", {
    type: "text", id: `triage-${id}-reason`, name: "reason", maxlength: "200", autocomplete: "off", required: true,
    placeholder: t("why, e.g. not breathing"),
  });
  const submit = el("button", { type: "submit", class: "button small" }, t("Set priority"));
  const status = el("p", { class: "small muted triage-status", role: "status", "aria-live": "polite" });
  const error = el("p", { class: "alert alert-error triage-error", role: "alert", hidden: true });
  const form = el(
    "form",
    { class: "ops-form triage-form", novalidate: true, "aria-label": tf("Priority of case #%(id)s", { id }) },
    el("label", { for: select.id }, t("Priority")),
    el("div", { class: "override-inputs" }, select, reason, submit),
    status,
    error,
  );

  function setError(message) {
    error.textContent = message || "";
    error.hidden = !message;
  }

  // The dispatcher's pick stands until it is saved: events about the case must not undo it.
  let picked = false;
  select.addEventListener("change", () => { picked = true; });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = reason.value.trim();
    if (!text) {
      setError(t("Say why the priority changes."));
      reason.setAttribute("aria-invalid", "true");
      reason.focus();
      return;
    }
    reason.removeAttribute("aria-invalid");
    setError(null);
    submit.disabled = true;
    status.textContent = t("Saving…");
    try {
      const body = await api(urlFor(ctx.cfg.triageUrl, id), { method: "POST", body: { priority: Number(select.value), reason: text } });
      picked = false;
      ctx.upsertCase(body, { quiet: true });
      reason.value = "";
      status.textContent = "";
      ctx.announce(tf("Case #%(id)s is now priority %(p)s.", { id, p: body.priority }));
    } catch (err) {
      status.textContent = "";
      setError(`${err.status ? `${err.status} — ` : ""}${t("priority not changed")}: ${err.detail || err.message}`);
    } finally {
      submit.disabled = false;
    }
  });

  function sync() {
    const c = entry.data;
    form.hidden = ENDED.has(c.status);
    // Follow the case's priority unless the dispatcher is in the middle of changing it.
    if (!picked && Number.isFinite(c.priority)) select.value = String(c.priority);
  }

  sync();
  return { section: form, sync };
}
