/*
 * Dispatcher console 调度台: a live table of active cases.
 *
 * Protocol (DESIGN.md, "Wire contract"):
 *   1. GET the snapshot (/api/v1/dispatch/cases) with the session cookie; it carries last_seq.
 *   2. Open /ws/dispatch/ (same origin). The server authenticates by the session and answers
 *      {"type":"ready","last_seq":N}; we send {"type":"resume","since":lastSeq}.
 *   3. Apply {"type":"event","seq",...} strictly in order: seq <= lastSeq is a duplicate (ignored);
 *      seq > lastSeq + 1 is a gap (ask for a resume from lastSeq, do not apply).
 *   4. {"type":"resync"} means "your position is unknown to me": refetch the snapshot, resume from it.
 *   5. When the socket closes, reconnect by ourselves (0.5 s doubling to 10 s) and resume.
 * The websocket is only a notification pipe: the REST snapshot is the truth.
 *
 * Health summaries (dispatch/health.py): each read of a patient's archive is audited, so the page
 * reads one only when the dispatcher opens a case's details (GET /api/v1/dispatch/cases/{id}), or
 * takes it from the case.created event, where the server added it for this dispatcher at delivery.
 * It is kept in memory while the case is active and forgotten when the case ends.
 *
 * No framework, no build step. Every value from the server reaches the DOM through textContent.
 */
