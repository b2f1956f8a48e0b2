/*
 * clock.js — the board's "now", on the server's clock.
 *
 * ETAs are instants of the server (`eta_at`); a ward PC whose clock is off would count them wrong
 * (minutes off, or "due" for ever). The page carries the server's time when it was rendered and
 * every arrivals answer carries `now`; the board keeps the difference (when over 2 s: a smaller
 * one is request latency, not a wrong clock) and counts with it.
 */

let offsetMs = 0;

/** A server instant (ISO) seen between localSentMs and localReceivedMs (the PC's Date.now()). */
export function noteServerTime(iso, localSentMs, localReceivedMs = localSentMs) {
  const server = Date.parse(iso || "");
  if (!Number.isFinite(server)) return;
  const offset = server - (localSentMs + localReceivedMs) / 2;
  offsetMs = Math.abs(offset) > 2000 ? offset : 0;
}

/** Milliseconds since the epoch, on the server's clock. */
export function boardNow() {
  return Date.now() + offsetMs;
}
