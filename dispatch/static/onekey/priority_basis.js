/*
 * priority_basis.js — why a case has its priority, in the page's language.
 *
 * One event payload reaches every console whatever its language, so the server cannot word the
 * reason per reader: it sends the grounds as data (priority_basis, dispatch/triage.py) beside English
 * words (priority_reason, kept for older clients). A page words the basis here; a dispatcher's
 * override is shown as they wrote it, and a case without a basis (triaged before it existed, or a
 * kind this page does not know yet) falls back to the English words rather than to nothing.
 */

import { t, tf } from "./i18n.js";

// The answer that raised the priority, per question (dispatch.triage.QUESTIONS).
const RAISING_ANSWER = {
  conscious: () => t("not conscious"),
  breathing_normally: () => t("not breathing normally"),
  heavy_bleeding: () => t("heavy bleeding"),
};

/**
 * The reason for a case's priority as text in the page's language.
 * complaintLabel(value) gives the page's label of a complaint (each console has its own table).
 */
export function priorityReasonText(c, complaintLabel) {
  const words = c && c.priority_reason ? String(c.priority_reason) : "";
  const basis = c && c.priority_basis;
  if (!basis || typeof basis !== "object") return words;
  const p = basis.priority;
  if (basis.kind === "complaint" && basis.complaint) {
    return tf("complaint: %(complaint)s → %(p)s", { complaint: complaintLabel(basis.complaint), p });
  }
  if (basis.kind === "answers" && Array.isArray(basis.answers) && basis.answers.every((key) => key in RAISING_ANSWER)) {
    const answers = basis.answers.map((key) => RAISING_ANSWER[key]()).reduce((a, b) => tf("%(a)s and %(b)s", { a, b }));
    return tf("caller: %(answers)s → %(p)s", { answers, p });
  }
  if (basis.kind === "archive") return tf("health archive → %(p)s", { p });
  return words;
}
