/*
 * stream.js — the one client of the live-stream protocol (DESIGN.md, "Wire contract").
 *
 *   import { StreamClient } from "/static/onekey/stream.js";
 *   const client = new StreamClient({
 *     path: "/ws/ambulances/3/",     // same origin
 *     token: null,                   // staff: null (session cookie); citizen: the API token
 *     snapshot: async () => snap,    // the REST snapshot; must carry last_seq
 *     onSnapshot: (snap) => {},      // first load and after every resync
 *     onEvent: (frame) => {},        // {seq, event, at, data}: in order, once each
 *     onState: (state) => {},        // "connecting" | "live" | "reconnecting" | "offline"
 *     onEnded: (code, frame) => {},  // optional: the server ended the stream for good (see below)
 *   });
 *   client.start();  client.stop();
 *   client.state, client.lastSeq   // for a status line, for tests
 *   client.reconnectNow()          // skip the backoff wait (a "retry now" button)
 *   Options for tests: pingEveryMs (20000), backoffMinMs (500), backoffMaxMs (10000).
 *
 * The protocol:
 *   1. The snapshot is the truth; it says which event it includes (last_seq).
 *   2. Open the socket; with a token, the first frame is {"type":"auth","token":…}. The server answers
 *      {"type":"ready","last_seq":N}; when N is past our position we ask {"type":"resume","since":…}.
 *   3. {"type":"event","seq":…} frames are applied strictly in order: seq <= ours is a duplicate
 *      (dropped); seq > ours + 1 is a gap (resume from ours; apply nothing out of order).
 *   4. {"type":"resync"} means the server can no longer replay what we missed: refetch the snapshot.
 *   5. A closed socket reconnects by itself (exponential backoff with jitter, at most ~10 s) and
 *      resumes. A ping every ~20 s; no answer by the next beat means the link is dead.
 *   6. Close codes that retrying cannot fix (ENDED_CODES) stop the client: onState("offline") and
 *      onEnded(code, errorFrame). 4010 (session ended) means "sign in again".
 */

/** Close codes after which reconnecting cannot help (dispatch/consumers.py). */
export const ENDED_CODES = new Set([
  4001, // auth_required: no session and no token
  4002, // auth_failed: the token is invalid
  4003, // forbidden: not this user's stream
  4004, // not_found: no such unit / hospital / case
  4010, // session_ended: signed out, token revoked or expired, user deactivated
]);

export const SIGN_IN_AGAIN_CODES = new Set([4001, 4002, 4010]);

const noop = () => {};

export class StreamClient {
  constructor({
    path,
    token = null,
    snapshot,
    onSnapshot = noop,
    onEvent = noop,
    onState = noop,
    onEnded = noop,
    pingEveryMs = 20000,
    backoffMinMs = 500,
    backoffMaxMs = 10000,
  }) {
    if (!path || typeof snapshot !== "function") throw new TypeError("StreamClient needs a path and a snapshot function");
    this.path = path;
    this.token = token;
    this.fetchSnapshot = snapshot;
    this.handlers = { onSnapshot, onEvent, onState, onEnded };
    this.pingEveryMs = pingEveryMs;
    this.backoffMinMs = backoffMinMs;
    this.backoffMaxMs = backoffMaxMs;

    this.lastSeq = 0; // the newest event applied (or included in the snapshot)
    this.highestSeen = 0; // the highest seq any event frame carried, applied or not
    this.haveSnapshot = false;
    this.snapshotPending = null; // the Promise of a snapshot being fetched; events wait for it
    this.socket = null;
    this.state = "idle";
    this.ready = false; // the current socket got its "ready"
    this.attempt = 0;
    this.reconnectTimer = null;
    this.heartbeatTimer = null;
    this.stopped = true;
    this.endedCode = null;
    this.lastFrameAt = 0;
    this.pingSentAt = 0;
    this.pingsSent = 0; // on this socket; the server answers each ping with a pong, in order
    this.pongsSeen = 0;
    this.resumeDoneAtPong = 0; // a resume is replaying until this many pongs have come back

    this.onOnline = () => this.reconnectNow();
    this.onVisible = () => {
      if (document.visibilityState === "visible") this.reconnectNow();
    };
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.endedCode = null;
    this.attempt = 0;
    this.setState("connecting");
    window.addEventListener("online", this.onOnline);
    document.addEventListener("visibilitychange", this.onVisible);
    this.heartbeatTimer = window.setInterval(() => this.heartbeat(), this.pingEveryMs);
    this.loadSnapshot().catch((err) => this.snapshotFailed(err));
    this.connect();
  }

  stop() {
    this.shutdown();
    this.setState("offline");
  }

