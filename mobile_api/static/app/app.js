// The citizen app stand-in (/app/): sign in or register, one SOS tap (optionally silent: the caller
// cannot speak), the case live with the three first questions after the tap and, for a silent
// call, a text thread with the centre; the health archive and who read it. The same citizen API the phone app uses, with its token (not a session):
// a citizen who signed in on the sign-in page trades that session for a token once, on arrival.
import { api, ApiError, idempotencyKey, serverNow, setToken } from "/static/onekey/api.js";
import { AnswersAhead, StreamClient, SIGN_IN_AGAIN_CODES } from "/static/onekey/stream.js";
import { createMap } from "/static/onekey/map.js";
import { loadArchive, saveArchive, loadAccessLog } from "/static/app/archive.js";
import { IS_ZH, choice, t, tf } from "/static/onekey/i18n.js";

const TOKEN_KEY = "onekey.app.token";
const CASE_KEY = "onekey.app.case";
// A tap that got no answer: retried with the same Idempotency-Key and body, so never a second case.
const PENDING_KEY = "onekey.app.pendingTap";
const ENDED = new Set(["closed", "cancelled"]);
const STATUS_TEXT = {
  received: t("Help is being arranged"),
  dispatched: t("An ambulance is assigned"),
  en_route: t("The ambulance is on its way"),
  on_scene: t("The ambulance has arrived"),
  transporting: t("On the way to hospital"),
  at_hospital: t("Arrived at hospital"),
  handed_over: t("In the hospital's care"),
  closed: t("The call is closed"),
  cancelled: t("The call was cancelled"),
};
// A call merged into another report follows that report's unit (help_coming), and nothing else of it.
const HELP_TEXT = {
  waiting: t("Your call was joined to another report; help is being arranged"),
  dispatched: t("An ambulance is assigned to you both"),
  en_route: t("The ambulance is on its way to you both"),
  on_scene: t("The ambulance has arrived"),
  left_scene: t("The ambulance has left the scene"),
  cancelled: t("The report your call was joined to was cancelled: if you still need help, tap SOS again or call 120"),
};
const complaintLabels = JSON.parse(document.getElementById("complaint-labels").textContent);

const $ = (id) => document.getElementById(id);
const root = $("app");
const state = {
  token: localStorage.getItem(TOKEN_KEY),
  complaint: null,
  fix: null, // the browser's newest position {lat, lon, accuracy_m}
  stream: null,
  caseMap: null,
  pickMap: null,
  etaDeadline: null, // ms (server clock) when the unit should arrive
  etaTimer: null,
  sending: false,
  caseId: null,
  messages: new Map(), // message id -> message (case.message events and the thread snapshot)
  unsure: new Set(), // questions answered "don't know" (nothing to send: the centre asks on)
};

function setText(element, text) {
  element.textContent = text;
}

function showError(element, err) {
  element.hidden = !err;
  element.textContent = err ? (err instanceof ApiError ? err.detail : String(err)) : "";
}

function show(viewId) {
  for (const view of document.querySelectorAll(".app-view")) view.hidden = view.id !== viewId;
  root.dataset.state = viewId.replace("-view", "");
  if (viewId === "home-view") locate();
  if (viewId === "archive-view") loadArchive().catch(onApiFailure);
  if (viewId === "log-view") loadAccessLog().catch(onApiFailure);
}

function onApiFailure(err) {
  if (err instanceof ApiError && err.status === 401) return signOut({ revoke: false });
  throw err;
}

// --- signing in ------------------------------------------------------------------------------

