// Pieces several pages share: run tables, status badges, banners, series conversion.

import { fill, h, href, table } from "./dom.js";
import { duration, preciseTime, RUN_STATES, shortId, time } from "./format.js";

/** "ok" / "error" as a coloured badge. */
export function statusBadge(status) {
  const value = String(status || "unset").toLowerCase();
  return h("span.badge", { class: `status-${value}` }, value);
}

/** How a run ended (succeeded, succeeded after retry, retried, dead-lettered, failed) as a badge. */
export function stateBadge(state, status) {
  const value = state || (String(status).toLowerCase() === "error" ? "failed" : "ok");
  const tone = value === "ok" ? "ok" : value === "succeeded_after_retry" ? "recovered" : value === "retried" ? "retried" : "error";
  return h("span.badge", { class: `status-${tone}`, dataset: { state: value } }, RUN_STATES[value] || value);
}

/** A message across the page: tone "error", "info" or "ok". */
export function banner(text, tone = "info") {
  return h("div.banner", { class: tone, role: tone === "error" ? "alert" : "status" }, text);
}

/** Where a run opens: its trace, with its own span selected. */
export function runHref(run) {
  return href(["runs", run.trace_id], { span: run.span_id });
}

/** A table of run rows as /api/runs returns them; each row opens the run's trace. */
export function runsTable(runs, { empty = "No runs match.", showActor = true } = {}) {
  const columns = [
    "Time",
    showActor ? "Actor" : null,
    "Queue",
    "Status",
    { label: "Duration", className: "num" },
    { label: "Attempt", className: "num" },
    "Message id",
    "Trace id",
  ].filter(Boolean);
  const rows = runs.map((run) => {
    const open = runHref(run);
    const row = h(
      "tr.clickable",
      { dataset: { traceId: run.trace_id, status: run.status, state: run.state || "" } },
      h("td.nowrap", { title: preciseTime(run.time) }, time(run.time)),
      showActor ? h("td", null, h("a", { href: href(["actors", run.actor]) }, run.actor)) : null,
      h("td", null, run.queue),
      h("td", null, stateBadge(run.state, run.status), run.error_type ? h("span.error-type", null, run.error_type) : null),
      h("td.num", null, duration(run.duration)),
      h(
        "td.num.nowrap",
        { title: run.requeued ? "Run again after its message was requeued from the dead-letter queue" : null },
        run.attempt ?? "—",
        run.requeued ? h("span.requeued", null, " requeued") : null,
      ),
      h("td.mono", { title: run.message_id || "" }, shortId(run.message_id, 13)),
      h("td.mono", null, h("a.run-link", { href: open, title: run.trace_id }, shortId(run.trace_id, 13))),
    );
    row.addEventListener("click", (event) => {
      if (event.target.closest("a")) return;
      location.href = open;
    });
    return row;
  });
  return table(columns, rows, { empty, className: "runs" });
}

/** Overview-shaped series ([{t, ...}]) as chart points for one field. */
export function points(series, field, scale = 1) {
  return series.map((p) => [p.t, p[field] === null || p[field] === undefined ? null : p[field] * scale]);
}

/** Group {t, queue, state, value} rows into one chart series per queue and state. */
export function depthSeries(items, { states = null, limit = 8, keepEmpty = false } = {}) {
  const groups = new Map();
  const queueOf = queueLabels(items);
  for (const item of items) {
    if (states && !states.includes(item.state)) continue;
    if (item.state === "oldest_age") continue;
    const key = `${queueOf(item)} · ${item.state}`;
    if (!groups.has(key)) groups.set(key, { label: key, state: item.state, points: [], peak: 0 });
    const group = groups.get(key);
    group.points.push([item.t, item.value]);
    group.peak = Math.max(group.peak, item.value ?? 0);
  }
  return [...groups.values()]
    .filter((g) => keepEmpty || g.peak > 0)
    .sort((a, b) => b.peak - a.peak)
    .slice(0, limit);
}

/**
 * How history rows ({queue, messaging_system}) name their queue: by name, with the library
 * ("shared (celery)") when the rows hold that name under two libraries.
 */
export function queueLabels(items) {
  const systems = new Map();
  for (const item of items) {
    if (!systems.has(item.queue)) systems.set(item.queue, new Set());
    if (item.messaging_system) systems.get(item.queue).add(item.messaging_system);
  }
  return (item) => (item.messaging_system && systems.get(item.queue)?.size > 1 ? `${item.queue} (${item.messaging_system})` : item.queue);
}

/** One chart series per queue of the oldest ready message's age ({t, queue, value} rows). */
export function ageSeries(items, { limit = 8 } = {}) {
  const groups = new Map();
  const queueOf = queueLabels(items);
  for (const item of items) {
    const label = queueOf(item);
    if (!groups.has(label)) groups.set(label, { label, points: [], peak: 0 });
    const group = groups.get(label);
    group.points.push([item.t, item.value]);
    group.peak = Math.max(group.peak, item.value ?? 0);
  }
  return [...groups.values()].sort((a, b) => b.peak - a.peak).slice(0, limit);
}

/** Colour of a queue state in depth charts. */
export const STATE_COLORS = { ready: "#3b7dd8", delayed: "#b8a22b", in_flight: "#2ca58d", dead: "#d64545" };

/**
 * A "Library" select for pages listing Dramatiq's and Celery's things together; hidden until
 * ``setChoices`` is given more than none. ``value`` is "" for every library.
 */
export function libraryFilter({ id, initial = "", onChange }) {
  let value = initial;
  const select = h("select", {
    id,
    name: "library",
    onchange: () => {
      value = select.value;
      onChange();
    },
  });
  const element = h("div.filters", { hidden: true }, h("label", null, "Library", select));
  return {
    element,
    get value() {
      return value;
    },
    setChoices(libraries) {
      element.hidden = !libraries.length;
      const current = [...select.options].slice(1).map((o) => o.value);
      if (current.join("\n") !== libraries.join("\n")) {
        fill(select, h("option", { value: "" }, "All libraries"), libraries.map((name) => h("option", { value: name }, name)));
      }
      // A library that is gone for a moment keeps its choice for when it is back.
      select.value = libraries.includes(value) ? value : "";
    },
  };
}
