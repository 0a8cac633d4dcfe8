// Queues: current counts, depth history per queue, and the dead-letter browser.

import { get } from "../api.js";
import { lineChart } from "../charts.js";
import { deadLetterBrowser } from "../dead-letters.js";
import { cell, fill, h, panel, table } from "../dom.js";
import { count, duration, windowSeconds } from "../format.js";
import { depthSeries, libraryFilter, STATE_COLORS } from "../widgets.js";

const STATES = ["ready", "delayed", "in_flight", "dead"];

/** Share of the visibility timeout from which a task is about to be delivered again (as /api/health). */
const REDELIVERY_WARNING = 0.9;
/** kombu clamps a task's priority to 0..9; each step holds the priorities up to the next step. */
const MAX_PRIORITY = 9;

const DELAYED_TITLE =
  "Waiting for their time. Dramatiq: in the delay queue. Celery: countdown/eta tasks, which a worker holds unacknowledged until they are due.";
const IN_FLIGHT_TITLE = "Taken by a worker and not acknowledged yet. Celery: reserved (prefetched) or executing.";
const UNACKED_TITLE =
  "Since a worker took the queue's oldest unacknowledged task, of the visibility timeout after which Redis delivers it again to any worker.";

/** The task library of a queue, "?" when the API does not say. */
function libraryOf(queue) {
  return queue.messaging_system || "?";
}

/** Whether a queue has Celery-on-Redis parts: priority steps, unacknowledged tasks. */
function hasCeleryDetail(queue) {
  return Boolean(queue.priorities) || (queue.visibility_timeout !== null && queue.visibility_timeout !== undefined);
}

/**
 * How close the oldest unacknowledged task is to being delivered again:
 * "due" past the visibility timeout, "soon" past REDELIVERY_WARNING of it, "" otherwise.
 */
function redelivery(queue) {
  const age = queue.oldest_unacked_age;
  const timeout = queue.visibility_timeout;
  if (age === null || age === undefined || !timeout) return "";
  if (age >= timeout) return "due";
  return age >= REDELIVERY_WARNING * timeout ? "soon" : "";
}

function oldestUnackedCell(queue) {
  const age = queue.oldest_unacked_age;
  const timeout = queue.visibility_timeout;
  if (age === null || age === undefined) {
    return h("td.num.oldest-unacked", { title: timeout ? `Visibility timeout ${duration(timeout)}` : null }, "—");
  }
  const state = redelivery(queue);
  return h(
    "td.num.oldest-unacked",
    { class: state ? "warn" : null, dataset: { redelivery: state || "no" } },
    h("span.unacked-age", null, duration(age)),
    timeout ? h("span.visibility-timeout", null, ` of ${duration(timeout)}`) : null,
    state === "due" ? h("div.redelivery", null, "⚠ past the visibility timeout: due to be delivered again") : null,
    state === "soon" ? h("div.redelivery", null, "⚠ near the visibility timeout: redelivery soon") : null,
  );
}

/** The priorities each step holds, for its title: with steps 0, 3, 6, 9, step 0 -> "priorities 0–2". */
function stepRanges(steps) {
  return steps.map((step, i) => {
    const last = i + 1 < steps.length ? steps[i + 1] - 1 : MAX_PRIORITY;
    return last > step ? `priorities ${step}–${last}` : `priority ${step}`;
  });
}

/** The line under a Celery-on-Redis queue: ready per priority step, unacknowledged by kind. */
function celeryDetailRow(queue, span) {
  const parts = [];
  if (queue.priorities) {
    const steps = Object.keys(queue.priorities)
      .map(Number)
      .sort((a, b) => a - b);
    const ranges = stepRanges(steps);
    parts.push(
      h(
        "div.priority-steps",
        null,
        h("span.detail-label", null, `Ready by priority step (Celery serves step ${steps[0]} first, lower steps before higher): `),
        steps.map((step, i) => [
          i ? " · " : null,
          h("span.step", { dataset: { step: String(step) }, title: ranges[i] }, `${step}: `, h("span.step-count", null, count(queue.priorities[String(step)]))),
        ]),
      ),
    );
  }
  if (queue.visibility_timeout !== null && queue.visibility_timeout !== undefined) {
    const known = queue.delayed !== null && queue.delayed !== undefined && queue.in_flight !== null && queue.in_flight !== undefined;
    parts.push(
      h(
        "div.unacked-split",
        null,
        h("span.detail-label", null, "Held unacknowledged by workers: "),
        h("span.unacked-total", null, known ? count(queue.delayed + queue.in_flight) : "—"),
        " = ",
        h("span.unacked-eta", null, count(queue.delayed)),
        " waiting for their countdown/eta (Delayed) + ",
        h("span.unacked-reserved", null, count(queue.in_flight)),
        " reserved or executing (In flight)",
      ),
    );
  }
  return h("tr.queue-detail", { dataset: { queue: queue.name } }, h("td", { colspan: span }, parts));
}

