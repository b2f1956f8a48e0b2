/*
 * patients.js — one card per incoming patient: the ETA counting down, complaint, unit and the
 * crew's phone, the health summary, and the acknowledge form (registration number).
 * A card is built once and updated in place, so an ETA update (every GPS fix) never wipes what the
 * nurse is typing into the registration field.
 */

import { asText, el, label, telLink } from "./dom.js";
import { paintEta } from "./countdown.js";
import { healthBlock } from "./health.js";
import { t, tf, tn, choice } from "/static/onekey/i18n.js";

/** The crew's phone when the feed has it, else the unit's; null when neither is on record. */
export function crewPhone(admission) {
  const unit = admission.ambulance || {};
  return admission.crew_phone || unit.crew_phone || unit.phone || null;
}

export class PatientCard {
  /** onAcknowledge(admission, registrationNo) -> Promise; throws ApiError to show next to the field. */
  constructor(admission, { labels, onAcknowledge }) {
    this.labels = labels;
    this.onAcknowledge = onAcknowledge;
    const id = admission.id;
    this.eta = el("div", { class: "pt-eta", "aria-label": t("ETA") }, el("span", { class: "eta-value" }), el("span", { class: "eta-caption" }));
    this.complaint = el("p", { class: "complaint" });
    this.badge = el("span", { class: "badge" });
    this.unitLine = el("p", { class: "unit-line" });
    this.alertLine = el("p", { class: "pt-alert", role: "alert", hidden: true });
    this.alert = null;
    this.healthSlot = el("div", { class: "health-slot" });
    this.ackSlot = el("div", { class: "ack-slot" });
    this.node = el(
      "article",
      { class: "patient", "data-admission-id": id, "aria-labelledby": `patient-${id}-title` },
      el(
        "div",
        { class: "patient-head" },
        this.eta,
        el("div", { class: "patient-what" }, el("h3", { id: `patient-${id}-title`, class: "sr-only" }, tf("Patient %(id)s", { id })), this.complaint, this.unitLine),
        this.badge,
      ),
      this.alertLine,
      this.healthSlot,
      this.ackSlot,
    );
    this.form = null;
    this.update(admission);
  }

  update(admission) {
    const previous = this.admission;
    this.admission = previous && !("health_summary" in admission) ? { ...admission, health_summary: previous.health_summary } : admission;
    const a = this.admission;
    this.node.dataset.status = a.status;
    this.complaint.replaceChildren(label(this.labels.complaint[a.complaint], asText(a.complaint)));
    if (!a.for_self) this.complaint.append(" ", el("span", { class: "tag" }, t("called by another")));
    this.badge.className = `badge badge-${a.status}`;
    this.badge.replaceChildren(label(this.labels.admission_status[a.status], asText(a.status)));

    const unit = a.ambulance || {};
    const phone = crewPhone(a);
    this.unitLine.replaceChildren(
      el("span", { class: "muted" }, t("Unit")),
      " ",
      el("strong", { class: "call-sign" }, asText(unit.call_sign) || "—"),
      " · ",
      phone ? telLink(phone, { class: "tel crew-phone" }) : el("span", { class: "muted no-phone" }, t("no phone on record")),
    );
    if (!previous || previous.health_summary !== a.health_summary) this.healthSlot.replaceChildren(healthBlock(a.health_summary));
    this.renderAck();
    if (this.alert && a.status !== "incoming") this.setAlert(null);
    this.tick();
  }

  /** The open admission_unacknowledged alert about this patient (null when none). */
  setAlert(alert) {
    this.alert = alert || null;
    const on = Boolean(alert) && this.admission.status === "incoming";
    this.node.classList.toggle("is-overdue", on);
    this.node.dataset.alert = on ? "raised" : "";
    this.node.dataset.repeats = on ? String(alert.repeats) : "";
    this.alertLine.hidden = !on;
    if (!on) {
      this.alertLine.replaceChildren();
      return;
    }
    const asked = (Number(alert.repeats) || 0) + 1;
    this.alertLine.replaceChildren(
      el("strong", {}, t("Not acknowledged")),
      " · ",
      el("span", { class: "alert-repeats" }, tn("asked %(n)s time", "asked %(n)s times", asked, { n: asked })),
      " · ",
      t("Enter the registration number below."),
    );
  }

  /** Flash the card again (a new alert, or the alert repeated). */
  flash() {
    this.node.classList.remove("flash-overdue");
    void this.node.offsetWidth; // restart the animation
    this.node.classList.add("flash-overdue");
  }

  tick(nowMs) {
    paintEta(this.eta, this.admission, nowMs);
  }

  renderAck() {
    const a = this.admission;
    if (a.status === "incoming") {
      if (!this.form) this.ackSlot.replaceChildren((this.form = this.buildForm()));
      return;
    }
    this.form = null;
    if (a.registration_no) {
      this.ackSlot.replaceChildren(
        el("p", { class: "registered" }, t("Registered"), ": ", el("strong", { class: "reg-no" }, asText(a.registration_no))),
      );
    } else {
      this.ackSlot.replaceChildren();
    }
  }

  buildForm() {
    const id = this.admission.id;
    const inputId = `reg-${id}`;
    const errorId = `reg-${id}-error`;
    const input = el("input", {
      id: inputId,
      name: "registration_no",
      type: "text",
      maxlength: "64",
      autocomplete: "off",
      spellcheck: "false",
      "aria-describedby": errorId,
    });
    const button = el("button", { type: "submit", class: "button primary" }, t("Acknowledge"));
    const error = el("p", { id: errorId, class: "field-error", role: "alert", hidden: true });
    const form = el(
      "form",
      { class: "ack-form", novalidate: true },
      el("label", { for: inputId }, t("Registration no.")),
      input,
      button,
      error,
    );
    const show = (message) => {
      error.textContent = message || "";
      error.hidden = !message;
      if (message) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    };
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const value = input.value.trim();
      if (!value) {
        show(t("Enter the registration number."));
        input.focus();
        return;
      }
      show("");
      button.disabled = true;
      try {
        const answer = await this.onAcknowledge(this.admission, value);
        if (answer) this.update(answer);
      } catch (err) {
        const messages = (err && err.fields && err.fields.registration_no) || [];
        show(messages.length ? messages.join(" ") : asText(err && err.detail) || t("Not saved."));
        input.focus();
      } finally {
        button.disabled = false;
      }
    });
    return form;
  }
}
