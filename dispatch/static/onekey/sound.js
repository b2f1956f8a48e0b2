/*
 * sound.js — alert tones made with Web Audio (no files to serve, nothing to load offline).
 *
 *   import { playAlert, setMuted, isMuted, unlockAudio } from "/static/onekey/sound.js";
 *   playAlert("emergency");   // "emergency" | "assignment" | "incoming" | "overdue" | "info"
 *
 * Browsers only let a page make sound after a user gesture; the first click or key on the page
 * unlocks audio by itself (unlockAudio() does it explicitly). The mute choice is kept in
 * localStorage, so a console reloaded mid-shift stays as the dispatcher left it.
 */

const MUTE_KEY = "onekey.sound.muted";

// [frequency Hz, duration s, gap s] per beep.
const PATTERNS = {
  emergency: [[880, 0.18, 0.07], [660, 0.18, 0.07], [880, 0.18, 0.07], [660, 0.18, 0]],
  overdue: [[988, 0.12, 0.06], [988, 0.12, 0.06], [988, 0.12, 0]],
  assignment: [[660, 0.15, 0.05], [880, 0.15, 0.05], [1175, 0.25, 0]],
  incoming: [[523, 0.2, 0.06], [784, 0.3, 0]],
  info: [[740, 0.12, 0]],
};

let context = null;
let played = 0; // how many alerts were asked to play (tests read it; a muted alert does not count)
let lastKind = null;

function audioContext() {
  if (context) return context;
  const Ctor = window.AudioContext || window.webkitAudioContext;
  if (!Ctor) return null;
  try {
    context = new Ctor();
  } catch (_) {
    context = null;
  }
  return context;
}

export function isMuted() {
  try {
    return window.localStorage.getItem(MUTE_KEY) === "1";
  } catch (_) {
    return false; // storage refused (private mode): sound stays on
  }
}

export function setMuted(muted) {
  try {
    window.localStorage.setItem(MUTE_KEY, muted ? "1" : "0");
  } catch (_) { /* not kept across reloads then */ }
  document.dispatchEvent(new CustomEvent("onekey:mute", { detail: { muted: Boolean(muted) } }));
}

/** Resume the audio context inside a user gesture (browsers' autoplay rule). */
export function unlockAudio() {
  const ctx = audioContext();
  if (ctx && ctx.state === "suspended") ctx.resume().catch(() => {});
}

/** Play the tone for `kind`. Returns true when a tone was scheduled (not muted, audio available). */
export function playAlert(kind = "info") {
  if (isMuted()) return false;
  played += 1;
  lastKind = kind;
  document.dispatchEvent(new CustomEvent("onekey:alert", { detail: { kind } }));
  const ctx = audioContext();
  if (!ctx) return false;
  if (ctx.state === "suspended") ctx.resume().catch(() => {});
  let t = ctx.currentTime + 0.02;
  for (const [freq, duration, gap] of PATTERNS[kind] || PATTERNS.info) {
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.type = "square";
    osc.frequency.value = freq;
    // A short ramp in and out: no clicks, and quiet enough not to startle.
    gain.gain.setValueAtTime(0, t);
    gain.gain.linearRampToValueAtTime(0.18, t + 0.01);
    gain.gain.setValueAtTime(0.18, t + duration - 0.02);
    gain.gain.linearRampToValueAtTime(0, t + duration);
    osc.connect(gain).connect(ctx.destination);
    osc.start(t);
    osc.stop(t + duration + 0.01);
    t += duration + gap;
  }
  return true;
}

/** For tests and devtools: how many alerts played, and the last kind. */
export function alertStats() {
  return { played, lastKind };
}

for (const type of ["pointerdown", "keydown"]) {
  window.addEventListener(type, unlockAudio, { once: true, capture: true });
}
