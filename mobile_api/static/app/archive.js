// The health archive form and "who read my archive" (GET/PUT /api/v1/me/health-archive, /access-log).
// PUT replaces the whole archive, so fields this short form does not show are sent back unchanged.
import { api, ApiError } from "/static/onekey/api.js";
import { t, tf, tn, choice } from "/static/onekey/i18n.js";

const $ = (id) => document.getElementById(id);
const OUTPUT_ONLY = ["verified_at", "updated_at", "version"];
let loaded = null; // the archive as last read or saved (null: none yet)

const lines = (text) => text.split("\n").map((line) => line.trim()).filter(Boolean);

// "Penicillin: rash" <-> {substance: "Penicillin", reaction: "rash"}
function splitPair(line) {
  const at = line.indexOf(":");
  return at < 0 ? [line, ""] : [line.slice(0, at).trim(), line.slice(at + 1).trim()];
}
const joinPair = (a, b) => (b ? `${a}: ${b}` : a);

function fill(archive) {
  const a = archive || {};
  $("ar-name").value = a.name || "";
  $("ar-sex").value = a.sex || "unknown";
  $("ar-dob").value = a.date_of_birth || "";
  $("ar-abo").value = (a.blood_type && a.blood_type.abo) || "unknown";
  $("ar-rh").value = (a.blood_type && a.blood_type.rh) || "unknown";
  $("ar-allergies").value = (a.allergies || []).map((x) => joinPair(x.substance, x.reaction)).join("\n");
  $("ar-conditions").value = (a.chronic_conditions || []).join("\n");
  $("ar-medications").value = (a.medications || []).map((x) => joinPair(x.name, x.dose)).join("\n");
  const contact = (a.emergency_contacts || [])[0] || {};
  $("ar-contact-name").value = contact.name || "";
  $("ar-contact-relation").value = contact.relation || "";
  $("ar-contact-phone").value = contact.phone || "";
  $("ar-notes").value = a.notes || "";
  $("ar-consent").checked = Boolean(a.consent_share_with_120);
}

function collect() {
  const base = { ...(loaded || {}) };
  for (const name of OUTPUT_ONLY) delete base[name];
  const severities = new Map((base.allergies || []).map((x) => [x.substance, x.severity]));
  const allergies = lines($("ar-allergies").value).map((line) => {
    const [substance, reaction] = splitPair(line);
    const item = { substance, reaction };
    if (severities.get(substance)) item.severity = severities.get(substance);
    return item;
  });
  const contacts = (base.emergency_contacts || []).slice(1);
  const contact = { name: $("ar-contact-name").value.trim(), relation: $("ar-contact-relation").value.trim(), phone: $("ar-contact-phone").value.trim() };
  if (contact.name || contact.phone) contacts.unshift(contact);
  const body = {
    ...base,
    name: $("ar-name").value.trim(),
    sex: $("ar-sex").value,
    date_of_birth: $("ar-dob").value || null,
    blood_type: { abo: $("ar-abo").value, rh: $("ar-rh").value },
    allergies,
    chronic_conditions: lines($("ar-conditions").value),
    medications: lines($("ar-medications").value).map((line) => {
      const [name, dose] = splitPair(line);
      return { name, dose };
    }),
    emergency_contacts: contacts,
    notes: $("ar-notes").value.trim(),
    consent_share_with_120: $("ar-consent").checked,
  };
  return body;
}

function clearErrors(form) {
  for (const p of form.querySelectorAll(".field-error, .form-error")) {
    p.hidden = true;
    p.textContent = "";
  }
}

export async function loadArchive() {
  const form = $("archive-form");
  clearErrors(form);
  $("archive-saved").hidden = true;
  // On a slow network the citizen may start typing before the archive arrives: what they typed
  // wins over the (older) stored copy, which still serves as the base for the fields not shown.
  let edited = false;
  const mark = () => {
    edited = true;
  };
  form.addEventListener("input", mark);
  form.addEventListener("change", mark);
  try {
    loaded = await api("/api/v1/me/health-archive");
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) throw err;
    loaded = null; // none yet: an empty form
  } finally {
    form.removeEventListener("input", mark);
    form.removeEventListener("change", mark);
  }
  if (!edited) fill(loaded);
}

export async function saveArchive() {
  const form = $("archive-form");
  clearErrors(form);
  $("archive-saved").hidden = true;
  try {
    loaded = await api("/api/v1/me/health-archive", { method: "PUT", body: collect() });
    fill(loaded);
    $("archive-saved").hidden = false;
  } catch (err) {
    if (!(err instanceof ApiError) || err.status === 401) throw err;
    const general = form.querySelector(".form-error");
    const unplaced = [];
    for (const [field, messages] of Object.entries(err.fields)) {
      const target = form.querySelector(`.field-error[data-field="${field.split(/[.[]/)[0]}"]`);
      if (target) {
        target.hidden = false;
        target.textContent = messages.join(" ");
      } else {
        unplaced.push(`${field}: ${messages.join(" ")}`);
      }
    }
    if (unplaced.length || !Object.keys(err.fields).length) {
      general.hidden = false;
      general.textContent = unplaced.join("; ") || err.detail;
    }
  }
}

export async function loadAccessLog() {
  const list = $("log-entries");
  const body = await api("/api/v1/me/health-archive/access-log");
  list.replaceChildren();
  $("log-empty").hidden = body.entries.length > 0;
  for (const entry of body.entries) {
    const item = document.createElement("li");
    item.className = "log-entry";
    const who = document.createElement("strong");
    who.className = "log-who";
    who.textContent = entry.reader_display || entry.reader;
    const when = document.createElement("time");
    when.dateTime = entry.at;
    when.textContent = new Date(entry.at).toLocaleString();
    const what = document.createElement("span");
    what.className = "muted small";
    what.textContent = `${entry.case_ref} · ${entry.purpose}`;
    item.append(who, when, what);
    if (entry.override) {
      const flag = document.createElement("span");
      flag.className = "badge override";
      flag.textContent = t("Emergency override");
      item.append(flag);
    }
    list.append(item);
  }
}
