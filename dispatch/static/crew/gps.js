/*
 * gps.js — the tablet's position, reported while the unit is on duty.
 *
 * watchPosition delivers fixes as often as the device likes; we report at most one every `everyS`
 * seconds (dispatch is sized for 171 units every 5 s), always the newest. A failed report is not
 * queued: an old position is worth nothing once a newer one exists, so the next fix simply goes.
 * When the browser refuses (no permission, no GPS), the crew types a position or taps the map.
 */

import { api, serverNow } from "/static/onekey/api.js";

export class GpsReporter {
  constructor({ ambulanceId, everyS = 5, onFix = () => {}, onState = () => {} }) {
    this.url = `/api/v1/ambulances/${ambulanceId}/location`;
    this.everyMs = everyS * 1000;
    this.handlers = { onFix, onState };
    this.watchId = null;
    this.onDuty = false;
    this.latest = null; // {lat, lon, accuracy_m, source, at (ms)}
    this.lastSentAt = 0;
    this.lastReported = null; // the newest fix the server accepted
    this.sending = false;
    this.timer = null;
    this.state = "off"; // off | waiting | gps | manual | denied | unavailable
    this.refused = false;
  }

  setState(state, detail = "") {
    this.state = state;
    this.handlers.onState(state, detail);
  }

  /** Report only while on duty (not out of service). */
  setOnDuty(onDuty) {
    this.onDuty = onDuty;
    if (onDuty) this.start();
    else this.stopWatching();
  }

  start() {
    // A refusal stands for this page: asking again would only repeat it (and undo a manual fix).
    if (this.watchId !== null || this.refused) return;
    if (!("geolocation" in navigator)) {
      this.setState("unavailable");
      return;
    }
    if (this.state === "off") this.setState("waiting");
    this.watchId = navigator.geolocation.watchPosition(
      (position) => this.onPosition(position),
      (error) => this.onError(error),
      { enableHighAccuracy: true, maximumAge: 5000, timeout: 30000 },
    );
  }

  stopWatching() {
    if (this.watchId !== null) navigator.geolocation.clearWatch(this.watchId);
    this.watchId = null;
    window.clearTimeout(this.timer);
    if (this.state !== "off") this.setState("off");
  }

  onPosition(position) {
    const { latitude, longitude, accuracy } = position.coords;
    this.latest = { lat: latitude, lon: longitude, accuracy_m: accuracy, source: "gps", at: position.timestamp || Date.now() };
    this.setState("gps");
    this.handlers.onFix(this.latest);
    this.maybeSend();
  }

  onError(error) {
    // PERMISSION_DENIED is final for this page; a timeout or a lost signal (tunnel) is not.
    if (error.code === error.PERMISSION_DENIED) {
      this.refused = true;
      this.stopWatchingOnly();
      if (this.state !== "manual") this.setState("denied", error.message);
    } else if (this.state !== "manual") {
      this.setState("unavailable", error.message);
    }
  }

  stopWatchingOnly() {
    if (this.watchId !== null) navigator.geolocation.clearWatch(this.watchId);
    this.watchId = null;
  }

  /** A position the crew gave by hand: reported at once. */
  manual(lat, lon) {
    this.latest = { lat, lon, accuracy_m: null, source: "manual", at: Date.now() };
    this.setState("manual");
    this.handlers.onFix(this.latest);
    this.lastSentAt = 0;
    return this.maybeSend();
  }

  async maybeSend() {
    if (!this.onDuty || !this.latest || this.sending) return;
    const wait = this.lastSentAt + this.everyMs - Date.now();
    if (wait > 0) {
      window.clearTimeout(this.timer);
      this.timer = window.setTimeout(() => this.maybeSend(), wait);
      return;
    }
    const fix = this.latest;
    if (this.lastReported === fix) return;
    this.sending = true;
    this.lastSentAt = Date.now();
    try {
      // The tablet's clock may be off; the server refuses fixes from the future.
      const body = { lat: fix.lat, lon: fix.lon, source: fix.source, fix_time: new Date(fix.at + serverNow() - Date.now()).toISOString() };
      if (fix.accuracy_m != null) body.accuracy_m = Math.min(100000, fix.accuracy_m);
      await api(this.url, { method: "POST", body });
      this.lastReported = fix;
    } catch (err) {
      console.warn("position not reported; the next fix will be", err && err.detail);
    } finally {
      this.sending = false;
    }
    if (this.latest !== fix) this.maybeSend();
  }
}