function useToken(token) {
  state.token = token;
  setToken(token);
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

async function afterSignIn(body) {
  if (body.role !== "citizen") {
    // Staff accounts have consoles of their own; this page is the caller's.
    await api("/api/v1/auth/logout", { method: "POST", headers: { Authorization: `Token ${body.token}` } }).catch(() => {});
    throw new Error(t("This page is for citizens; staff use the console."));
  }
  useToken(body.token);
  await resume();
}

function bindSignIn() {
  const signinForm = $("signin-form");
  const registerForm = $("register-form");
  for (const [tab, form, other, otherTab] of [
    [$("tab-signin"), signinForm, registerForm, $("tab-register")],
    [$("tab-register"), registerForm, signinForm, $("tab-signin")],
  ]) {
    tab.addEventListener("click", () => {
      form.hidden = false;
      other.hidden = true;
      tab.setAttribute("aria-selected", "true");
      otherTab.setAttribute("aria-selected", "false");
    });
  }
  signinForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = signinForm.querySelector(".form-error");
    showError(error, null);
    const data = new FormData(signinForm);
    try {
      const body = await api("/api/v1/auth/token", {
        method: "POST",
        body: { username: data.get("username").trim(), password: data.get("password") },
      });
      await afterSignIn(body);
    } catch (err) {
      showError(error, err);
    }
  });
  registerForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = registerForm.querySelector(".form-error");
    showError(error, null);
    for (const p of registerForm.querySelectorAll(".field-error")) showError(p, null);
    const data = new FormData(registerForm);
    try {
      const body = await api("/api/v1/auth/register", {
        method: "POST",
        body: { phone: data.get("phone").trim(), name: data.get("name").trim(), password: data.get("password") },
      });
      await afterSignIn(body);
    } catch (err) {
      let placed = false;
      if (err instanceof ApiError) {
        for (const [field, messages] of Object.entries(err.fields)) {
          const target = registerForm.querySelector(`.field-error[data-field="${field}"]`);
          if (target) {
            showError(target, messages.join(" "));
            placed = true;
          }
        }
      }
      if (!placed) showError(error, err);
    }
  });
}

// The page was served to a citizen's session (the cookie is HttpOnly: the server says so).
const hasSession = () => root.dataset.session === "citizen";

async function signInFromSession() {
  setToken(null); // this one call authenticates by the session cookie (+ CSRF), not by a token
  try {
    await afterSignIn(await api("/api/v1/auth/session-token", { method: "POST" }));
  } catch (err) {
    delete root.dataset.session;
    show("signin-view");
  }
}

async function signOut({ revoke = true } = {}) {
  stopCase();
  if (revoke && state.token) await api("/api/v1/auth/logout", { method: "POST" }).catch(() => {});
  useToken(null);
  if (revoke && hasSession()) {
    // Signing out ends the session too, or the next visit would sign straight back in from it.
    await api("/accounts/logout/", { method: "POST" }).catch(() => {});
    delete root.dataset.session;
  }
  localStorage.removeItem(CASE_KEY);
  localStorage.removeItem(PENDING_KEY);
  show("signin-view");
}

// --- location --------------------------------------------------------------------------------

function setLocationStatus(kind, text) {
  const status = $("location-status");
  status.dataset.state = kind;
  setText(status, text);
}

function locate() {
  if (!("geolocation" in navigator)) {
    setLocationStatus("failed", t("This browser cannot locate you: type your location below."));
    $("manual-location").open = true;
    return;
  }
  navigator.geolocation.getCurrentPosition(
    (position) => {
      const { latitude, longitude, accuracy } = position.coords;
      state.fix = { lat: latitude, lon: longitude, accuracy_m: Math.round(accuracy) };
      setLocationStatus("found", tf("Location found (±%(m)s m)", { m: Math.round(accuracy) }));
    },
    () => {
      state.fix = null;
      setLocationStatus("failed", t("No location from this device: type it or pick it on the map."));
      $("manual-location").open = true;
    },
    { enableHighAccuracy: true, timeout: 10000, maximumAge: 30000 },
  );
}

function manualFix() {
  const lat = Number.parseFloat($("manual-lat").value);
  const lon = Number.parseFloat($("manual-lon").value);
  if (!Number.isFinite(lat) || !Number.isFinite(lon)) return null;
  return { lat, lon, source: "manual" };
}