export default {
  title: () => "Queues",
  mount(root, context) {
    let timeWindow = context.window;
    let queues = [];
    const counts = h("div", { id: "queue-counts" });
    const library = libraryFilter({ id: "queue-library", initial: context.query.get("library") || "", onChange: () => renderCounts() });
    const historyPanel = h("div.grid-2", { id: "depth-history" });
    const browser = deadLetterBrowser({ queue: context.query.get("dlq") || "", onAction: loadQueues });
    fill(
      root,
      h("h1", null, "Queues & dead letters"),
      panel("Queues now", library.element, counts),
      h("h2.section", null, "Depth history"),
      historyPanel,
      browser.element,
    );

    async function loadQueues() {
      const data = await get("/api/queues");
      queues = data.queues || [];
      renderCounts();
      browser.setQueues(queues);
    }

    function renderCounts() {
      const libraries = [...new Set(queues.map(libraryOf))].sort();
      const mixed = libraries.length > 1;
      library.setChoices(mixed ? libraries : []);
      const shown = mixed && library.value ? queues.filter((q) => libraryOf(q) === library.value) : queues;
      // Celery on Redis only: how long its oldest unacknowledged task has been held.
      const unacked = queues.some((q) => q.visibility_timeout !== null && q.visibility_timeout !== undefined);
      const columns = [
        "Queue",
        mixed ? "Library" : null,
        { label: "Ready", className: "num" },
        { label: "Delayed", className: "num", title: DELAYED_TITLE },
        { label: "In flight", className: "num", title: IN_FLIGHT_TITLE },
        { label: "Dead", className: "num" },
        { label: "Oldest ready", className: "num" },
        unacked ? { label: "Oldest unacked", className: "num", title: UNACKED_TITLE } : null,
        { label: "Consumers", className: "num" },
        "",
      ].filter(Boolean);
      const rows = [];
      for (const q of shown) {
        const detail = hasCeleryDetail(q);
        const cells = [
          [q.name, "mono"],
          mixed ? [libraryOf(q), "library"] : null,
          [count(q.ready), "num"],
          [count(q.delayed), "num"],
          [count(q.in_flight), "num"],
          [count(q.dead), q.dead ? "num error" : "num"],
          [q.oldest_age ? duration(q.oldest_age) : "—", "num"],
          unacked ? oldestUnackedCell(q) : null,
          [count(q.consumers), "num"],
          q.dead ? h("a", { href: `?dlq=${encodeURIComponent(q.name)}#dlq` }, "Dead letters") : "",
        ].filter((c) => c !== null);
        rows.push(h("tr", { class: detail ? "has-detail" : null, dataset: { queue: q.name, library: libraryOf(q) } }, cells.map(cell)));
        if (detail) rows.push(celeryDetailRow(q, columns.length));
      }
      const empty = queues.length ? "No queue of this library." : "The broker has no queues yet.";
      fill(counts, table(columns, rows, { empty, className: "queue-counts" }));
    }


    function renderHistory(history) {
      const items = history.items || [];
      // One chart per queue and library: a name both libraries use is two queues.
      const keyOf = (name, system) => `${name}\u0000${system || ""}`;
      const ages = new Map();
      for (const item of history.oldest_age || []) {
        const key = keyOf(item.queue, item.messaging_system);
        if (!ages.has(key)) ages.set(key, []);
        ages.get(key).push([item.t, item.value]);
      }
      const gapAfter = Math.max(3 * (history.step || 60), 30);
      const byQueue = new Map();
      for (const item of items) {
        const key = keyOf(item.queue, item.messaging_system);
        if (!byQueue.has(key)) byQueue.set(key, []);
        byQueue.get(key).push(item);
      }
      const known = new Map();
      for (const q of queues) known.set(keyOf(q.name, q.messaging_system), [q.name, q.messaging_system || ""]);
      for (const item of [...items, ...(history.oldest_age || [])]) {
        known.set(keyOf(item.queue, item.messaging_system), [item.queue, item.messaging_system || ""]);
      }
      // A queue read before histories carried the library, or without one, joins its named twin.
      for (const [key, [name, system]] of [...known]) {
        if (!system && [...known.values()].some(([other, lib]) => other === name && lib)) known.delete(key);
      }
      const systemsOf = new Map();
      for (const [name, system] of known.values()) systemsOf.set(name, (systemsOf.get(name) || 0) + 1);
      const keys = [...known.keys()].sort();
      const titleOf = (key) => {
        const [name, system] = known.get(key);
        return systemsOf.get(name) > 1 && system ? `${name} (${system})` : name;
      };
      if (!keys.length) {
        fill(historyPanel, h("p.muted", null, "No queue snapshots yet."));
        return;
      }
      const now = Date.now() / 1000;
      // The charts start where the snapshots do when the monitor is younger than the window.
      const range = [Math.max(now - windowSeconds(timeWindow), history.since ?? -Infinity), now];
      const charts = keys.map((key) => {
        const [name, system] = known.get(key);
        const data = system ? { queue: name, library: system } : { queue: name };
        return [key, h("div", { dataset: data }), h("div.age", { dataset: data })];
      });
      fill(
        historyPanel,
        charts.map(([key, chart, age]) => h("section.panel", null, h("h3.queue-name.mono", null, titleOf(key)), chart, h("h4", null, "Oldest ready message"), age)),
      );
      // Charts measure their container, so they are drawn once it is in the page.
      for (const [key, chart, age] of charts) {
        const series = depthSeries(byQueue.get(key) || [], { limit: STATES.length })
          .map((s) => ({ ...s, label: s.state, color: STATE_COLORS[s.state] }))
          .sort((a, b) => STATES.indexOf(a.label) - STATES.indexOf(b.label));
        lineChart(chart, { series, range, format: count, integer: true, legend: true, height: 140, gapAfter, empty: "Empty over this window." });
        lineChart(age, {
          series: [{ label: "oldest ready", color: STATE_COLORS.ready, points: ages.get(key) || [] }].filter((s) => s.points.some(([, v]) => v > 0)),
          range,
          format: duration,
          height: 110,
          gapAfter,
          empty: "No message waited over this window.",
        });
      }
    }

    return {
      poll: true,
      async refresh() {
        await loadQueues();
        const [history] = await Promise.all([
          get("/api/queues/history", { window: timeWindow }).catch(() => ({ items: [], oldest_age: [] })),
          browser.refresh(),
        ]);
        renderHistory(history);
      },
      setWindow(value) {
        timeWindow = value;
      },
    };
  },
};
