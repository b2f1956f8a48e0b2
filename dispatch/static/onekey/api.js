/*
 * api.js — the one JSON client every page uses for /api/v1/.
 *
 *   import { api, ApiError, setToken, idempotencyKey } from "/static/onekey/api.js";
 *   const cases = await api("/api/v1/dispatch/cases");
 *   await api(`/api/v1/dispatch/cases/${id}/assign`, { method: "POST", body: { ambulance: 3 } });
 *
 * Staff pages authenticate by the session cookie, so unsafe methods carry Django's CSRF token
 * (cookie `csrftoken`). The citizen page calls setToken(key) and every call then sends
 * `Authorization: Token <key>` instead. Errors come back as ApiError {status, code, detail, fields}
 * (the server's shapes: {"detail", "code"} or {field: [messages], "code"}).
 */
import { t, tf, tn, choice } from "/static/onekey/i18n.js";

let apiToken = null;

/** Use `Authorization: Token <key>` from now on (null: back to the session cookie). */
export function setToken(key) {
  apiToken = key || null;
}

export function getToken() {
  return apiToken;
}

export class ApiError extends Error {
  constructor(status, body) {
    const data = body && typeof body === "object" && !Array.isArray(body) ? body : {};
    const fields = {};
    for (const [name, value] of Object.entries(data)) {
      if (name === "detail" || name === "code") continue;
      fields[name] = Array.isArray(value) ? value.map(String) : [typeof value === "string" ? value : JSON.stringify(value)];
    }
    const detail = typeof data.detail === "string" ? data.detail : describeFields(fields) || `HTTP ${status}`;
    super(detail);
    this.name = "ApiError";
    this.status = status; // 0: the request never got an answer (offline, DNS, aborted)
    this.code = typeof data.code === "string" ? data.code : status ? `http_${status}` : "network";
    this.detail = detail;
    this.fields = fields; // {field: [message, ...]}, empty when the error is not about a field
    this.body = body;
  }
}

function describeFields(fields) {
  return Object.entries(fields)
    .map(([name, messages]) => `${name}: ${messages.join(" ")}`)
    .join("; ");
}

export function csrfToken() {
  for (const part of document.cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === "csrftoken") return decodeURIComponent(rest.join("="));
  }
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}

const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);

/** A fresh key for a POST that must happen once even when retried (Idempotency-Key header). */
export function idempotencyKey() {
  if (globalThis.crypto && typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The server clock minus ours, from the last answer's Date header (whole seconds; 0 if close). */
let clockOffsetMs = 0;

export function serverNow() {
  return Date.now() + clockOffsetMs;
}

function noteServerDate(header) {
  const server = header ? Date.parse(header) : NaN;
  if (!Number.isFinite(server)) return;
  const offset = server - Date.now();
  clockOffsetMs = Math.abs(offset) > 2000 ? offset : 0;
}

/**
 * Call the API. `body` (an object) is sent as JSON; the parsed JSON answer is returned (null for an
 * empty one). Throws ApiError for any non-2xx answer and for a network failure (status 0).
 */
export async function api(path, { method = "GET", body, headers = {}, signal } = {}) {
  const verb = method.toUpperCase();
  const sent = { Accept: "application/json", ...headers };
  if (body !== undefined && !(body instanceof FormData)) sent["Content-Type"] = "application/json";
  if (apiToken) sent.Authorization = `Token ${apiToken}`;
  else if (!SAFE.has(verb)) sent["X-CSRFToken"] = csrfToken();
  let response;
  try {
    response = await fetch(path, {
      method: verb,
      headers: sent,
      body: body === undefined ? undefined : body instanceof FormData ? body : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
      signal,
    });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(0, { detail: t("The server could not be reached."), code: "network" });
  }
  noteServerDate(response.headers.get("Date"));
  let parsed = null;
  const text = await response.text();
  if (text) {
    try { parsed = JSON.parse(text); } catch (_) { parsed = null; }
  }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}