function bindManualLocation() {
  $("manual-location").addEventListener("toggle", async () => {
    if (!$("manual-location").open || state.pickMap) return;
    state.pickMap = createMap($("pick-map"));
    state.pickMap.fitZhengzhou({ core: true });
    state.pickMap.showDistricts().catch(() => {});
    state.pickMap.onClick(({ lat, lon }) => {
      $("manual-lat").value = lat.toFixed(6);
      $("manual-lon").value = lon.toFixed(6);
      state.pickMap.setPick({ lat, lon });
    });
  });
}

// --- the tap ---------------------------------------------------------------------------------

function bindSos() {
  for (const pick of document.querySelectorAll(".pick")) {
    pick.addEventListener("click", () => {
      const chosen = pick.getAttribute("aria-pressed") !== "true";
      for (const other of document.querySelectorAll(".pick")) other.setAttribute("aria-pressed", "false");
      pick.setAttribute("aria-pressed", String(chosen));
      state.complaint = chosen ? pick.dataset.complaint : null;
    });
  }
  $("sos").addEventListener("click", () => sendTap());
}

function newTap() {
  // A typed or picked place wins over the device's fix: the caller chose it on purpose.
  const fix = manualFix() || state.fix;
  if (!fix) return null;
  const body = { lat: fix.lat, lon: fix.lon, for_self: !$("for-other").checked, complaint: state.complaint || "unknown" };
  if ($("silent").checked) body.silent = true;
  if (fix.accuracy_m) body.accuracy_m = fix.accuracy_m;
  if (fix.source) body.source = fix.source;
  return { key: idempotencyKey(), body };
}

async function sendTap() {
  if (state.sending) return;
  const error = $("sos-error");
  let pending = JSON.parse(localStorage.getItem(PENDING_KEY) || "null");
  if (!pending) {
    pending = newTap();
    if (!pending) {
      showError(error, t("We need your location: type it or pick it on the map."));
      $("manual-location").open = true;
      return;
    }
    localStorage.setItem(PENDING_KEY, JSON.stringify(pending));
  }
  state.sending = true;
  $("sos").setAttribute("aria-busy", "true");
  showError(error, null);
  try {
    const created = await api("/api/v1/sos", { method: "POST", body: pending.body, headers: { "Idempotency-Key": pending.key } });
    localStorage.removeItem(PENDING_KEY);
    localStorage.setItem(CASE_KEY, String(created.id));
    openCase(created.id);
  } catch (err) {
    if (err instanceof ApiError && err.status >= 400 && err.status < 500 && err.status !== 408 && err.status !== 429) {
      // The server refused this request as such: retrying it unchanged cannot help.
      localStorage.removeItem(PENDING_KEY);
    }
    if (err instanceof ApiError && err.status === 401) return signOut({ revoke: false });
    showError(error, `${err instanceof ApiError ? err.detail : err} — ${t("tap SOS again to retry.")}`);
  } finally {
    state.sending = false;
    $("sos").removeAttribute("aria-busy");
  }
}

// --- the case, live --------------------------------------------------------------------------

function stopCase() {
  if (state.stream) state.stream.stop();
  state.stream = null;
  window.clearInterval(state.etaTimer);
  state.etaTimer = null;
}

