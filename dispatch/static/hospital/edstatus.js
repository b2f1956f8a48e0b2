/*
 * edstatus.js — the emergency department's status, set from the board: open / diverting (分流),
 * the free beds (shown beside the patients already incoming, who count against them), and the
 * capabilities out of service now (e.g. the cath lab: PCI) without diverting everything.
 * POST /api/v1/hospitals/{id}/status; dispatch and crews route by it live
 * (`hospital.status_changed`), and another screen of the same ED updates from the same event.
 */

import { api } from "/static/onekey/api.js";
import { el, fieldError } from "./dom.js";
import { t, tf, tn, choice } from "/static/onekey/i18n.js";

// What a hospital can declare out of service (models.Capability; general_ed down is diverting).
const CAPABILITIES = {
  chest_pain: t("Chest pain centre"),
  stroke: t("Stroke centre"),
  trauma: t("Trauma centre"),
  critical_maternal: t("Critical maternal care"),
  critical_neonatal: t("Critical neonatal care"),
  pci: t("PCI (cath lab)"),
  paediatrics: t("Paediatrics"),
  burns: t("Burns"),
};

export class EdPanel {
  constructor(root, { hospitalId }) {
    this.root = root;
    this.url = `/api/v1/hospitals/${hospitalId}/status`;
    this.toggles = [...root.querySelectorAll(".ed-toggle")];
    this.form = root.querySelector("#beds-form");
    this.beds = root.querySelector("#beds");
    this.saved = root.querySelector("#beds-saved");
    this.incoming = root.querySelector("#beds-incoming");
    this.capsForm = root.querySelector("#caps-form");
    this.capsList = root.querySelector("#caps-list");
    this.capsSaved = root.querySelector("#caps-saved");
    this.hospital = null;
    this.bedsDirty = false; // the nurse is changing the number: an event must not overwrite it
    this.capsDirty = false; // the same for the checklist
    this.capsShown = ""; // which capabilities the checklist was built for

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
    this.capsList.addEventListener("change", () => {
      this.capsDirty = true;
      this.capsSaved.textContent = "";
    });
    this.capsForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.saveCapabilities();
    });
  }

  /** The hospital as the server has it now (snapshot or event). */
  show(hospital) {
    if (!hospital) return;
    this.hospital = hospital;
    this.root.dataset.edStatus = hospital.ed_status;
    for (const toggle of this.toggles) toggle.setAttribute("aria-pressed", String(toggle.dataset.value === hospital.ed_status));
    if (!this.bedsDirty) this.beds.value = String(hospital.ed_free_beds);
    this.showIncoming(hospital);
    this.showCapabilities(hospital);
  }

  showIncoming(hospital) {
    const incoming = Number(hospital.incoming) || 0;
    const left = Math.max(0, (Number(hospital.ed_free_beds) || 0) - incoming);
    this.incoming.dataset.incoming = String(incoming);
    this.incoming.dataset.effective = String(left);
    this.incoming.classList.toggle("is-full", incoming > 0 && left === 0);
    this.incoming.textContent = incoming
      ? `${tn("%(n)s patient incoming", "%(n)s patients incoming", incoming, { n: incoming })} · ${tf("%(n)s left for dispatch", { n: left })}`
      : t("No patient incoming");
  }

  showCapabilities(hospital) {
    const own = (hospital.capabilities || []).filter((c) => c in CAPABILITIES);
    const down = new Set(hospital.unavailable_capabilities || []);
    this.root.dataset.unavailable = [...down].sort().join(" ");
    this.capsForm.hidden = own.length === 0;
    const key = own.join(",");
    if (key !== this.capsShown) {
      this.capsShown = key;
      this.capsDirty = false;
      this.capsList.replaceChildren(
        ...own.map((cap) =>
          el(
            "label",
            { class: "cap" },
            el("input", { type: "checkbox", name: "unavailable", value: cap, "data-capability": cap }),
            " ",
            CAPABILITIES[cap],
          ),
        ),
      );
    }
    if (this.capsDirty) return;
    for (const box of this.capsList.querySelectorAll("input")) {
      box.checked = down.has(box.value);
      box.closest(".cap").classList.toggle("is-down", box.checked);
    }
  }

  async saveCapabilities() {
    const chosen = [...this.capsList.querySelectorAll("input:checked")].map((box) => box.value);
    fieldError("caps-error", "");
    try {
      const hospital = await api(this.url, { method: "POST", body: { unavailable_capabilities: chosen } });
      this.capsDirty = false;
      this.show(hospital);
      this.capsSaved.textContent = t("Saved");
    } catch (err) {
      const messages = (err.fields && err.fields.unavailable_capabilities) || [];
      fieldError("caps-error", messages.length ? messages.join(" ") : err.detail);
    }
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
      fieldError("beds-error", t("A whole number of beds, 0 or more."), this.beds);
      this.beds.focus();
      return;
    }
    fieldError("beds-error", "", this.beds);
    try {
      const hospital = await api(this.url, { method: "POST", body: { ed_free_beds: Number(raw) } });
      this.bedsDirty = false;
      this.show(hospital);
      this.saved.textContent = t("Saved");
    } catch (err) {
      const messages = (err.fields && err.fields.ed_free_beds) || [];
      fieldError("beds-error", messages.length ? messages.join(" ") : err.detail, this.beds);
    }
  }
}
