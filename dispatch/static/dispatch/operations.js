/*
 * operations.js — what a dispatcher does to a live case besides the first assignment:
 * cancel it with a reason, send another unit instead (reassign), choose or change the destination
 * hospital. Each is one REST call to a service that emits events, so every other console (crews,
 * hospitals, the caller, other dispatchers) sees the change; this console also applies the answer.
 */

import { api } from "/static/onekey/api.js";
import { ENDED, bi, el, label, urlFor } from "./labels.js";

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

export function createOperations(ctx, entry) {
  const id = entry.id;
  const status = el("p", { class: "ops-status small muted", role: "status", "aria-live": "polite" });
  const error = el("p", { class: "alert alert-error ops-error", role: "alert", hidden: true });

  // Cancel with a reason.
  const reason = el("input", { type: "text", id: `cancel-${id}-reason`, name: "reason", maxlength: "200", autocomplete: "off", required: true });
  const cancelSubmit = el("button", { type: "submit", class: "button small danger" }, bi("Cancel the case", "取消病例"));
  const cancelBack = el("button", { type: "button", class: "button small" }, bi("Keep it", "不取消"));
  const cancelForm = el(
    "form",
    { class: "ops-form cancel-form", hidden: true, novalidate: true, "aria-label": "Cancel the case 取消病例" },
    el("label", { for: reason.id }, bi("Reason for cancelling", "取消原因")),
    el("div", { class: "override-inputs" }, reason, cancelSubmit, cancelBack),
  );
  const cancelOpen = el("button", { type: "button", class: "button small ops-cancel" }, bi("Cancel case", "取消病例"));
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
      setError("Give a reason for cancelling. 请填写取消原因。");
      reason.setAttribute("aria-invalid", "true");
      reason.focus();
      return;
    }
    reason.removeAttribute("aria-invalid");
    await run(cancelSubmit, "Cancelling… 取消中", ["not cancelled", "未取消"], async () => {
      await api(urlFor(ctx.cfg.cancelUrl, id), { method: "POST", body: { reason: text } });
      // The answer is the caller's view of the case: the dispatch stream brings the staff view.
      ctx.announce(`Case #${id} cancelled. 病例 #${id} 已取消。`);
    });
  });

  // Reassign: the panel shows the ranked units with "Send instead".
  const reassignOpen = el("button", { type: "button", class: "button small ops-reassign", "aria-expanded": "false" }, bi("Reassign unit", "改派车辆"));
  reassignOpen.addEventListener("click", () => {
    const showing = ctx.toggleReassign(entry);
    reassignOpen.setAttribute("aria-expanded", String(showing));
  });

  // Destination hospital.
  const select = el("select", { id: `hospital-${id}`, name: "hospital", class: "hospital-select" });
  const setButton = el("button", { type: "submit", class: "button small" }, bi("Set destination", "设定目的医院"));
  const hospitalForm = el(
    "form",
    { class: "ops-form hospital-form", novalidate: true, "aria-label": "Where to take the patient 送往何处" },
    el("label", { for: select.id }, bi("Destination hospital", "目的医院")),
    el("div", { class: "override-inputs" }, select, setButton),
  );
  hospitalForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const hospital = Number(select.value);
    if (!hospital) {
      setError("Choose a hospital. 请选择医院。");
      return;
    }
    await run(setButton, "Setting the destination… 正在设定目的医院", ["destination not changed", "目的医院未更改"], async () => {
      const body = await api(urlFor(ctx.cfg.hospitalUrl, id), { method: "POST", body: { hospital } });
      ctx.upsertCase(body, { quiet: true });
      ctx.announce(`Case #${id}: destination set. 病例 #${id} 目的医院已设定。`);
    });
  });

  const section = el(
    "section",
    { class: "operations", "aria-label": `Operations on case #${id} 病例 #${id} 操作` },
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
      if (!err.status) setError(`Network error, ${failed[0]} 网络错误，${failed[1]}: ${err.message}`);
      else if (err.status === 409) setError(`409 Conflict — ${failed[0]} 冲突，${failed[1]}: ${err.detail}`);
      else setError(`${err.status} — ${failed[0]} ${failed[1]}: ${err.detail}`);
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
    const key = options.map(({ h }) => `${h.id}:${h.ed_status}:${h.ed_free_beds}`).join(",") + `|${current}`;
    if (select.dataset.key === key) return;
    const chosen = select.value;
    select.dataset.key = key;
    select.textContent = "";
    select.append(el("option", { value: "" }, current ? "— keep 保持 —" : "— choose 选择 —"));
    for (const { h, km } of options) {
      const ed = label("ed_status", h.ed_status);
      const beds = Number.isFinite(h.ed_free_beds) ? ` · ${h.ed_free_beds} free beds 空床` : "";
      const option = el("option", { value: h.id }, `${h.name_zh || h.name_en} (${h.code}) · ${km.toFixed(1)} km · ${ed}${beds}`);
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