function openCase(caseId) {
  stopCase();
  show("case-view");
  $("cancel-confirm").hidden = true;
  showError($("case-error"), null);
  if (!state.caseMap) {
    state.caseMap = createMap($("case-map"));
    state.caseMap.fitZhengzhou({ core: true });
    state.caseMap.showDistricts().catch(() => {});
  }
  root.dataset.caseId = String(caseId);
  if (state.caseId !== caseId) {
    state.caseId = caseId;
    state.messages.clear();
    state.unsure.clear();
    $("message-thread").replaceChildren();
  }
  state.stream = new StreamClient({
    path: `/ws/cases/${caseId}/`,
    token: state.token,
    snapshot: async () => {
      // The thread first: its position is the older one, and replaying from it is harmless.
      const thread = await api(`/api/v1/cases/${caseId}/messages`);
      const snap = await api(`/api/v1/cases/${caseId}`);
      return { ...snap, last_seq: Math.min(thread.last_seq, snap.last_seq), messages: thread.results };
    },
    onSnapshot: (snap) => {
      for (const m of snap.messages || []) state.messages.set(m.id, m);
      caseAnswers.clear();
      renderCase(snap);
      renderMessages();
    },
    onEvent: (frame) => {
      if (frame.event === "case.message") {
        state.messages.set(frame.data.id, frame.data);
        renderMessages();
        return;
      }
      renderEvent(frame.data);
    },
    onState: (connection) => {
      const el = $("app-connection");
      el.dataset.state = connection;
      const text = { connecting: t("Connecting…"), live: t("Live"), reconnecting: t("Reconnecting…"), offline: t("Offline") }[connection];
      if (text) setText(el, text);
    },
    onEnded: (code) => {
      if (SIGN_IN_AGAIN_CODES.has(code)) signOut({ revoke: false });
    },
  });
  state.stream.start();
  state.etaTimer = window.setInterval(renderEta, 1000);
}

// The answers to the caller's own requests (cancel, triage), ordered against the stream (stream.js).
const caseAnswers = new AnswersAhead();

function renderAnswer(c) {
  if (!c || typeof c !== "object") return;
  const shown = state.case && state.case.id === c.id ? state.case.updated_at : null;
  if (caseAnswers.answer(c.id, c.updated_at, shown)) renderCase(c);
}

function renderEvent(c) {
  if (!c || typeof c !== "object") return;
  if (caseAnswers.event(c.id, c.updated_at)) renderCase(c);
}

function renderCase(c) {
  if (!c || typeof c !== "object" || !c.status) return;
  root.dataset.caseStatus = c.status;
  state.case = c;
  const help = c.merged_into ? c.help_coming || null : null;
  root.dataset.help = help ? help.status : "";
  setText($("case-status"), c.merged_into ? HELP_TEXT[help && help.status] || t("Your call was joined to another report") : STATUS_TEXT[c.status] || c.status);
  const merged = $("merged-note");
  // "Coming to you both" no longer holds once that report was cancelled: the status line says so.
  merged.hidden = !c.merged_into || (help !== null && help.status === "cancelled");
  merged.dataset.into = c.merged_into ?? "";
  if (c.merged_into) {
    setText(merged, tf("Someone nearby reported the same emergency: your call was merged into case #%(id)s. The unit for that case is coming to you both; stay where you are.", { id: c.merged_into }));
  }
  renderTriage(c);
  renderMessageBox(c);

  const unitLine = $("case-unit");
  const unit = c.ambulance;
  const callSign = unit ? unit.call_sign : help && help.call_sign;
  unitLine.hidden = !callSign;
  if (callSign) {
    unitLine.dataset.callSign = callSign;
    setText(unitLine, t("Ambulance"));
    const sign = document.createElement("strong");
    sign.className = "call-sign";
    sign.textContent = callSign;
    unitLine.append(" ", sign);
  }
  // ETA: to the caller until the crew arrives, then (transporting) to the hospital.
  const etaS = help ? help.eta_s : c.eta_s;
  state.etaDeadline = Number.isFinite(etaS) && etaS !== null ? serverNow() + etaS * 1000 : null;
  $("case-eta").dataset.etaS = c.eta_s ?? "";
  state.etaLabel = c.status === "transporting" ? "hospital" : "";
  renderEta();

  const hospitalLine = $("case-hospital");
  hospitalLine.hidden = !c.hospital;
  if (c.hospital) setText(hospitalLine, tf("Hospital: %(name)s", { name: (IS_ZH ? c.hospital.name_zh : c.hospital.name_en) || c.hospital.name_en || c.hospital.name_zh }));

  const map = state.caseMap;
  const caseComplaint = choice(complaintLabels[c.complaint] || c.complaint);
  map.setCase({ id: c.id, lat: c.lat, lon: c.lon, accuracy_m: c.accuracy_m, status: ENDED.has(c.status) ? "on_scene" : c.status, complaint: caseComplaint });
  const points = [{ lat: c.lat, lon: c.lon }];
  if (unit && Number.isFinite(unit.lat) && Number.isFinite(unit.lon) && unit.lat !== null) {
    map.setUnit({ id: unit.id, call_sign: unit.call_sign, status: unit.status || c.status, lat: unit.lat, lon: unit.lon, position_at: unit.position_at });
    points.push({ lat: unit.lat, lon: unit.lon });
    if (!state.fitted) {
      map.fitPoints(points);
      state.fitted = true;
    }
  } else if (unit) {
    map.removeUnit(unit.id);
  }

  const ended = ENDED.has(c.status);
  $("cancel-case").hidden = ended || !["received", "dispatched", "en_route", "on_scene"].includes(c.status);
  if ($("cancel-case").hidden) $("cancel-confirm").hidden = true;
  $("case-done").hidden = !ended;
}