  /** Skip the backoff wait (the browser came back online, the tab became visible, a button). */
  reconnectNow() {
    if (this.stopped || this.ready) return;
    this.attempt = 0;
    window.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    if (this.socket) return; // a connection attempt is under way
    this.connect();
  }

  /** Abandon the current socket (even a half-open one) and take the reconnect path. */
  dropSocket() {
    const ws = this.socket;
    this.socket = null;
    this.ready = false;
    if (ws) {
      try { ws.close(); } catch (_) { /* already closing */ }
    }
    this.scheduleReconnect();
  }

  // -- internals ---------------------------------------------------------------------------------

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.safely(this.handlers.onState, state);
  }

  safely(fn, ...args) {
    try {
      return fn(...args);
    } catch (err) {
      // A page's rendering bug must not stall the stream for every later event.
      console.error("stream handler failed", err);
      return undefined;
    }
  }

  shutdown() {
    this.stopped = true;
    this.ready = false;
    window.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    window.clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
    window.removeEventListener("online", this.onOnline);
    document.removeEventListener("visibilitychange", this.onVisible);
    const ws = this.socket;
    this.socket = null;
    if (ws) {
      try { ws.close(1000); } catch (_) { /* ignore */ }
    }
  }

  end(code, frame) {
    if (this.stopped) return;
    this.endedCode = code;
    this.shutdown();
    this.setState("offline");
    this.safely(this.handlers.onEnded, code, frame || null);
  }

  loadSnapshot() {
    if (this.snapshotPending) return this.snapshotPending;
    this.snapshotPending = (async () => {
      const snap = await this.fetchSnapshot();
      if (this.stopped) return;
      const seq = Number(snap && snap.last_seq);
      if (!Number.isInteger(seq) || seq < 0) throw new Error("The snapshot carries no last_seq");
      this.lastSeq = seq;
      this.highestSeen = Math.max(this.highestSeen, seq);
      this.haveSnapshot = true;
      this.safely(this.handlers.onSnapshot, snap);
    })().finally(() => {
      this.snapshotPending = null;
    });
    return this.snapshotPending;
  }

  snapshotFailed(err) {
    if (this.stopped) return;
    const status = err && err.status;
    if (status === 401 || status === 403 || status === 404) {
      this.end(status === 404 ? 4004 : status === 403 ? 4003 : 4010, { type: "error", code: err.code, detail: err.detail || err.message });
      return;
    }
    console.warn("snapshot failed; retrying", err);
    this.dropSocket(); // reconnecting fetches the snapshot again (haveSnapshot is still false)
  }

  connect() {
    window.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    if (this.stopped) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    let ws;
    try {
      ws = new WebSocket(`${scheme}//${location.host}${this.path}`);
    } catch (_) {
      this.scheduleReconnect();
      return;
    }
    this.socket = ws;
    this.ready = false;
    this.lastFrameAt = Date.now();
    this.pingSentAt = 0;
    this.pingsSent = 0;
    this.pongsSeen = 0;
    this.resumeDoneAtPong = 0;
    ws.addEventListener("open", () => {
      if (ws !== this.socket) return;
      if (this.token) ws.send(JSON.stringify({ type: "auth", token: this.token }));
    });
    ws.addEventListener("message", (message) => {
      if (ws !== this.socket) return;
      this.lastFrameAt = Date.now();
      let frame;
      try { frame = JSON.parse(message.data); } catch (_) { return; }
      this.onFrame(ws, frame).catch((err) => {
        if (ws !== this.socket) return;
        if (err && [401, 403, 404].includes(err.status)) return this.snapshotFailed(err);
        console.warn("stream frame failed; reconnecting", err);
        this.dropSocket(); // start over: reconnect, snapshot if needed, resume
      });
    });
    ws.addEventListener("close", (event) => {
      if (ws !== this.socket) return;
      this.socket = null;
      this.ready = false;
      if (ENDED_CODES.has(event.code)) {
        this.end(event.code, this.lastError);
        return;
      }
      this.scheduleReconnect();
    });
    // "error" is always followed by "close".
  }

  send(message) {
    const ws = this.socket;
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  ping() {
    if (!this.send({ type: "ping" })) return false;
    this.pingsSent += 1;
    this.pingSentAt = Date.now();
    return true;
  }

  /** Ask for everything after lastSeq. The server handles a socket's frames in order, so the pong to
   *  a ping sent right after the resume marks the end of its replay; until then a gap is most likely
   *  being filled already, and asking again would only multiply the replay. */
  sendResume(force) {
    if (!force && this.pongsSeen < this.resumeDoneAtPong) return; // looked at again at that pong
    if (this.send({ type: "resume", since: this.lastSeq }) && this.ping()) {
      this.resumeDoneAtPong = this.pingsSent;
    }
  }

  async onPong() {
    this.pongsSeen += 1;
    if (this.pongsSeen === this.resumeDoneAtPong && this.highestSeen > this.lastSeq && !this.snapshotPending) {
      // A finished replay covers every seq the server had sent before it, so a gap still open
      // means the two sides disagree about the stream: start over from a snapshot.
      await this.resync();
    }
  }

  async resync() {
    this.haveSnapshot = false;
    this.highestSeen = 0;
    await this.loadSnapshot();
    this.sendResume(true);
  }

  async onFrame(ws, frame) {
    switch (frame.type) {
      case "ready": {
        if (!this.haveSnapshot) await this.loadSnapshot();
        else if (this.snapshotPending) await this.snapshotPending;
        if (ws !== this.socket) return;
        this.ready = true;
        this.attempt = 0;
        this.lastError = null;
        const serverSeq = Number(frame.last_seq) || 0;
        // Anything between our position and the server's newest (or seen before the snapshot
        // landed) is missing here: have it replayed.
        if (serverSeq > this.lastSeq || this.highestSeen > this.lastSeq) this.sendResume(true);
        this.setState("live");
        break;
      }
      case "event":
        this.onEventFrame(frame);
        break;
      case "resync":
        await this.resync();
        break;
      case "pong":
        await this.onPong();
        break;
      case "error":
        this.lastError = frame; // the close that follows says whether to retry
        break;
      default:
        break; // a frame type newer than this page
    }
  }

  onEventFrame(frame) {
    const seq = Number(frame.seq);
    if (!Number.isInteger(seq)) return;
    this.highestSeen = Math.max(this.highestSeen, seq);
    if (this.snapshotPending || !this.haveSnapshot) return; // replayed after the snapshot
    if (seq <= this.lastSeq) return; // seen already
    if (seq !== this.lastSeq + 1) {
      this.sendResume(false); // a gap: ask for it; apply nothing out of order
      return;
    }
    this.lastSeq = seq;
    this.safely(this.handlers.onEvent, { seq, event: frame.event || "", at: frame.at || null, data: frame.data || {} });
  }

  scheduleReconnect() {
    if (this.stopped || this.reconnectTimer) return;
    this.setState("reconnecting");
    const base = Math.min(this.backoffMaxMs, this.backoffMinMs * 2 ** this.attempt);
    this.attempt += 1;
    // Full-ish jitter: consoles dropped together by one restart do not all come back at once.
    const delay = Math.min(this.backoffMaxMs, base * (0.5 + Math.random() * 0.5));
    this.reconnectTimer = window.setTimeout(() => {
      this.reconnectTimer = null;
      if (!this.haveSnapshot && !this.snapshotPending) this.loadSnapshot().catch((err) => this.snapshotFailed(err));
      this.connect();
    }, delay);
  }

  /** Ping now and then; a ping with no frame at all after it by the next beat means a dead link.
   *  (Judged per ping, not by wall time, so a background tab's throttled timers raise no alarm.) */
  heartbeat() {
    if (!this.socket || !this.ready) return;
    if (this.pingSentAt && this.pongsSeen < this.pingsSent && this.lastFrameAt < this.pingSentAt) {
      this.dropSocket();
      return;
    }
    this.ping();
  }
}

