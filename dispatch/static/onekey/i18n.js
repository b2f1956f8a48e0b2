/*
 * i18n.js — one language per page (en or zh-Hans, chosen by Django's LocaleMiddleware).
 *
 * Convention for every new string (msgids are English, written as plain "double-quoted" literals):
 *   Templates: {% load i18n %} then {% translate "Assign" %}, or {% blocktranslate with n=x %}…{{ n }}…{% endblocktranslate %}.
 *   Scripts:   import { t, tf, tn, choice } from "/static/onekey/i18n.js";
 *              t("Assign")  ·  tf("Case #%(id)s", { id })  ·  tn("%(n)s unit", "%(n)s units", n, { n })
 *              choice("Available 待命") -> the page's half of a model's bilingual choice label.
 *   Never concatenate sentence halves; use named %(placeholders)s. No Chinese beside English on a page.
 *   Then add the Chinese to <app>/locale/zh_Hans/LC_MESSAGES/django.po (templates) or djangojs.po
 *   (scripts), recompile with `.venv/bin/python manage.py compilemessages -l zh_Hans -i .venv`, and
 *   commit the .po and the .mo. tests/test_i18n.py names any string left without Chinese.
 * The catalog (window.gettext …) is Django's JavaScriptCatalog, which base.html loads as a classic
 * script before any module; without it every function below falls back to the English msgid.
 */

const catalog = typeof window !== "undefined" ? window : {};

/** The page's language as Django chose it ("en" or "zh-hans"). */
export const LANG = (typeof document !== "undefined" && document.documentElement.lang || "en").toLowerCase();
export const IS_ZH = LANG.startsWith("zh");

/** A server field in the page's language: ``field`` is Chinese, ``field_en`` its English (when sent). */
export function localized(obj, field) {
  if (!obj) return null;
  return (IS_ZH ? obj[field] : obj[`${field}_en`] || obj[field]) ?? null;
}

export function t(msgid) {
  return typeof catalog.gettext === "function" ? catalog.gettext(msgid) : msgid;
}

export function interpolate(text, params) {
  return String(text).replace(/%\((\w+)\)s/g, (whole, name) => (params && name in params ? String(params[name]) : whole));
}

/** A translated message with named %(name)s placeholders filled in. */
export function tf(msgid, params) {
  return interpolate(t(msgid), params);
}

export function tn(singular, plural, count, params = {}) {
  const text = typeof catalog.ngettext === "function" ? catalog.ngettext(singular, plural, count) : count === 1 ? singular : plural;
  return interpolate(text, params);
}

const CJK = /[\u3000-\u9fff\uff00-\uffef]/;

/**
 * The models' choice labels reach the page as "English 中文" (the API's wire contract keeps them so);
 * a page shows only the half in its own language.
 */
export function choice(text) {
  const value = text == null ? "" : String(text);
  const at = value.search(CJK);
  if (at <= 0) return value;
  return IS_ZH ? value.slice(at).trim() : value.slice(0, at).trim();
}