// --- the first questions, after the tap ------------------------------------------------------

function renderTriage(c) {
  const box = $("triage");
  box.hidden = Boolean(c.merged_into) || !["received", "dispatched", "en_route"].includes(c.status);
  if (box.hidden) return;
  const answers = c.triage || {};
  for (const group of box.querySelectorAll(".triage-q")) {
    const question = group.dataset.question;
    const text = group.querySelector(".q-text");
    setText(text, c.for_self === false ? text.dataset.other : text.dataset.self);
    let chosen = null;
    if (answers[question] === true) chosen = "yes";
    else if (answers[question] === false) chosen = "no";
    else if (state.unsure.has(question)) chosen = "unknown";
    group.dataset.answered = chosen || "";
    for (const button of group.querySelectorAll(".answer")) button.setAttribute("aria-pressed", String(button.dataset.answer === chosen));
  }
}

async function answer(question, choice) {
  const error = $("triage-error");
  showError(error, null);
  if (choice === "unknown") {
    state.unsure.add(question);
    if (state.case) renderTriage(state.case);
    return;
  }
  state.unsure.delete(question);
  try {
    const updated = await api(`/api/v1/cases/${state.caseId}/triage`, { method: "POST", body: { [question]: choice === "yes" } });
    renderAnswer(updated);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return signOut({ revoke: false });
    showError(error, err);
  }
}

// --- a silent call's text thread ---------------------------------------------------------------

function renderMessageBox(c) {
  $("messages").hidden = !c.silent;
  $("message-form").hidden = ENDED.has(c.status);
}

function renderMessages() {
  const thread = $("message-thread");
  const ordered = [...state.messages.values()].sort((a, b) => Date.parse(a.sent_at) - Date.parse(b.sent_at) || a.id - b.id);
  thread.replaceChildren(
    ...ordered.map((m) => {
      const item = document.createElement("li");
      item.className = `message from-${m.sender}`;
      item.dataset.messageId = String(m.id);
      item.dataset.sender = m.sender;
      const who = document.createElement("span");
      who.className = "message-who";
      const at = new Date(m.sent_at);
      const time = Number.isNaN(at.getTime()) ? "" : at.toLocaleTimeString(IS_ZH ? "zh-CN" : "en-GB", { hour: "2-digit", minute: "2-digit" });
      who.textContent = `${m.sender === "caller" ? t("You") : choice(m.author || "") || t("120 centre")} · ${time}`;
      const text = document.createElement("span");
      text.className = "message-text";
      text.textContent = m.text;
      item.append(who, text);
      return item;
    }),
  );
  $("messages-empty").hidden = ordered.length > 0;
  const last = thread.lastElementChild;
  if (last) last.scrollIntoView({ block: "nearest" });
}