/**
 * Orders a page's own answers against its stream. A stream's events come in commit order and are
 * the truth; they are never compared with each other by a stamp (updated_at, status_at), which the
 * server reads before it takes the row's lock and so can disagree with that order. The answer to
 * the page's own request comes beside the stream: it is shown at once unless the stream already
 * gave something newer, and until an event at least as new as it arrives, an older event is one
 * that answer has passed. Keyed by entity (a case id, a unit id); a snapshot calls clear().
 */
export class AnswersAhead {
  constructor() {
    this.answeredAt = new Map(); // key -> ms of the last answer shown, until the stream catches up
  }

  /** May an answer stamped `stamp` be shown over what is shown now (stamped `shown`)? */
  answer(key, stamp, shown) {
    const got = Date.parse(stamp);
    if (Date.parse(shown) > got) return false;
    if (Number.isNaN(got)) this.answeredAt.delete(key);
    else this.answeredAt.set(key, got);
    return true;
  }

  /** May an event stamped `stamp` be shown? No only while it is older than our last answer. */
  event(key, stamp) {
    const answered = this.answeredAt.get(key);
    if (answered !== undefined && Date.parse(stamp) < answered) return false;
    this.answeredAt.delete(key);
    return true;
  }

  /** One entity gone from the page. */
  forget(key) {
    this.answeredAt.delete(key);
  }

  /** A snapshot: the page shows the server's state as it now is. */
  clear() {
    this.answeredAt.clear();
  }
}
