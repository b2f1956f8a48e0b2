/*
 * edstatus.js — the emergency department's status, set from the board: open / diverting (分流) and
 * the free beds. POST /api/v1/hospitals/{id}/status; dispatch and crews route by it live
 * (`hospital.status_changed`), and another screen of the same ED updates from the same event.
 */

import { api } from "/static/onekey/api.js";
import { fieldError } from "./dom.js";

export class EdPanel {
  constructor(root, { hospitalId }) {
    this.root = root;
    this.url = `/api/v1/hospitals/${hospitalId}/status`;
    this.toggles = [...root.querySelectorAll(".ed-toggle")];
    this.form = root.querySelector("#beds-form");
    this.beds = root.querySelector("#beds");
    this.saved = root.querySelector("#beds-saved");
    this.hospital = null;
    this.bedsDirty = false; // the nurse is changing the number: an event must not overwrite it

    for (const toggle of this.toggles) toggle.addEventListener("click", () => this.setStatus(toggle.dataset.value));
    for (const step of root.querySelectorAll(".beds-step")) {
      step.addEventListener("click", () => {
        const now = Number.parseInt(this.beds.value, 10);
        this.beds.value = String(Math.max(0, (Number.isFinite(now) ? now : 0) + Number(step.dataset.step)));
        this.bedsDirty = true;
        this.saved.textContent = "";
      });
    }
    this.beds.addEventListener("input", () => {
      this.bedsDirty = true;
      this.saved.textContent = "";
    });
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.saveBeds();
    });
  }

  /** The hospital as the server has it now (snapshot or event). */
  show(hospital) {
    if (!hospital) return;
    this.hospital = hospital;
    this.root.dataset.edStatus = hospital.ed_status;
    for (const toggle of this.toggles) toggle.setAttribute("aria-pressed", String(toggle.dataset.value === hospital.ed_status));
    if (!this.bedsDirty) this.beds.value = String(hospital.ed_free_beds);
  }

  async setStatus(value) {
    if (this.hospital && this.hospital.ed_status === value) return;
    fieldError("ed-status-error", "");
    for (const toggle of this.toggles) toggle.disabled = true;
    try {
      this.show(await api(this.url, { method: "POST", body: { ed_status: value } }));
    } catch (err) {
      const messages = (err.fields && err.fields.ed_status) || [];
      fieldError("ed-status-error", messages.length ? messages.join(" ") : err.detail);
    } finally {
      for (const toggle of this.toggles) toggle.disabled = false;
    }
  }

  async saveBeds() {
    const raw = this.beds.value.trim();
    if (!/^\d+$/.test(raw)) {
      fieldError("beds-error", "A whole number of beds, 0 or more. 请输入 0 或以上的整数。", this.beds);
      this.beds.focus();
      return;
    }
    fieldError("beds-error", "", this.beds);
    try {
      const hospital = await api(this.url, { method: "POST", body: { ed_free_beds: Number(raw) } });
      this.bedsDirty = false;
      this.show(hospital);
      this.saved.textContent = "Saved 已保存";
    } catch (err) {
      const messages = (err.fields && err.fields.ed_free_beds) || [];
      fieldError("beds-error", messages.length ? messages.join(" ") : err.detail, this.beds);
    }
  }
}
