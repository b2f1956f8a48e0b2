/*
 * merge.js — a duplicate call: "possible duplicate of #N" links to that case, and Merge
 * (POST /api/v1/dispatch/cases/{id}/merge {into}, after a confirm) cancels this case into the other,
 * whose unit serves both callers. case.merged then reaches every console for both cases.
 */

import { api } from "/static/onekey/api.js";
import { el, urlFor } from "./labels.js";
import { t, tf } from "/static/onekey/i18n.js";

const MERGEABLE = new Set(["received"]);

export function createMerge(ctx, entry) {
  const id = entry.id;
  const into = el("input", { type: "number", min: "1", step: "1", id: `merge-${id}-into`, name: "into", class: "merge-into", inputmode: "numeric" });
  const submit = el("button", { type: "submit", class: "button small danger" }, t("Merge"));
  const error = el("p", { class: "alert alert-error merge-error", role: "alert", hidden: true });
  const dup = el("p", { class: "dup-line small" });
  const form = el(
    "form",
    { class: "ops-form merge-form", novalidate: true, "aria-label": tf("Merge case #%(id)s into another", { id }) },
    dup,
    el("label", { for: into.id }, t("Merge this case into case #")),
    el("div", { class: "override-inputs" }, into, submit),
    error,
  );

  function setError(message) {
    error.textContent = message || "";
    error.hidden = !message;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const target = Number(into.value);
    if (!Number.isInteger(target) || target < 1 || target === id) {
      setError(t("Name the case that stays."));
      into.focus();
      return;
    }
    if (!window.confirm(tf("Merge case #%(id)s into case #%(into)s? This case is cancelled; the unit of #%(into)s serves both callers.", { id, into: target }))) return;
    setError(null);
    submit.disabled = true;
    try {
      const body = await api(urlFor(ctx.cfg.mergeUrl, id), { method: "POST", body: { into: target } });
      ctx.upsertCase(body.merged, { quiet: true });
      ctx.upsertCase(body.into, { quiet: true });
      ctx.announce(tf("Case #%(id)s merged into case #%(into)s.", { id, into: target }));
      ctx.select(target);
    } catch (err) {
      setError(`${err.status ? `${err.status} — ` : ""}${t("not merged")}: ${err.detail || err.message}`);
    } finally {
      submit.disabled = false;
    }
  });

  function sync() {
    const c = entry.data;
    form.hidden = !MERGEABLE.has(c.status);
    dup.textContent = "";
    dup.hidden = !c.possible_duplicate_of;
    if (c.possible_duplicate_of) {
      const link = el("button", { type: "button", class: "link-like dup-link", "data-case-id": c.possible_duplicate_of },
        tf("possible duplicate of #%(id)s", { id: c.possible_duplicate_of }));
      link.addEventListener("click", () => ctx.select(c.possible_duplicate_of));
      dup.append(link);
      if (!into.value && document.activeElement !== into) into.value = String(c.possible_duplicate_of);
    }
  }

  sync();
  return { section: form, sync };
}
