/*
 * outbox.js — status presses that survive a tunnel.
 *
 * Every press is written to localStorage with its own Idempotency-Key *before* it is sent, then sent
 * in order, one at a time. A press that gets no answer (offline, server unreachable, 5xx) stays and
 * is sent again with the same key when the connection returns — the server applies a key once and
 * answers a repeat with the first answer, so "sent again" can never mean "done twice", even when the
 * first attempt did reach the server and only its answer was lost. A press the server refuses (4xx)
 * is dropped and reported: retrying it would be refused the same way. A reload keeps the queue.
 */

import { api, ApiError, idempotencyKey } from "/static/onekey/api.js";

const RETRY_EVERY_MS = 5000;

export class Outbox {
  constructor({ ambulanceId, onSent = () => {}, onRefused = () => {}, onChange = () => {} }) {
    this.storageKey = `onekey.crew.outbox.${ambulanceId}`;
    this.url = `/api/v1/ambulances/${ambulanceId}/status`;
    this.handlers = { onSent, onRefused, onChange };
    this.flushing = null;
    this.timer = null;
    window.addEventListener("online", () => this.flush());
  }

  /** The presses not yet confirmed, oldest first: [{key, body, queuedAt, attempts}]. */
  pending() {
    try {
      const stored = JSON.parse(window.localStorage.getItem(this.storageKey) || "[]");
      return Array.isArray(stored) ? stored : [];
    } catch (_) {
      return [];
    }
  }

  save(items) {
    window.localStorage.setItem(this.storageKey, JSON.stringify(items));
    this.handlers.onChange(items);
  }

  /** Queue a press and try to send it now. */
  push(body) {
    const items = this.pending();
    items.push({ key: idempotencyKey(), body, queuedAt: new Date().toISOString(), attempts: 0 });
    this.save(items);
    return this.flush();
  }

  /** Send what is queued, in order; at most one flush runs at a time. */
  flush() {
    if (this.flushing) return this.flushing;
    this.flushing = this.sendAll().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  async sendAll() {
    window.clearTimeout(this.timer);
    for (;;) {
      const [item] = this.pending();
      if (!item) return;
      let answer;
      try {
        answer = await api(this.url, { method: "POST", body: item.body, headers: { "Idempotency-Key": item.key } });
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        if (err.status === 0 || err.status >= 500 || err.status === 429) {
          // No verdict: keep it (same key) and try again later.
          this.bump(item.key);
          this.timer = window.setTimeout(() => this.flush(), RETRY_EVERY_MS);
          return;
        }
        if (err.status === 401 || err.status === 403) {
          // Signed out (or the session expired) in the tunnel: keep the press for after sign-in.
          this.handlers.onRefused(item, err, { kept: true });
          return;
        }
        this.remove(item.key);
        this.handlers.onRefused(item, err);
        continue;
      }
      this.remove(item.key);
      this.handlers.onSent(item, answer);
    }
  }

  bump(key) {
    this.save(this.pending().map((i) => (i.key === key ? { ...i, attempts: (i.attempts || 0) + 1 } : i)));
  }

  remove(key) {
    this.save(this.pending().filter((i) => i.key !== key));
  }
}
