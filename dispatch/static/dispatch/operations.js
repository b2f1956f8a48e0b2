/*
 * operations.js — what a dispatcher does to a live case besides the first assignment:
 * cancel it with a reason, send another unit instead (reassign), choose or change the destination
 * hospital. Each is one REST call to a service that emits events, so every other console (crews,
 * hospitals, the caller, other dispatchers) sees the change; this console also applies the answer.
 */

import { api } from "/static/onekey/api.js";
import { ENDED, el, label, urlFor } from "./labels.js";
import { IS_ZH, t, tf } from "/static/onekey/i18n.js";

const REASSIGNABLE = new Set(["dispatched", "en_route"]);
const CANCELLABLE = new Set(["received", "dispatched", "en_route", "on_scene"]);
const HOSPITAL_CHOOSABLE = new Set(["received", "dispatched", "en_route", "on_scene", "transporting"]);

function distanceKm(a, b) {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 12742 * Math.asin(Math.sqrt(h));
}

/** Beds a patient will really find: the declared free beds less the patients already on their way. */
export function bedsText(h) {
  if (!Number.isFinite(h.ed_free_beds)) return "";
  const incoming = Number.isFinite(h.incoming) ? h.incoming : 0;
  const free = tf("%(n)s free beds", { n: Math.max(0, h.ed_free_beds - incoming) });
  return incoming ? ` · ${free} (${tf("%(n)s incoming", { n: incoming })})` : ` · ${free}`;
}

export function createOperations(ctx, entry) {
  const id = entry.id;
  const status = el("p", { class: "ops-status small muted", role: "status", "aria-live": "polite" });
  const error = el("p", { class: "alert alert-error ops-error", role: "alert", hidden: true });

  // Cancel with a reason.
  const reason = el("input", { type: "text", id: `cancel-${id}-reason`, name: "reason", maxlength: "200", autocomplete: "off", required: true });
  const cancelSubmit = el("button", { type: "submit", class: "button small danger" }, t("Cancel the case"));
  const cancelBack = el("button", { type: "button", class: "button small" }, t("Keep it"));
  const cancelForm = el(
    "form",
    { class: "ops-form cancel-form", hidden: true, novalidate: true, "aria-label": t("Cancel the case") },
    el("label", { for: reason.id }, t("Reason for cancelling")),
    el("div", { class: "override-inputs" }, reason, cancelSubmit, cancelBack),
  );
  const cancelOpen = el("button", { type: "button", class: "button small ops-cancel" }, t("Cancel case"));
  cancelOpen.addEventListener("click", () => {
    cancelForm.hidden = false;
    cancelOpen.hidden = true;
    reason.focus();
  });
  cancelBack.addEventListener("click", () => {
    cancelForm.hidden = true;
    cancelOpen.hidden = false;
    cancelOpen.focus();
  });
  cancelForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = reason.value.trim();
    if (!text) {
      setError(t("Give a reason for cancelling."));
      reason.setAttribute("aria-invalid", "true");
      reason.focus();
      return;
    }
    reason.removeAttribute("aria-invalid");
    await run(cancelSubmit, t("Cancelling…"), t("not cancelled"), async () => {
      await api(urlFor(ctx.cfg.cancelUrl, id), { method: "POST", body: { reason: text } });
      // The answer is the caller's view of the case: the dispatch stream brings the staff view.
      ctx.announce(tf("Case #%(id)s cancelled.", { id }));
    });
  });

  // Reassign: the panel shows the ranked units with "Send instead".
  const reassignOpen = el("button", { type: "button", class: "button small ops-reassign", "aria-expanded": "false" }, t("Reassign unit"));
  reassignOpen.addEventListener("click", () => {
    const showing = ctx.toggleReassign(entry);
    reassignOpen.setAttribute("aria-expanded", String(showing));
  });

  // Destination hospital.
  const select = el("select", { id: `hospital-${id}`, name: "hospital", class: "hospital-select" });
  const setButton = el("button", { type: "submit", class: "button small" }, t("Set destination"));
  const hospitalForm = el(
    "form",
    { class: "ops-form hospital-form", novalidate: true, "aria-label": t("Where to take the patient") },
    el("label", { for: select.id }, t("Destination hospital")),
    el("div", { class: "override-inputs" }, select, setButton),
  );
  hospitalForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const hospital = Number(select.value);
    if (!hospital) {
      setError(t("Choose a hospital."));
      return;
    }
    await run(setButton, t("Setting the destination…"), t("destination not changed"), async () => {
      const body = await api(urlFor(ctx.cfg.hospitalUrl, id), { method: "POST", body: { hospital } });
      ctx.upsertCase(body, { quiet: true });
      ctx.announce(tf("Case #%(id)s: destination set.", { id }));
    });
  });

  const section = el(
    "section",
    { class: "operations", "aria-label": tf("Operations on case #%(id)s", { id }) },
    el("div", { class: "ops-buttons" }, reassignOpen, cancelOpen),
    cancelForm,
    hospitalForm,
    status,
    error,
  );

  function setError(message) {
    error.textContent = message || "";
    error.hidden = !message;
  }

  async function run(button, busyText, failed, call) {
    setError(null);
    button.disabled = true;
    status.textContent = busyText;
    try {
      await call();
      status.textContent = "";
    } catch (err) {
      status.textContent = "";
      if (!err.status) setError(`${tf("Network error, %(what)s", { what: failed })}: ${err.message}`);
      else if (err.status === 409) setError(`${tf("409 Conflict — %(what)s", { what: failed })}: ${err.detail}`);
      else setError(`${err.status} — ${failed}: ${err.detail}`);
    } finally {
      button.disabled = false;
    }
  }

  function fillHospitals() {
    const c = entry.data;
    const current = c.hospital ? c.hospital.id : null;
    const options = [...ctx.state.hospitals.values()]
      .map((h) => ({ h, km: distanceKm(c, h) }))
      .sort((a, b) => a.km - b.km);
    const key = options.map(({ h }) => `${h.id}:${h.ed_status}:${h.ed_free_beds}:${h.incoming}:${(h.unavailable_capabilities || []).join("+")}`).join(",") + `|${current}`;
    if (select.dataset.key === key) return;
    const chosen = select.value;
    select.dataset.key = key;
    select.textContent = "";
    select.append(el("option", { value: "" }, current ? t("— keep —") : t("— choose —")));
    for (const { h, km } of options) {
      const ed = label("ed_status", h.ed_status);
      const beds = bedsText(h);
      const lost = (h.unavailable_capabilities || []).length ? ` · ${tf("no %(what)s", { what: h.unavailable_capabilities.join(", ") })}` : "";
      const name = IS_ZH ? h.name_zh || h.name_en : h.name_en || h.name_zh;
      const option = el("option", { value: h.id }, `${name} (${h.code}) · ${tf("%(km)s km", { km: km.toFixed(1) })} · ${ed}${beds}${lost}`);
      if (h.id === current) option.textContent += " ✓";
      select.append(option);
    }
    if (chosen) select.value = chosen;
  }

  function sync() {
    const s = entry.data.status;
    const ended = ENDED.has(s);
    section.hidden = ended;
    cancelOpen.hidden = !CANCELLABLE.has(s) || !cancelForm.hidden;
    if (!CANCELLABLE.has(s)) cancelForm.hidden = true;
    reassignOpen.hidden = !REASSIGNABLE.has(s);
    hospitalForm.hidden = !HOSPITAL_CHOOSABLE.has(s);
    if (!hospitalForm.hidden) fillHospitals();
  }

  sync();
  return { section, sync, reassignOpen };
}

export { REASSIGNABLE };