(() => {
  "use strict";

  const root = document.getElementById("console");
  if (!root) return;

  const cfg = {
    casesUrl: root.dataset.casesUrl,
    recommendationsUrl: root.dataset.recommendationsUrlTemplate,
    assignUrl: root.dataset.assignUrlTemplate,
    caseUrl: root.dataset.caseUrlTemplate,
    overrideUrl: root.dataset.healthOverrideUrlTemplate,
    wsPath: root.dataset.wsPath || "/ws/dispatch/",
    loginUrl: root.dataset.loginUrl || "/accounts/login/",
    overdueAfterMs: 1000 * Number(root.dataset.overdueAfterS || 60),
  };
  const LABELS = readJson("console-labels") || {};

  const ENDED = new Set(["closed", "cancelled"]);
  const REMOVE_ENDED_AFTER_MS = 30000;
  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 10000;
  const PING_EVERY_MS = 20000;
  // Close codes after which reconnecting cannot help (see dispatch/consumers.py).
  const SIGNED_OUT_CODES = new Set([4001, 4002, 4003, 4008]);

  const els = {
    rows: document.getElementById("case-rows"),
    empty: document.getElementById("empty"),
    conn: document.getElementById("connection"),
    summary: document.getElementById("summary"),
    error: document.getElementById("console-error"),
    announcer: document.getElementById("announcer"),
  };

  const state = {
    cases: new Map(), // id -> entry {id, data, admission, health, row, cells, panel, endedAt, detailsButton}
    units: new Map(), // ambulance id -> latest unit seen in an event
    lastSeq: 0,
    haveSnapshot: false,
    snapshotPending: null, // the Promise of a snapshot being fetched; events are dropped meanwhile
    socket: null,
    connected: false,
    connState: "connecting",
    attempt: 0,
    reconnectTimer: null,
    lastFrameAt: 0,
    pingSentAt: 0,
    highestSeen: 0, // the highest seq any event frame carried (applied or not)
    pingsSent: 0, // on this socket; the server answers each ping with a pong, in order
    pongsSeen: 0,
    resumeDoneAtPong: 0, // a resume is replaying until this many pongs have come back
    signedOut: false,
    clockOffsetMs: 0,
  };

  // For tests and for curious dispatchers with a devtools console.
  window.oneKeyConsole = {
    get lastSeq() { return state.lastSeq; },
    get connected() { return state.connected; },
    get socket() { return state.socket; },
    get state() { return state.connState; },
    caseIds() { return [...state.cases.keys()]; },
    reconnectNow,
  };

  // ---------------------------------------------------------------------------------------------
  // Small helpers

  function readJson(id) {
    const node = document.getElementById(id);
    if (!node) return null;
    try { return JSON.parse(node.textContent); } catch (_) { return null; }
  }

  function label(kind, value) {
    const table = LABELS[kind] || {};
    return table[value] || (value == null ? "—" : String(value));
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value == null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) {
      if (child == null) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /** "English 中文": the Chinese part marked up with its language for screen readers. */
  function bi(en, zh) {
    const frag = document.createDocumentFragment();
    frag.append(en + " ", el("span", { lang: "zh-CN" }, zh));
    return frag;
  }

  function urlFor(template, id) {
    return template.replace(/\/0(?=\/|$)/, "/" + encodeURIComponent(id));
  }

  const pad = (n) => String(n).padStart(2, "0");

  function parseTime(iso) {
    if (!iso) return null;
    const ms = Date.parse(iso);
    return Number.isFinite(ms) ? ms : null;
  }

  /** Local wall-clock time of an ISO instant; the date is added when it is not today. */
  function formatLocalTime(ms) {
    const d = new Date(ms);
    const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
    const today = new Date(serverNow());
    const sameDay = d.getFullYear() === today.getFullYear() && d.getMonth() === today.getMonth() && d.getDate() === today.getDate();
    return sameDay ? time : `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
  }

  function formatDuration(ms) {
    const total = Math.max(0, Math.floor(ms / 1000));
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    const s = total % 60;
    return h ? `${h}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
  }

  function formatDistance(m) {
    if (!Number.isFinite(m)) return "—";
    return m < 1000 ? `${Math.round(m)} m` : `${(m / 1000).toFixed(1)} km`;
  }

  function formatEta(s) {
    if (!Number.isFinite(s)) return "—";
    const min = Math.floor(s / 60);
    return min ? `${min} min ${pad(s % 60)} s` : `${s} s`;
  }

  function formatCoord(value) {
    return Number.isFinite(value) ? value.toFixed(5) : "—";
  }

  /** The browser clock may be off; the server's Date header tells us by how much (to a second). */
  function noteServerDate(header) {
    const server = parseTime(header);
    if (server == null) return;
    const offset = server - Date.now();
    state.clockOffsetMs = Math.abs(offset) > 2000 ? offset : 0;
  }

  function serverNow() {
    return Date.now() + state.clockOffsetMs;
  }

  function csrfToken() {
    for (const part of document.cookie.split(";")) {
      const [name, ...rest] = part.trim().split("=");
      if (name === "csrftoken") return decodeURIComponent(rest.join("="));
    }
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function problemText(body, status) {
    if (body && typeof body === "object") {
      if (typeof body.detail === "string") return body.detail;
      const parts = [];
      for (const [field, messages] of Object.entries(body)) {
        if (field === "code") continue;
        parts.push(`${field}: ${Array.isArray(messages) ? messages.join(" ") : messages}`);
      }
      if (parts.length) return parts.join("; ");
    }
    return `HTTP ${status}`;
  }

  async function requestJson(url, options) {
    const response = await fetch(url, {
      credentials: "same-origin",
      cache: "no-store",
      ...options,
      headers: { Accept: "application/json", ...(options && options.headers) },
    });
    let body = null;
    try { body = await response.json(); } catch (_) { /* not JSON */ }
    if (response.status === 401 || (response.status === 403 && !(options && options.method === "POST"))) {
      signOut();
    }
    return { response, body };
  }

  function showError(message) {
    if (!message) {
      els.error.hidden = true;
      els.error.textContent = "";
      return;
    }
    els.error.textContent = message;
    els.error.hidden = false;
  }

  function announce(text) {
    if (!els.announcer) return;
    els.announcer.textContent = "";
    // A fresh text node is what makes screen readers speak again.
    window.setTimeout(() => { els.announcer.textContent = text; }, 30);
  }

  // ---------------------------------------------------------------------------------------------
  // Connection indicator

  const CONN_TEXT = {
    connecting: ["Connecting…", "连接中"],
    connected: ["Connected", "已连接"],
    reconnecting: ["Reconnecting…", "重连中"],
    "signed-out": ["Signed out — sign in again", "已退出登录，请重新登录"],
  };

  function setConnState(name) {
    if (state.connState === name && els.conn.dataset.state === name) return;
    state.connState = name;
    els.conn.dataset.state = name;
    els.conn.className = `conn conn-${name}`;
    const text = els.conn.querySelector(".conn-text");
    text.textContent = "";
    const [en, zh] = CONN_TEXT[name];
    if (name === "signed-out") {
      const next = encodeURIComponent(location.pathname);
      text.append(el("a", { href: `${cfg.loginUrl}?next=${next}` }, bi(en, zh)));
    } else {
      text.append(bi(en, zh));
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Snapshot

  function loadSnapshot() {
    if (state.snapshotPending) return state.snapshotPending;
    const url = `${cfg.casesUrl}?limit=1000`;
    state.snapshotPending = (async () => {
      const { response, body } = await requestJson(url);
      if (!response.ok || !body || !Array.isArray(body.results)) {
        throw new Error(`Could not load the case list (${problemText(body, response.status)}). 无法加载病例列表。`);
      }
      noteServerDate(response.headers.get("Date"));
      applySnapshot(body);
      showError(null);
    })().finally(() => {
      state.snapshotPending = null;
    });
    return state.snapshotPending;
  }

  function applySnapshot(body) {
    const seen = new Set();
    for (const data of body.results) {
      seen.add(data.id);
      upsertCase(data, { authoritative: true, quiet: true });
    }
    for (const [id, entry] of state.cases) {
      if (!seen.has(id)) removeCase(entry);
    }
    state.lastSeq = Number(body.last_seq) || 0;
    state.highestSeen = state.lastSeq;
    state.haveSnapshot = true;
    layout();
  }

  // ---------------------------------------------------------------------------------------------
  // Websocket

  function connect() {
    window.clearTimeout(state.reconnectTimer);
    state.reconnectTimer = null;
    if (state.signedOut) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    let ws;
    try {
      ws = new WebSocket(`${scheme}//${location.host}${cfg.wsPath}`);
    } catch (err) {
      scheduleReconnect();
      return;
    }
    state.socket = ws;
    state.lastFrameAt = Date.now();
    state.pingSentAt = 0;
    state.pingsSent = 0;
    state.pongsSeen = 0;
    state.resumeDoneAtPong = 0;
    ws.addEventListener("message", (event) => {
      if (ws !== state.socket) return;
      state.lastFrameAt = Date.now();
      let message;
      try { message = JSON.parse(event.data); } catch (_) { return; }
      onFrame(message).catch((err) => {
        showError(err.message);
        dropSocket(); // start over: reconnect, snapshot if needed, resume
      });
    });
    ws.addEventListener("close", (event) => {
      if (ws !== state.socket) return;
      state.socket = null;
      state.connected = false;
      if (SIGNED_OUT_CODES.has(event.code)) {
        signOut();
        return;
      }
      scheduleReconnect();
    });
    // "error" is always followed by "close"; nothing to do here.
  }

  function send(message) {
    const ws = state.socket;
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  function ping() {
    if (!send({ type: "ping" })) return false;
    state.pingsSent += 1;
    state.pingSentAt = Date.now();
    return true;
  }

  /** Ask for everything after lastSeq. The server handles a socket's messages in order, so the pong
   *  to a ping sent right after the resume marks the end of its replay; until then a gap is most
   *  likely being filled already, and asking again would only multiply the replay. */
  function sendResume(force) {
    if (!force && state.pongsSeen < state.resumeDoneAtPong) return; // checked again at the pong
    if (send({ type: "resume", since: state.lastSeq }) && ping()) {
      state.resumeDoneAtPong = state.pingsSent;
    }
  }

  async function onPong() {
    state.pongsSeen += 1;
    if (state.pongsSeen === state.resumeDoneAtPong && state.highestSeen > state.lastSeq && !state.snapshotPending) {
      // A finished replay covers every seq the server had sent before it, so a gap still open now
      // means the two sides disagree about the stream: start over from a snapshot.
      await resync();
    }
  }

  async function resync() {
    state.haveSnapshot = false;
    await loadSnapshot();
    sendResume(true);
  }

  async function onFrame(message) {
    switch (message.type) {
      case "ready":
        state.connected = true;
        state.attempt = 0;
        setConnState("connected");
        showError(null);
        if (!state.haveSnapshot) await loadSnapshot();
        else if (state.snapshotPending) await state.snapshotPending;
        sendResume(true);
        break;
      case "event":
        onEvent(message);
        break;
      case "resync":
        await resync();
        break;
      case "pong":
        await onPong();
        break;
      case "error":
        showError(`${message.code || "error"}: ${message.detail || ""}`);
        break;
      default:
        break; // anything newer than this page
    }
  }

  function onEvent(message) {
    if (state.snapshotPending || !state.haveSnapshot) return; // replayed after the snapshot
    const seq = Number(message.seq);
    if (!Number.isInteger(seq) || seq <= state.lastSeq) return; // seen already
    state.highestSeen = Math.max(state.highestSeen, seq);
    if (seq !== state.lastSeq + 1) {
      sendResume(false); // a gap: ask for it (unless a replay is under way), apply nothing out of order
      return;
    }
    state.lastSeq = seq;
    applyEvent(message.event || "", message.data || {});
  }

  function scheduleReconnect() {
    if (state.signedOut || state.reconnectTimer) return;
    setConnState("reconnecting");
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** state.attempt);
    state.attempt += 1;
    const delay = Math.min(BACKOFF_MAX_MS, base * (1 + Math.random() * 0.1)); // a little jitter
    state.reconnectTimer = window.setTimeout(connect, delay);
  }

  /** Abandon the current socket (even half-open) and go through the reconnect path. */
  function dropSocket() {
    const ws = state.socket;
    state.socket = null;
    state.connected = false;
    if (ws) {
      try { ws.close(); } catch (_) { /* already closing */ }
    }
    scheduleReconnect();
  }

  function reconnectNow() {
    if (state.signedOut || state.connected) return;
    state.attempt = 0;
    window.clearTimeout(state.reconnectTimer);
    state.reconnectTimer = null;
    if (state.socket) return; // a connection attempt is under way
    connect();
  }

  function signOut() {
    if (state.signedOut) return;
    state.signedOut = true;
    state.connected = false;
    window.clearTimeout(state.reconnectTimer);
    state.reconnectTimer = null;
    const ws = state.socket;
    state.socket = null;
    if (ws) { try { ws.close(); } catch (_) { /* ignore */ } }
    setConnState("signed-out");
  }

  /** Ping now and then; a ping with no frame at all after it by the next beat means a dead link.
   *  (Judged per ping, not by wall time, so a background tab's throttled timers cause no false alarm.) */
  function heartbeat() {
    if (!state.socket || !state.connected) return;
    if (state.pingSentAt && state.lastFrameAt < state.pingSentAt) {
      dropSocket();
      return;
    }
    ping();
  }

  // ---------------------------------------------------------------------------------------------
  // Applying events

  function applyEvent(type, data) {
    if (type.startsWith("case.")) {
      // The dispatch stream carries no health summary today (the panel reads it, audited); should
      // an event ever carry one, it was read and logged for this dispatcher, so show it.
      const { health_summary: health, ...caseData } = data;
      upsertCase(caseData, { authoritative: false, quiet: false });
      if (health) {
        const entry = state.cases.get(caseData.id);
        if (entry) setHealth(entry, health);
      }
    } else if (type.startsWith("unit.")) {
      updateUnit(data);
    } else if (type.startsWith("admission.")) {
      updateAdmission(data);
    }
    layout();
  }

  function upsertCase(data, { authoritative, quiet }) {
    if (!data || data.id == null) return;
    let entry = state.cases.get(data.id);
    if (entry && !authoritative) {
      // Never let an older picture (a replayed event, a slow POST answer) overwrite a newer one.
      const have = parseTime(entry.data.updated_at);
      const got = parseTime(data.updated_at);
      if (have != null && got != null && got < have) return;
    }
    if (!entry) {
      if (ENDED.has(data.status) && !authoritative) return; // never saw it alive; nothing to show
      entry = createEntry(data);
      state.cases.set(data.id, entry);
      if (!quiet) {
        entry.row.classList.add("fresh");
        window.setTimeout(() => entry.row.classList.remove("fresh"), 4000);
        announce(`New case #${data.id}: ${label("complaint", data.complaint)}`);
      }
    }
    const wasEnded = ENDED.has(entry.data.status);
    entry.data = data;
    if (data.admission !== undefined) entry.admission = data.admission; // the case detail carries it
    if (ENDED.has(data.status)) {
      if (!wasEnded) entry.endedAt = Date.now();
      closePanel(entry);
      entry.health = null; // the case's access grants have ended: keep no health data
    } else {
      entry.endedAt = null;
    }
    renderRow(entry);
  }

  function updateUnit(unit) {
    if (!unit || unit.id == null) return;
    state.units.set(unit.id, unit);
    for (const entry of state.cases.values()) {
      const mine = entry.data.ambulance;
      if (mine && mine.id === unit.id) {
        entry.data.ambulance = { ...mine, call_sign: unit.call_sign, status: unit.status, lat: unit.lat, lon: unit.lon, position_at: unit.position_at };
        renderRow(entry);
      }
      if (entry.panel) markUnitInPanel(entry, unit);
    }
  }

  function updateAdmission(admission) {
    if (!admission || admission.case == null) return;
    const entry = state.cases.get(admission.case);
    if (!entry) return;
    entry.admission = admission;
    renderRow(entry);
  }

  function removeCase(entry) {
    closePanel(entry);
    entry.row.remove();
    state.cases.delete(entry.id);
  }

  // ---------------------------------------------------------------------------------------------
  // Rendering

  const COLUMNS = ["id", "received", "waiting", "status", "complaint", "location", "patient", "health", "unit", "hospital", "actions"];

  function createEntry(data) {
    const row = el("tr", { class: "case-row" });
    const cells = {};
    for (const name of COLUMNS) {
      const cell = el(name === "id" ? "th" : "td", { class: `col-${name}` });
      if (name === "id") {
        cell.setAttribute("scope", "row");
        cell.tabIndex = -1;
      }
      cells[name] = cell;
      row.append(cell);
    }
    const entry = { id: data.id, data, admission: null, health: null, row, cells, panel: null, endedAt: null };
    const button = el(
      "button",
      { type: "button", class: "button small details", "aria-expanded": "false", onclick: () => togglePanel(entry) },
      bi("Details", "详情"),
    );
    cells.actions.append(button);
    entry.detailsButton = button;
    return entry;
  }

  function setText(cell, ...lines) {
    cell.textContent = "";
    lines.forEach((line, index) => {
      if (line == null || line === "") return;
      if (index > 0) cell.append(el("br"));
      cell.append(line instanceof Node ? line : document.createTextNode(String(line)));
    });
  }

  function renderRow(entry) {
    const c = entry.data;
    const { row, cells } = entry;
    row.dataset.caseId = c.id;
    row.dataset.status = c.status;
    row.classList.toggle("ended", ENDED.has(c.status));

    cells.id.textContent = `#${c.id}`;

    const received = parseTime(c.received_at);
    cells.received.textContent = received == null ? "—" : formatLocalTime(received);
    if (received != null) {
      cells.received.title = new Date(received).toLocaleString();
      cells.received.dataset.iso = c.received_at;
    }

    cells.status.textContent = "";
    cells.status.append(el("span", { class: `badge status-${c.status}` }, label("case_status", c.status)));

    setText(cells.complaint, label("complaint", c.complaint), c.note ? el("span", { class: "note small muted", title: c.note }, c.note) : null);

    const acc = Number.isFinite(c.accuracy_m) ? ` ±${Math.round(c.accuracy_m)} m` : "";
    setText(cells.location, `${formatCoord(c.lat)}, ${formatCoord(c.lon)}`, acc ? el("span", { class: "small muted" }, acc.trim()) : null);

    setText(
      cells.patient,
      c.for_self ? bi("Caller", "本人") : bi("Someone else", "他人"),
      c.caller_phone ? el("span", { class: "small muted" }, c.caller_phone) : null,
    );

    const unit = c.ambulance;
    if (unit) {
      setText(cells.unit, el("strong", { class: "call-sign" }, unit.call_sign), el("span", { class: "small muted" }, label("unit_status", unit.status)));
    } else {
      setText(cells.unit, "—");
    }

    const hospital = c.hospital;
    const adm = entry.admission;
    const hospitalText = hospital ? `${hospital.name_zh || hospital.name_en} (${hospital.code})` : "—";
    let admText = null;
    if (adm) {
      const bits = [label("admission_status", adm.status)];
      if (adm.registration_no) bits.push(`#${adm.registration_no}`);
      else if (Number.isFinite(adm.eta_s)) bits.push(`ETA ${formatEta(adm.eta_s)}`);
      admText = el("span", { class: "small muted" }, bits.join(" · "));
    }
    setText(cells.hospital, hospitalText, admText);

    renderHealthBadge(entry);

    entry.detailsButton.hidden = ENDED.has(c.status);
    syncPanel(entry);
    renderWaiting(entry, serverNow());
  }

  function renderWaiting(entry, now) {
    const c = entry.data;
    const cell = entry.cells.waiting;
    const received = parseTime(c.received_at);
    let overdue = false;
    if (received == null || ENDED.has(c.status)) {
      cell.textContent = ENDED.has(c.status) ? label("case_status", c.status) : "—";
    } else if (c.status === "received") {
      const waited = now - received;
      overdue = waited > cfg.overdueAfterMs;
      cell.textContent = formatDuration(waited);
      if (overdue) cell.append(" ", el("span", { class: "overdue-flag" }, bi("> 60 s", "超时")));
    } else {
      const notified = parseTime(c.notified_at);
      cell.textContent = "";
      if (notified != null) {
        cell.append(`${formatDuration(notified - received)} `, el("span", { class: "small muted" }, bi("to dispatch", "派车用时")));
      } else {
        cell.append(formatDuration(now - received));
      }
    }
    entry.row.classList.toggle("overdue", overdue);
  }

  function sortKey(entry) {
    const c = entry.data;
    const received = parseTime(c.received_at) || 0;
    if (ENDED.has(c.status)) return [2, -(entry.endedAt || 0), -c.id];
    if (c.status === "received") return [0, received, c.id]; // the queue: longest waiting first
    return [1, -received, -c.id]; // under way: newest first
  }

  function compareKeys(a, b) {
    for (let i = 0; i < a.length; i += 1) {
      if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
    }
    return 0;
  }

  /** Put rows in order, moving only those out of place (moving a node keeps its state). */
  function layout() {
    const entries = [...state.cases.values()];
    const keys = new Map(entries.map((e) => [e, sortKey(e)]));
    entries.sort((a, b) => compareKeys(keys.get(a), keys.get(b)));
    let cursor = els.rows.firstChild;
    for (const entry of entries) {
      for (const node of entry.panel ? [entry.row, entry.panel.row] : [entry.row]) {
        if (node === cursor) {
          cursor = cursor.nextSibling;
        } else {
          els.rows.insertBefore(node, cursor);
        }
      }
    }
    els.empty.hidden = state.cases.size > 0;
    renderSummary();
  }

  function renderSummary() {
    let active = 0;
    let waiting = 0;
    let overdue = 0;
    const now = serverNow();
    for (const entry of state.cases.values()) {
      const c = entry.data;
      if (ENDED.has(c.status)) continue;
      active += 1;
      if (c.status === "received") {
        waiting += 1;
        const received = parseTime(c.received_at);
        if (received != null && now - received > cfg.overdueAfterMs) overdue += 1;
      }
    }
    const text = `${active} active 进行中 · ${waiting} waiting for a unit 待派车 · ${overdue} over 60 s 超时`;
    if (els.summary.textContent !== text) els.summary.textContent = text;
  }

  function tick() {
    const now = serverNow();
    let removed = false;
    for (const entry of [...state.cases.values()]) {
      if (entry.endedAt && Date.now() - entry.endedAt > REMOVE_ENDED_AFTER_MS) {
        removeCase(entry);
        removed = true;
        continue;
      }
      renderWaiting(entry, now);
    }
    if (removed) layout();
    else renderSummary();
  }

  // ---------------------------------------------------------------------------------------------
  // The case panel: health summary, then recommendations and assignment

  function togglePanel(entry) {
    if (entry.panel) closePanel(entry);
    else openPanel(entry);
  }

  function closePanel(entry) {
    if (!entry.panel) return;
    entry.panel.row.remove();
    entry.panel = null;
    entry.detailsButton.setAttribute("aria-expanded", "false");
  }

  function openPanel(entry) {
    const id = `details-${entry.id}`;
    // Health section (filled by renderHealthPanel).
    const healthTitle = el("h3", { class: "panel-title", id: `${id}-health`, tabindex: "-1" }, bi("Health archive", "健康档案"));
    const reread = el(
      "button",
      {
        type: "button",
        class: "button small reread",
        title: "Each read is written to the patient's access log. 每次读取都会记入患者的访问日志。",
        onclick: () => loadHealth(entry),
      },
      bi("Read again", "重新读取"),
    );
    const healthStatus = el("p", { class: "panel-status small muted", role: "status", "aria-live": "polite" });
    const healthError = el("p", { class: "alert alert-error health-error", role: "alert", hidden: true });
    const healthBody = el("div", { class: "health-body" });
    const healthSection = el(
      "section",
      { class: "health-card", "aria-labelledby": `${id}-health` },
      el("div", { class: "panel-head" }, healthTitle, reread),
      healthStatus,
      healthError,
      healthBody,
    );

    // Recommendations section (while the case waits for a unit).
    const status = el("p", { class: "rec-status", role: "status", "aria-live": "polite" });
    const error = el("p", { class: "alert alert-error rec-error", role: "alert", hidden: true });
    const list = el("div", { class: "rec-list" });
    const refresh = el("button", { type: "button", class: "button small", onclick: () => loadRecommendations(entry) }, bi("Refresh", "刷新"));
    const recSection = el(
      "section",
      { class: "rec-section", "aria-labelledby": `${id}-units` },
      el("h3", { class: "panel-title rec-title", id: `${id}-units` }, bi(`Recommended units for case #${entry.id}`, "推荐车辆")),
      status,
      error,
      list,
      refresh,
    );
    const unitNote = el("p", { class: "unit-note muted", hidden: true });

    const box = el(
      "div",
      { class: "rec-panel", id, role: "region", "aria-label": `Case #${entry.id} details 病例详情` },
      healthSection,
      recSection,
      unitNote,
    );
    const row = el("tr", { class: "rec-row detail-row", "data-case-id": entry.id }, el("td", { colspan: COLUMNS.length }, box));
    entry.panel = {
      row, status, error, list, buttons: new Map(), recSection, unitNote, recsShown: null,
      healthSection, healthTitle, healthStatus, healthError, healthBody, reread, override: null,
    };
    entry.detailsButton.setAttribute("aria-expanded", "true");
    entry.detailsButton.setAttribute("aria-controls", id);
    entry.row.after(row);
    syncPanel(entry);
    // A summary already here (from the case.created event, or read before) is shown as it is:
    // reading it again would be one more entry in the patient's access log.
    if (entry.health) renderHealthPanel(entry);
    else if (entry.healthLoading) showHealthLoading(entry.panel, true); // a read already under way
    else loadHealth(entry);
  }

  /** Recommendations while the case waits for a unit; once one is assigned, a line saying which. */
  function syncPanel(entry) {
    const panel = entry.panel;
    if (!panel) return;
    const waiting = entry.data.status === "received";
    if (!waiting) {
      const unit = entry.data.ambulance;
      panel.unitNote.textContent = "";
      panel.unitNote.append(
        bi("Unit assigned:", "已派车："),
        " ",
        unit ? el("strong", { class: "call-sign" }, unit.call_sign) : "—",
        unit ? ` · ${label("unit_status", unit.status)}` : "",
      );
    }
    if (panel.recsShown === waiting) return;
    panel.recsShown = waiting;
    panel.recSection.hidden = !waiting;
    panel.unitNote.hidden = waiting;
    if (waiting) {
      loadRecommendations(entry);
    } else {
      panel.list.textContent = "";
      panel.buttons.clear();
      panel.status.textContent = "";
      setPanelError(panel, null);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Health summary

  const HEALTH_REASONS = {
    no_consent: ["no consent", "未授权", "The patient has not consented to share their archive with 120.", "患者未授权向 120 共享健康档案。"],
    not_for_self: ["not the patient", "非本人", "Called for someone else: the caller's archive is not the patient's.", "他人代呼：呼叫者的档案不是患者本人的。"],
    no_archive: ["no archive", "无档案", "The caller has no health archive.", "呼叫者没有健康档案。"],
    not_on_case: ["not on case", "无权查看", "This case is no longer open to you; its health data is closed.", "该病例已不在您的处理范围内，健康档案已关闭。"],
    unavailable: ["unavailable", "暂不可用", "The archive cannot be read right now; the administrators have been alerted.", "健康档案暂时无法读取，已通知管理员。"],
    grant_closed: ["access ended", "授权已结束", "Access ended when the case closed.", "病例结束，访问授权已结束。"],
    grant_expired: ["access expired", "授权已过期", "The access grant has expired.", "访问授权已过期。"],
  };
  const SEXES = { male: ["male", "男"], female: ["female", "女"], other: ["other", "其他"], unknown: ["sex unknown", "性别不详"] };
  const SEVERITIES = { mild: ["mild", "轻度"], moderate: ["moderate", "中度"], severe: ["severe", "重度"] };
  const RH = { positive: ["positive", "阳性"], negative: ["negative", "阴性"] };
  const PREGNANCY = { pregnant: ["Pregnant", "怀孕"], not_pregnant: ["Not pregnant", "未怀孕"], unknown: ["Unknown", "不详"] };

  const asList = (value) => (Array.isArray(value) ? value : []);
  const asText = (value) => (value == null ? "" : String(value));

  function isHealthBlock(block) {
    return block != null && typeof block === "object" && typeof block.available === "boolean";
  }

  /** Keep a summary block for the case (from an event, a read or an override) and show it. */
  function setHealth(entry, block) {
    if (!isHealthBlock(block) || ENDED.has(entry.data.status)) return;
    const before = entry.health;
    entry.health = block;
    renderHealthBadge(entry);
    // The same refusal again (an event replayed) leaves the panel, and a reason being typed, alone.
    const same = before && !before.available && !block.available && before.reason === block.reason;
    if (entry.panel && !same) renderHealthPanel(entry);
  }

  /** "AB Rh−"; null when nothing is known. */
  function bloodShort(bt) {
    const abo = bt && bt.abo && bt.abo !== "unknown" ? String(bt.abo) : "?";
    const rh = bt && bt.rh === "positive" ? "+" : bt && bt.rh === "negative" ? "−" : "?";
    return abo === "?" && rh === "?" ? null : `${abo} Rh${rh}`;
  }

  function bloodLong(bt) {
    const abo = bt && bt.abo && bt.abo !== "unknown" ? String(bt.abo) : "ABO unknown 不详";
    const rh = bt && RH[bt.rh] ? `Rh ${RH[bt.rh][0]} ${RH[bt.rh][1]}` : "Rh unknown 不详";
    return `${abo}, ${rh}`;
  }

  function renderHealthBadge(entry) {
    const cell = entry.cells.health;
    const block = entry.health;
    cell.textContent = "";
    if (!block) {
      cell.dataset.health = "unknown";
      cell.append(el("span", { class: "muted", title: "Read when the case details are opened 打开详情时读取" }, "—"));
      return;
    }
    if (!block.available) {
      const reason = asText(block.reason) || "unavailable";
      cell.dataset.health = reason;
      const [en, zh] = HEALTH_REASONS[reason] || ["not shown", "不可用"];
      cell.append(el("span", { class: `health-reason reason-${reason}`, title: reason }, bi(en, zh)));
      return;
    }
    const s = block.summary || {};
    cell.dataset.health = "available";
    const blood = bloodShort(s.blood_type);
    cell.append(
      el("span", { class: "blood", title: `Blood type 血型: ${bloodLong(s.blood_type)}` }, blood || bi("blood ?", "血型不详")),
    );
    const allergies = asList(s.allergies);
    if (allergies.length) {
      cell.append(
        " ",
        el(
          "span",
          { class: "allergy-flag", title: allergies.map((a) => asText(a && a.substance)).join(", ") },
          `⚠ allergies ${allergies.length} `,
          el("span", { lang: "zh-CN" }, "过敏"),
        ),
      );
    }
    if (s.access_basis === "override") cell.append(" ", el("span", { class: "override-flag" }, bi("override", "紧急授权")));
  }

  function showHealthLoading(panel, loading) {
    panel.reread.disabled = loading;
    panel.healthStatus.textContent = loading ? "Reading the health archive… 正在读取健康档案" : "";
  }

  /** One audited read (GET the case); at most one at a time per case, whatever the panel does. */
  async function loadHealth(entry) {
    if (entry.healthLoading) return;
    entry.healthLoading = true;
    if (entry.panel) {
      setHealthError(entry.panel, null);
      showHealthLoading(entry.panel, true);
    }
    let result;
    try {
      result = await requestJson(urlFor(cfg.caseUrl, entry.id));
    } catch (err) {
      result = { error: err };
    }
    entry.healthLoading = false;
    const panel = entry.panel; // the one open now, if any
    if (panel) showHealthLoading(panel, false);
    if (result.error) {
      if (panel) setHealthError(panel, `Could not read the health archive 无法读取健康档案: ${result.error.message}`);
      return;
    }
    const { response, body } = result;
    if (response.ok && body && isHealthBlock(body.health_summary)) {
      if (state.cases.get(entry.id) !== entry) return; // removed meanwhile
      const { health_summary: block, ...caseData } = body;
      upsertCase(caseData, { authoritative: false, quiet: true }); // the case in full, fresh
      setHealth(entry, block); // the read is logged whether or not the panel is still open
      layout();
      return;
    }
    if (panel) setHealthError(panel, `${response.status} — ${problemText(body, response.status)}`);
  }

  function setHealthError(panel, message) {
    panel.healthError.textContent = message || "";
    panel.healthError.hidden = !message;
  }

  function fieldBox(en, zh, className, content) {
    return el("div", { class: `health-field ${className}` }, el("dt", {}, bi(en, zh)), el("dd", {}, content));
  }

  function noneRecorded() {
    return el("span", { class: "muted" }, bi("None recorded", "未记录"));
  }

  function itemList(items, render) {
    if (!items.length) return noneRecorded();
    return el("ul", { class: "health-list" }, ...items.map(render));
  }

  function formatDate(iso) {
    const ms = parseTime(iso);
    if (ms == null) return asText(iso) || "—";
    const d = new Date(ms);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }

  function ageFrom(dob) {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(asText(dob));
    if (!m) return null;
    const now = new Date(serverNow());
    const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
    let age = now.getFullYear() - year;
    if (now.getMonth() + 1 < month || (now.getMonth() + 1 === month && now.getDate() < day)) age -= 1;
    return age >= 0 ? age : null;
  }

  function renderHealthPanel(entry) {
    const panel = entry.panel;
    if (!panel) return;
    const body = panel.healthBody;
    const block = entry.health;
    body.textContent = "";
    panel.override = null;
    panel.healthSection.classList.remove("is-override", "is-refused");
    if (!block) return;
    body.dataset.available = String(block.available);
    if (!block.available) {
      const reason = asText(block.reason) || "unavailable";
      panel.healthSection.classList.add("is-refused");
      const [en, zh, longEn, longZh] = HEALTH_REASONS[reason] || ["not shown", "不可用", `No health summary (${reason}).`, "无健康摘要。"];
      body.append(
        el("p", { class: "health-refused" }, el("span", { class: `health-reason reason-${reason}` }, bi(en, zh)), " ", longEn, " ", el("span", { lang: "zh-CN" }, longZh)),
      );
      if (reason === "no_consent" && !ENDED.has(entry.data.status)) body.append(overrideControls(entry));
      return;
    }

    const s = block.summary || {};
    const override = s.access_basis === "override";
    panel.healthSection.classList.toggle("is-override", override);
    if (override) {
      body.append(
        el(
          "p",
          { class: "override-note", role: "note" },
          "⚠ Emergency override — flagged for review. ",
          el("span", { lang: "zh-CN" }, "紧急授权，已标记复核。"),
        ),
      );
    }

    const who = el("p", { class: "health-who" }, el("strong", { class: "health-name" }, asText(s.name) || "—"));
    const sex = SEXES[s.sex];
    if (sex) who.append(" · ", bi(sex[0], sex[1]));
    if (s.date_of_birth) {
      const age = ageFrom(s.date_of_birth);
      who.append(" · ", bi("born", "出生"), ` ${asText(s.date_of_birth)}`);
      if (age != null) who.append(` (${age} y `, el("span", { lang: "zh-CN" }, "岁"), ")");
    }
    const blood = bloodShort(s.blood_type);
    const facts = el(
      "p",
      { class: "health-facts" },
      el("span", { class: "health-label" }, bi("Blood type", "血型")),
      " ",
      el("strong", { class: "blood big" }, blood || "?"),
      " ",
      el("span", { class: "small muted" }, bloodLong(s.blood_type)),
    );
    const basis = el(
      "p",
      { class: "health-basis small" },
      el("span", { class: "health-label" }, bi("Access basis", "调阅依据")),
      ": ",
      el("strong", { class: `basis basis-${override ? "override" : "consent"}` }, override ? bi("override", "紧急授权") : bi("consent", "患者授权")),
      " · ",
      el("span", { class: "health-label" }, bi("Verified", "核实于")),
      ": ",
      el("span", { class: "verified-at" }, s.verified_at ? formatDate(s.verified_at) : "—"),
    );

    const pregnancy = s.pregnancy && typeof s.pregnancy === "object" ? s.pregnancy : null;
    let pregnancyContent = noneRecorded();
    if (pregnancy) {
      const [en, zh] = PREGNANCY[pregnancy.status] || [asText(pregnancy.status), ""];
      pregnancyContent = el("span", {}, bi(en, zh));
      if (pregnancy.due_date) pregnancyContent.append(" · ", bi("due", "预产期"), ` ${asText(pregnancy.due_date)}`);
    }
    const doctor = s.family_doctor && typeof s.family_doctor === "object" ? s.family_doctor : null;

    const grid = el(
      "dl",
      { class: "health-grid" },
      fieldBox("Allergies", "过敏", "allergies", itemList(asList(s.allergies), (a) => {
        const severity = asText(a && a.severity);
        const sev = SEVERITIES[severity];
        return el(
          "li",
          { class: `allergy${severity === "severe" ? " severe" : ""}` },
          el("strong", { class: "substance" }, asText(a && a.substance)),
          a && a.reaction ? ` — ${asText(a.reaction)}` : null,
          sev ? " " : null,
          sev ? el("span", { class: `sev sev-${severity}` }, bi(sev[0], sev[1])) : null,
        );
      })),
      fieldBox("Chronic conditions", "慢性病", "conditions", itemList(asList(s.chronic_conditions), (c) => el("li", {}, asText(c)))),
      fieldBox("Medications", "用药", "medications", itemList(asList(s.medications), (m) =>
        el("li", {}, el("strong", {}, asText(m && m.name)), m && m.dose ? ` — ${asText(m.dose)}` : null))),
      fieldBox("Implanted devices", "植入装置", "devices", itemList(asList(s.implanted_devices), (d) => el("li", {}, asText(d)))),
      fieldBox("Pregnancy", "妊娠", "pregnancy", pregnancyContent),
      fieldBox("Advance directives", "预先医疗指示", "directives",
        s.advance_directives ? el("span", { class: "directives-text" }, asText(s.advance_directives)) : noneRecorded()),
      fieldBox("Emergency contacts", "紧急联系人", "contacts", itemList(asList(s.emergency_contacts), (c) =>
        el(
          "li",
          {},
          el("strong", {}, asText(c && c.name)),
          c && c.relation ? ` (${asText(c.relation)})` : null,
          c && c.phone ? " " : null,
          c && c.phone ? el("a", { href: `tel:${asText(c.phone).replace(/[^\d+]/g, "")}` }, asText(c.phone)) : null,
        ))),
      fieldBox("Family doctor", "家庭医生", "doctor", doctor
        ? el("span", {}, asText(doctor.name), doctor.phone ? " · " : null, doctor.phone ? el("span", { class: "phone" }, asText(doctor.phone)) : null)
        : noneRecorded()),
      fieldBox("Past surgeries", "既往手术", "surgeries", itemList(asList(s.past_surgeries), (x) =>
        el("li", {}, asText(x && x.name), x && x.year ? ` (${asText(x.year)})` : null))),
    );
    body.append(el("div", { class: "health-top" }, who, facts, basis), grid);
  }

  // Break-glass: read the archive without consent, with a reason (POST .../health-override).
  function overrideControls(entry) {
    const panel = entry.panel;
    const base = `override-${entry.id}`;
    const input = el("input", {
      type: "text",
      id: `${base}-reason`,
      name: "reason",
      class: "override-reason",
      required: true,
      minlength: "10", // the server's rule (dispatch/inputs.py validate_reason_words): 10+ characters, 5+ letters
      maxlength: "500",
      autocomplete: "off",
      "aria-describedby": `${base}-hint ${base}-error`,
    });
    const fieldError = el("p", { class: "field-error", id: `${base}-error`, hidden: true });
    const submit = el("button", { type: "submit", class: "button small danger" }, bi("Open the archive", "调阅档案"));
    const cancel = el("button", { type: "button", class: "button small" }, bi("Cancel", "取消"));
    const form = el(
      "form",
      { class: "override-form", hidden: true, novalidate: true, "aria-label": "Emergency override 紧急授权" },
      el("label", { for: input.id }, bi("Reason for emergency access", "紧急调阅理由")),
      el(
        "p",
        { class: "small muted", id: `${base}-hint` },
        "10–500 characters, in words. Logged, flagged for review and shown to the patient. ",
        el("span", { lang: "zh-CN" }, "10–500 字，请用文字说明；将记录在案、标记复核并告知患者。"),
      ),
      el("div", { class: "override-inputs" }, input, submit, cancel),
      fieldError,
    );
    const open = el(
      "button",
      { type: "button", class: "button small danger override-open", "aria-expanded": "false", "aria-controls": `${base}-form` },
      bi("Emergency override", "紧急授权"),
    );
    form.id = `${base}-form`;
    const ctl = { form, input, submit, open, fieldError, busy: false };
    panel.override = ctl;
    open.addEventListener("click", () => {
      form.hidden = false;
      open.hidden = true;
      open.setAttribute("aria-expanded", "true");
      input.focus();
    });
    cancel.addEventListener("click", () => {
      form.hidden = true;
      open.hidden = false;
      open.setAttribute("aria-expanded", "false");
      setFieldError(ctl, null);
      setHealthError(panel, null);
      open.focus();
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      submitOverride(entry, ctl);
    });
    return el("div", { class: "override" }, open, form);
  }

  function setFieldError(ctl, message) {
    ctl.fieldError.textContent = message || "";
    ctl.fieldError.hidden = !message;
    if (message) ctl.input.setAttribute("aria-invalid", "true");
    else ctl.input.removeAttribute("aria-invalid");
  }

  async function submitOverride(entry, ctl) {
    const panel = entry.panel;
    if (!panel || ctl.busy) return;
    const reason = ctl.input.value.trim();
    if (reason.length < 10 || reason.length > 500) {
      setFieldError(ctl, "Give a reason of 10 to 500 characters. 请填写 10–500 字的理由。");
      ctl.input.focus();
      return;
    }
    setFieldError(ctl, null);
    setHealthError(panel, null);
    ctl.busy = true;
    ctl.submit.disabled = true;
    panel.healthStatus.textContent = "Opening the archive… 正在调阅";
    let result;
    try {
      result = await requestJson(urlFor(cfg.overrideUrl, entry.id), {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify({ reason }),
      });
    } catch (err) {
      result = { error: err };
    }
    ctl.busy = false;
    ctl.submit.disabled = false;
    if (entry.panel !== panel) return; // closed (or the case ended) meanwhile
    panel.healthStatus.textContent = "";
    if (result.error) {
      setHealthError(panel, `Network error — no override recorded 网络错误，未授权: ${result.error.message}`);
      return;
    }
    const { response, body } = result;
    if (response.ok && isHealthBlock(body)) {
      setHealth(entry, body);
      renderHealthPanel(entry);
      panel.healthTitle.focus(); // the form is gone; keep focus in the health section
      announce(`Emergency override recorded for case #${entry.id}; flagged for review. 紧急授权已记录，已标记复核。`);
      return;
    }
    const what = response.status === 409 ? "409 Conflict — override refused 冲突，未授权" : `${response.status} — override refused 未授权`;
    setHealthError(panel, `${what}: ${problemText(body, response.status)}`);
  }

  // ---------------------------------------------------------------------------------------------
  // Recommendations and assignment

  function setPanelError(panel, message) {
    panel.error.textContent = message || "";
    panel.error.hidden = !message;
  }

  async function loadRecommendations(entry) {
    const panel = entry.panel;
    if (!panel) return;
    panel.status.textContent = "Loading… 加载中";
    let result;
    try {
      result = await requestJson(urlFor(cfg.recommendationsUrl, entry.id));
    } catch (err) {
      if (entry.panel === panel) {
        panel.status.textContent = "";
        setPanelError(panel, `Could not load recommendations 无法加载推荐: ${err.message}`);
      }
      return;
    }
    if (entry.panel !== panel) return; // closed meanwhile
    const { response, body } = result;
    if (!response.ok || !Array.isArray(body)) {
      panel.status.textContent = "";
      setPanelError(panel, `${response.status}: ${problemText(body, response.status)}`);
      return;
    }
    renderRecommendations(entry, body);
  }

  function renderRecommendations(entry, ranked) {
    const panel = entry.panel;
    panel.list.textContent = "";
    panel.buttons.clear();
    if (!ranked.length) {
      panel.status.textContent = "No available units. 没有可用车辆。";
      return;
    }
    panel.status.textContent = `${ranked.length} available units, nearest first. 共 ${ranked.length} 辆可用车辆，按预计到达时间排序。`;
    const head = el(
      "tr",
      {},
      el("th", { scope: "col" }, "#"),
      el("th", { scope: "col" }, bi("Call sign", "呼号")),
      el("th", { scope: "col" }, bi("Station", "站点")),
      el("th", { scope: "col" }, bi("Level", "级别")),
      el("th", { scope: "col" }, bi("Distance", "距离")),
      el("th", { scope: "col" }, bi("ETA", "预计到达")),
      el("th", { scope: "col" }, bi("Assign", "派车")),
    );
    const body = el("tbody");
    ranked.forEach((item, index) => {
      const unit = item.ambulance || {};
      const button = el(
        "button",
        { type: "button", class: "button small primary assign", "data-ambulance-id": unit.id, "aria-label": `Assign ${unit.call_sign} to case ${entry.id} 派车` },
        bi("Assign", "派车"),
      );
      button.addEventListener("click", () => assign(entry, unit, button));
      panel.buttons.set(unit.id, button);
      body.append(
        el(
          "tr",
          { "data-ambulance-id": unit.id },
          el("td", {}, String(index + 1)),
          el("th", { scope: "row", class: "call-sign" }, unit.call_sign),
          el("td", {}, unit.station || "—"),
          el("td", {}, label("unit_level", unit.level)),
          el("td", {}, formatDistance(item.distance_m)),
          el("td", {}, formatEta(item.eta_s)),
          el("td", {}, button),
        ),
      );
      const seen = state.units.get(unit.id);
      if (seen) markUnitInPanel(entry, seen);
    });
    panel.list.append(el("table", { class: "rec-table" }, el("thead", {}, head), body));
  }

  function markUnitInPanel(entry, unit) {
    const button = entry.panel && entry.panel.buttons.get(unit.id);
    if (!button || button.dataset.busy) return;
    const available = unit.status === "available";
    button.disabled = !available;
    button.title = available ? "" : `${label("unit_status", unit.status)}`;
  }

  async function assign(entry, unit, button) {
    const panel = entry.panel;
    if (!panel) return;
    setPanelError(panel, null);
    button.disabled = true;
    button.dataset.busy = "1";
    panel.status.textContent = `Assigning ${unit.call_sign}… 派车中`;
    let result;
    try {
      result = await requestJson(urlFor(cfg.assignUrl, entry.id), {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify({ ambulance: unit.id }),
      });
    } catch (err) {
      delete button.dataset.busy;
      button.disabled = false;
      panel.status.textContent = "";
      setPanelError(panel, `Network error, not assigned 网络错误，未派车: ${err.message}`);
      return;
    }
    delete button.dataset.busy;
    const { response, body } = result;
    if (response.ok) {
      upsertCase(body, { authoritative: false, quiet: true });
      closePanel(entry);
      layout();
      announce(`${unit.call_sign} dispatched to case #${entry.id}. 已派车。`);
      entry.cells.id.focus(); // the panel (and the focused button) is gone; keep focus on the case
      return;
    }
    panel.status.textContent = "";
    if (response.status === 409) {
      setPanelError(panel, `409 Conflict — not assigned 冲突，未派车: ${problemText(body, 409)}`);
      if (entry.panel === panel) loadRecommendations(entry); // the list has changed
      return;
    }
    button.disabled = false;
    setPanelError(panel, `${response.status} — not assigned 未派车: ${problemText(body, response.status)}`);
  }

  // ---------------------------------------------------------------------------------------------
  // Start

  window.addEventListener("online", reconnectNow);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") reconnectNow();
  });
  window.setInterval(tick, 1000);
  window.setInterval(heartbeat, PING_EVERY_MS);

  setConnState("connecting");
  layout();
  loadSnapshot()
    .catch((err) => showError(err.message)) // the socket's "ready" will try again
    .finally(connect);
})();
