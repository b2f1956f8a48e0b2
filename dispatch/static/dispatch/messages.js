/*
 * messages.js — the text thread of a silent call (the caller cannot speak): the snapshot's
 * `messages`, then case.message events (whose data is the message, not the case), and the
 * dispatcher's replies (POST /api/v1/dispatch/cases/{id}/messages). Shown for a silent case, or for
 * any case that has texts.
 */

import { api } from "/static/onekey/api.js";
import { el, ENDED, formatLocalTime, parseTime, urlFor } from "./labels.js";
import { t, tf } from "/static/onekey/i18n.js";

/** Keep one copy of each message per case, oldest first; returns true when it was new. */
export function storeMessage(state, message) {
  if (!message || message.case == null) return false;
  let list = state.messages.get(message.case);
  if (!list) {
    list = [];
    state.messages.set(message.case, list);
  }
  if (list.some((m) => m.id === message.id)) return false;
  list.push(message);
  list.sort((a, b) => (parseTime(a.sent_at) || 0) - (parseTime(b.sent_at) || 0) || a.id - b.id);
  return true;
}

export function createThread(ctx, entry) {
  const id = entry.id;
  const log = el("ol", { class: "message-log", "aria-live": "polite", "aria-label": tf("Texts on case #%(id)s", { id }) });
  const input = el("textarea", { id: `message-${id}-text`, name: "text", rows: "2", maxlength: "500", class: "message-input" });
  const send = el("button", { type: "submit", class: "button small primary message-send" }, t("Send text"));
  const error = el("p", { class: "alert alert-error message-error", role: "alert", hidden: true });
  const form = el(
    "form",
    { class: "message-form", novalidate: true },
    el("label", { for: input.id, class: "small" }, t("Text the caller")),
    input,
    send,
    error,
  );
  const section = el(
    "section",
    { class: "message-thread", "aria-label": tf("Texts on case #%(id)s", { id }) },
    el("h3", { class: "panel-title" }, t("Texts")),
    log,
    form,
  );
  let shown = -1;

  function setError(message) {
    error.textContent = message || "";
    error.hidden = !message;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) {
      setError(t("Write a text first."));
      input.focus();
      return;
    }
    setError(null);
    send.disabled = true;
    try {
      const message = await api(urlFor(ctx.cfg.messagesUrl, id), { method: "POST", body: { text } });
      storeMessage(ctx.state, message);
      input.value = "";
      sync();
    } catch (err) {
      setError(`${err.status ? `${err.status} — ` : ""}${t("text not sent")}: ${err.detail || err.message}`);
    } finally {
      send.disabled = false;
    }
  });

  function sync() {
    const c = entry.data;
    const list = ctx.state.messages.get(id) || [];
    section.hidden = !c.silent && !list.length;
    form.hidden = ENDED.has(c.status);
    if (list.length === shown) return;
    shown = list.length;
    log.textContent = "";
    if (!list.length) log.append(el("li", { class: "muted small" }, t("No texts yet.")));
    for (const m of list) {
      const at = parseTime(m.sent_at);
      log.append(
        el(
          "li",
          { class: `message message-${m.sender}`, "data-message-id": m.id },
          el("span", { class: "small muted" }, `${at == null ? "" : formatLocalTime(at)} ${m.author || ""}`),
          el("br"),
          el("span", { class: "message-text" }, m.text),
        ),
      );
    }
    log.scrollTop = log.scrollHeight;
  }

  sync();
  return { section, sync };
}