async function sendMessage() {
  const input = $("message-text");
  const error = $("message-error");
  const text = input.value.trim();
  if (!text) {
    showError(error, t("Type a message first."));
    input.focus();
    return;
  }
  showError(error, null);
  const button = $("message-form").querySelector("button");
  button.disabled = true;
  try {
    const sent = await api(`/api/v1/cases/${state.caseId}/messages`, { method: "POST", body: { text } });
    state.messages.set(sent.id, sent);
    input.value = "";
    renderMessages();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return signOut({ revoke: false });
    const fields = err instanceof ApiError ? err.fields.text || [] : [];
    showError(error, fields.length ? fields.join(" ") : err);
  } finally {
    button.disabled = false;
    input.focus();
  }
}

function renderEta() {
  const line = $("case-eta");
  if (state.etaDeadline === null) {
    line.hidden = true;
    return;
  }
  const left = Math.max(0, Math.round((state.etaDeadline - serverNow()) / 1000));
  const minutes = Math.floor(left / 60);
  const seconds = String(left % 60).padStart(2, "0");
  line.hidden = false;
  line.dataset.leftS = String(left);
  setText(
    line,
    state.etaLabel === "hospital"
      ? tf("ETA to hospital %(min)s min %(s)s s", { min: minutes, s: seconds })
      : tf("ETA %(min)s min %(s)s s", { min: minutes, s: seconds }),
  );
}

function bindCase() {
  $("cancel-case").addEventListener("click", () => {
    $("cancel-confirm").hidden = false;
    $("cancel-confirm").focus();
  });
  $("cancel-confirm").addEventListener("click", async () => {
    const caseId = root.dataset.caseId;
    try {
      const updated = await api(`/api/v1/cases/${caseId}/cancel`, { method: "POST", body: { reason: t("Cancelled by the caller") } });
      renderAnswer(updated);
    } catch (err) {
      showError($("case-error"), err);
    }
  });
  for (const group of document.querySelectorAll(".triage-q")) {
    for (const button of group.querySelectorAll(".answer")) {
      button.addEventListener("click", () => answer(group.dataset.question, button.dataset.answer));
    }
  }
  $("message-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sendMessage();
  });
  $("case-done").addEventListener("click", () => {
    stopCase();
    localStorage.removeItem(CASE_KEY);
    state.fitted = false;
    show("home-view");
  });
}

// --- start -----------------------------------------------------------------------------------

async function resume() {
  const caseId = localStorage.getItem(CASE_KEY);
  if (caseId) {
    try {
      const snap = await api(`/api/v1/cases/${caseId}`);
      if (!ENDED.has(snap.status)) return openCase(Number(caseId));
      localStorage.removeItem(CASE_KEY);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return signOut({ revoke: false });
      if (!(err instanceof ApiError && err.status === 404)) return openCase(Number(caseId)); // offline: it retries
      localStorage.removeItem(CASE_KEY);
    }
  }
  show("home-view");
}

function bindNavigation() {
  for (const button of document.querySelectorAll("[data-show]")) {
    button.addEventListener("click", () => show(button.dataset.show));
  }
  $("app-signout").addEventListener("click", () => signOut());
  $("archive-form").addEventListener("submit", (event) => {
    event.preventDefault();
    saveArchive().catch(onApiFailure);
  });
}

bindSignIn();
bindManualLocation();
bindSos();
bindCase();
bindNavigation();
if (state.token) {
  setToken(state.token);
  api("/api/v1/me")
    .then((me) => (me.role === "citizen" ? resume() : signOut()))
    .catch((err) => {
      // Only a refused token signs out: offline, the SOS button must still be there to press.
      if (err instanceof ApiError && err.status === 401) {
        // A dead token, but a live session: get a fresh token from the session instead.
        if (hasSession()) return signOut({ revoke: false }).then(signInFromSession);
        return signOut({ revoke: false });
      }
      return resume();
    });
} else if (hasSession()) {
  signInFromSession();
} else {
  show("signin-view");
}
window.oneKeyApp = { state };
