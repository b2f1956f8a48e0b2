/*
 * dom.js — the DOM helpers every console shares (no framework, no innerHTML: every value from the
 * server is set as text, so none of it can become markup).
 */

/**
 * el("p", {class: "x", "data-id": 3, dataset: {a: 1}, text: "t", onclick: fn}, "text", child, [more], null)
 * Attributes: null, undefined and false are left out, true is an empty attribute; `class`, `dataset`,
 * `text` and `on…` handlers are set as what they are. Children: strings become text, arrays are
 * flattened, null, undefined and false are skipped.
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export const asText = (value) => (value == null ? "" : String(value));
export const asList = (value) => (Array.isArray(value) ? value : []);
