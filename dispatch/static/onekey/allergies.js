/*
 * allergies.js — one allergy from a health summary as a list item, the same on the dispatcher's
 * summary and the hospital board: the substance in bold, the reaction, the severity marked.
 */
import { asText, el } from "/static/onekey/dom.js";
import { t } from "/static/onekey/i18n.js";

export const SEVERITY = { mild: t("mild"), moderate: t("moderate"), severe: t("severe") };

export function allergyItem(allergy) {
  const severity = asText(allergy && allergy.severity);
  const sev = SEVERITY[severity];
  return el(
    "li",
    { class: `allergy${severity === "severe" ? " severe" : ""}` },
    el("strong", { class: "substance" }, asText(allergy && allergy.substance)),
    allergy && allergy.reaction ? ` — ${asText(allergy.reaction)}` : null,
    sev ? " " : null,
    sev ? el("span", { class: `sev sev-${severity}` }, sev) : null,
  );
}
