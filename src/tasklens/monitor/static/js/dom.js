// Building DOM nodes from data. Text always goes through text nodes, never through HTML
// parsing, so whatever a message, span or log line contains is shown as text.

/**
 * Create an element.
 * @param {string} tag - tag name, with optional ".class" suffixes ("td.num.error").
 * @param {object|null} attrs - attributes; "on*" functions become listeners, "dataset" an object.
 * @param {...(Node|string|number|null|undefined|false|Array)} children - nodes or text.
 */
export function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split(".");
  const svg = SVG_TAGS.has(name);
  const el = svg ? document.createElementNS(SVG_NS, name) : document.createElement(name);
  if (classes.length) el.setAttribute("class", classes.join(" "));
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key === "class") {
      el.setAttribute("class", [el.getAttribute("class"), value].filter(Boolean).join(" "));
    } else if (key === "value" && !svg) {
      el.value = value;
    } else if (key === "checked" || key === "disabled" || key === "selected") {
      el[key] = Boolean(value);
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

const SVG_NS = "http://www.w3.org/2000/svg";
const SVG_TAGS = new Set(["svg", "g", "path", "line", "rect", "text", "circle", "polyline", "title"]);

/** Replace everything inside `el` with `children`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/**
 * A dashboard URL: `href(["runs", traceId], {span: id})` -> "/runs/<id>?span=<id>".
 * Strings are taken as they are; arrays are encoded segment by segment.
 */
export function href(path, query) {
  const base = Array.isArray(path) ? "/" + path.map((p) => encodeURIComponent(String(p))).join("/") : path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== null && value !== undefined && value !== "") params.set(key, String(value));
  }
  const qs = params.toString();
  return qs ? `${base}?${qs}` : base;
}

/** A table with a header row; `rows` are arrays of cells (nodes, text, or [text, cellClass]). */
export function table(columns, rows, { empty = "Nothing yet.", className = "" } = {}) {
  const head = h("thead", null, h("tr", null, columns.map((c) => headerCell(c))));
  const body = h("tbody");
  if (!rows.length) {
    body.appendChild(h("tr.empty", null, h("td", { colspan: columns.length }, empty)));
  }
  for (const row of rows) body.appendChild(row instanceof Node ? row : h("tr", null, row.map(cell)));
  return h("table.data", { class: className || null }, head, body);
}

function headerCell(column) {
  if (typeof column === "string" || column instanceof Node) return h("th", null, column);
  return h("th", { class: column.className || null, title: column.title || null }, column.label);
}

/** A table cell: text, a node, or [content, className]. */
export function cell(value) {
  if (Array.isArray(value)) return h("td", { class: value[1] || null }, value[0]);
  if (value instanceof Node && value.nodeName === "TD") return value;
  return h("td", null, value);
}

/** A labelled figure, as shown in the overview's row of key numbers. */
export function stat(label, value, { hint = null, tone = null, to = null } = {}) {
  return h(
    to ? "a.stat.stat-link" : "div.stat",
    { class: tone ? `tone-${tone}` : null, dataset: { stat: label }, href: to },
    h("div.stat-label", null, label),
    h("div.stat-value", null, value),
    hint ? h("div.stat-hint", null, hint) : null,
  );
}

/** A titled panel around some content. */
export function panel(title, ...children) {
  return h("section.panel", null, title ? h("h2", null, title) : null, ...children);
}
