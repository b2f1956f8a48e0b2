/*
 * newcall.js — "New call 新建来电": a dispatcher enters a call that came in by phone. The place is
 * found by typing an address (GET /api/v1/geocode?q= returns candidates to pick from) or by clicking
 * the map. POST /api/v1/dispatch/cases creates the case, which then follows the same lifecycle and
 * streams as a tap (case.created reaches every console).
 */

import { api, idempotencyKey } from "/static/onekey/api.js";
import { LABELS, el, formatCoord } from "./labels.js";
import { t, tf, tn, choice, localized } from "/static/onekey/i18n.js";

const CREATE_URL = "/api/v1/dispatch/cases";
const GEOCODE_URL = "/api/v1/geocode";

export function createNewCall(ctx) {
  const root = ctx.els.newCall;
  const opener = ctx.els.newCallOpen;
  let place = null; // {lat, lon, label?}
  let busy = false;
  // One key per call being entered: a submit retried after a lost answer creates one case, not two.
  let key = idempotencyKey();

  const field = (id, text, input, hint) => el(
    "div",
    { class: "field", "data-field": input.name },
    el("label", { for: id }, text),
    input,
    hint || null,
    el("p", { class: "field-error", id: `${id}-error`, hidden: true }),
  );

  const phone = el("input", { type: "tel", id: "nc-phone", name: "caller_phone", autocomplete: "off", required: true, inputmode: "tel", "aria-describedby": "nc-phone-error" });
  const name = el("input", { type: "text", id: "nc-name", name: "caller_name", autocomplete: "off", maxlength: "100" });
  const forSelf = el("input", { type: "checkbox", id: "nc-self", name: "for_self", checked: true });
  const complaint = el("select", { id: "nc-complaint", name: "complaint" });
  for (const [value, text] of Object.entries(LABELS.complaint || { unknown: t("Unknown") })) {
    complaint.append(el("option", { value }, choice(text)));
  }
  const note = el("textarea", { id: "nc-note", name: "note", rows: "2", maxlength: "1000" });
  const address = el("input", { type: "search", id: "nc-address", name: "address", autocomplete: "off", "aria-describedby": "nc-address-hint nc-address-error" });
  const search = el("button", { type: "button", class: "button small" }, t("Search"));
  const candidates = el("ul", { class: "candidates", "aria-label": t("Places found") });
  const picked = el("p", { class: "picked small", role: "status", "aria-live": "polite" });
  const error = el("p", { class: "alert alert-error", role: "alert", hidden: true });
  const submit = el("button", { type: "submit", class: "button primary" }, t("Create case"));
  const close = el("button", { type: "button", class: "button" }, t("Close"));

  const form = el(
    "form",
    { class: "new-call-form stack", novalidate: true },
    field("nc-phone", t("Caller's phone"), phone),
    field("nc-name", t("Caller's name (optional)"), name),
    el("div", { class: "field check" }, forSelf, " ", el("label", { for: "nc-self" }, t("The caller is the patient"))),
    field("nc-complaint", t("Complaint"), complaint),
    field(
      "nc-address",
      t("Address"),
      el("div", { class: "override-inputs" }, address, search),
      el("p", { class: "small muted", id: "nc-address-hint" }, t("Search and pick a candidate, or click the map.")),
    ),
    candidates,
    picked,
    field("nc-note", t("Note"), note),
    error,
    el("div", { class: "form-actions" }, submit, close),
  );
  root.append(el("h2", { id: "new-call-title" }, t("New call")), form);

  function setError(message) {
    error.textContent = message || "";
    error.hidden = !message;
  }

  function setFieldErrors(fields) {
    for (const slot of form.querySelectorAll(".field-error")) {
      slot.textContent = "";
      slot.hidden = true;
    }
    for (const input of [phone, name, complaint, note, address]) input.removeAttribute("aria-invalid");
    let first = null;
    for (const [key, messages] of Object.entries(fields || {})) {
      const input = { caller_phone: phone, caller_name: name, complaint, note, address, lat: address, lon: address }[key];
      if (!input) continue;
      const slot = document.getElementById(`${input.id}-error`);
      if (slot) {
        slot.textContent = messages.join(" ");
        slot.hidden = false;
      }
      input.setAttribute("aria-invalid", "true");
      first = first || input;
    }
    return first;
  }

  function setPlace(next) {
    place = next;
    picked.textContent = "";
    if (ctx.map) ctx.map.setPick(place ? { lat: place.lat, lon: place.lon } : null);
    if (!place) return;
    picked.append(t("Place:"), " ", el("strong", { class: "picked-place" }, place.label || `${formatCoord(place.lat)}, ${formatCoord(place.lon)}`));
    if (place.label) picked.append(el("span", { class: "muted" }, ` (${formatCoord(place.lat)}, ${formatCoord(place.lon)})`));
  }

  async function runSearch() {
    const q = address.value.trim();
    candidates.textContent = "";
    setError(null);
    if (!q) {
      setFieldErrors({ address: [t("Type an address to search.")] });
      return;
    }
    search.disabled = true;
    let found;
    try {
      found = await api(`${GEOCODE_URL}?q=${encodeURIComponent(q)}`);
    } catch (err) {
      search.disabled = false;
      setError(`${err.status ? `${err.status} — ` : ""}${t("address search failed")}: ${err.detail || err.message}`);
      return;
    }
    search.disabled = false;
    const list = Array.isArray(found) ? found : (found && Array.isArray(found.results) ? found.results : []);
    if (!list.length) {
      candidates.append(el("li", { class: "muted" }, t("No match; click the map instead.")));
      return;
    }
    for (const c of list) {
      const [name, district] = [localized(c, "label"), localized(c, "district")];
      const text = district && !String(name).includes(district) ? `${name} · ${district}` : String(name);
      const pick = el("button", { type: "button", class: "button small candidate" }, text);
      pick.addEventListener("click", () => {
        setPlace({ lat: c.lat, lon: c.lon, label: String(c.label) });
        clearFieldError(address);
        for (const b of candidates.querySelectorAll("button")) b.setAttribute("aria-pressed", String(b === pick));
      });
      candidates.append(el("li", {}, pick));
    }
  }

  // An error goes as soon as the field it is about changes.
  function clearFieldError(input) {
    const slot = document.getElementById(`${input.id}-error`);
    if (slot) {
      slot.textContent = "";
      slot.hidden = true;
    }
    input.removeAttribute("aria-invalid");
  }
  form.addEventListener("input", (event) => {
    if (event.target.id) clearFieldError(event.target);
  });

  search.addEventListener("click", runSearch);
  address.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      runSearch();
    }
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (busy) return;
    setError(null);
    const body = {
      caller_phone: phone.value.trim(),
      complaint: complaint.value,
      for_self: forSelf.checked,
    };
    if (name.value.trim()) body.caller_name = name.value.trim();
    if (note.value.trim()) body.note = note.value.trim();
    if (place) {
      body.lat = place.lat;
      body.lon = place.lon;
      // What the caller said (typed), else the candidate picked: the case keeps it as reported.
      const said = address.value.trim() || place.label;
      if (said) body.address = said;
    } else if (address.value.trim()) {
      body.address = address.value.trim();
    }
    const missing = {};
    if (!body.caller_phone) missing.caller_phone = [t("The caller's phone is needed.")];
    if (!place && !body.address) missing.address = [t("Give an address or click the map.")];
    const first = setFieldErrors(missing);
    if (first) {
      first.focus();
      return;
    }
    busy = true;
    submit.disabled = true;
    let created;
    try {
      created = await api(CREATE_URL, { method: "POST", body, headers: { "Idempotency-Key": key } });
    } catch (err) {
      busy = false;
      submit.disabled = false;
      const focus = setFieldErrors(err.fields);
      if (focus) focus.focus();
      setError(`${err.status ? `${err.status} — ` : ""}${t("case not created")}: ${err.detail || err.message}`);
      return;
    }
    busy = false;
    submit.disabled = false;
    ctx.announce(tf("Case #%(id)s created for the caller on the phone.", { id: created.id }));
    reset();
    close_();
    ctx.upsertCase(created, { quiet: true });
    ctx.select(created.id);
  });

  function reset() {
    key = idempotencyKey();
    form.reset();
    forSelf.checked = true;
    candidates.textContent = "";
    setFieldErrors({});
    setError(null);
    setPlace(null);
  }

  function open() {
    ctx.select(null);
    root.hidden = false;
    ctx.els.details.hidden = true;
    opener.setAttribute("aria-expanded", "true");
    phone.focus();
  }

  function close_() {
    if (root.hidden) return;
    root.hidden = true;
    ctx.els.details.hidden = false;
    opener.setAttribute("aria-expanded", "false");
    if (ctx.map) ctx.map.setPick(null);
  }

  opener.addEventListener("click", () => (root.hidden ? open() : close_()));
  close.addEventListener("click", () => {
    close_();
    opener.focus();
  });
  // While the form is open, a click on the map places the call there.
  if (ctx.map) {
    ctx.map.onClick((point) => {
      if (root.hidden) return;
      setPlace({ lat: point.lat, lon: point.lon });
      clearFieldError(address);
    });
  }

  return { open, close: close_, get isOpen() { return !root.hidden; } };
}
