// Queues: current counts, depth history per queue, and the dead-letter browser.

import { get } from "../api.js";
import { lineChart } from "../charts.js";
import { deadLetterBrowser } from "../dead-letters.js";
import { fill, h, panel, table } from "../dom.js";
import { count, duration, windowSeconds } from "../format.js";
import { depthSeries, STATE_COLORS } from "../widgets.js";

const STATES = ["ready", "delayed", "in_flight", "dead"];

export default {
  title: () => "Queues",
  mount(root, context) {
    let timeWindow = context.window;
    let queues = [];
    const counts = h("div", { id: "queue-counts" });
    const historyPanel = h("div.grid-2", { id: "depth-history" });
    const browser = deadLetterBrowser({ queue: context.query.get("dlq") || "", onAction: loadQueues });
    fill(
      root,
      h("h1", null, "Queues & dead letters"),
      panel("Queues now", counts),
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
      const columns = ["Queue", ...["Ready", "Delayed", "In flight", "Dead", "Oldest ready", "Consumers"].map((label) => ({ label, className: "num" })), ""];
      const rows = queues.map((q) => [
        [q.name, "mono"],
        [count(q.ready), "num"],
        [count(q.delayed), "num"],
        [count(q.in_flight), "num"],
        [count(q.dead), q.dead ? "num error" : "num"],
        [q.oldest_age ? duration(q.oldest_age) : "—", "num"],
        [count(q.consumers), "num"],
        q.dead ? h("a", { href: `?dlq=${encodeURIComponent(q.name)}#dlq` }, "Dead letters") : "",
      ]);
      fill(counts, table(columns, rows, { empty: "The broker has no queues yet." }));
    }

    function renderHistory(history) {
      const items = history.items || [];
      const ages = new Map();
      for (const item of history.oldest_age || []) {
        if (!ages.has(item.queue)) ages.set(item.queue, []);
        ages.get(item.queue).push([item.t, item.value]);
      }
      const gapAfter = Math.max(3 * (history.step || 60), 30);
      const byQueue = new Map();
      for (const item of items) {
        if (!byQueue.has(item.queue)) byQueue.set(item.queue, []);
        byQueue.get(item.queue).push(item);
      }
      const names = [...new Set([...queues.map((q) => q.name), ...byQueue.keys()])].sort();
      if (!names.length) {
        fill(historyPanel, h("p.muted", null, "No queue snapshots yet."));
        return;
      }
      const now = Date.now() / 1000;
      // The charts start where the snapshots do when the monitor is younger than the window.
      const range = [Math.max(now - windowSeconds(timeWindow), history.since ?? -Infinity), now];
      const charts = names.map((name) => [name, h("div", { dataset: { queue: name } }), h("div.age", { dataset: { queue: name } })]);
      fill(
        historyPanel,
        charts.map(([name, chart, age]) => h("section.panel", null, h("h3.queue-name.mono", null, name), chart, h("h4", null, "Oldest ready message"), age)),
      );
      // Charts measure their container, so they are drawn once it is in the page.
      for (const [name, chart, age] of charts) {
        const series = depthSeries(byQueue.get(name) || [], { limit: STATES.length })
          .map((s) => ({ ...s, label: s.state, color: STATE_COLORS[s.state] }))
          .sort((a, b) => STATES.indexOf(a.label) - STATES.indexOf(b.label));
        lineChart(chart, { series, range, format: count, integer: true, legend: true, height: 140, gapAfter, empty: "Empty over this window." });
        lineChart(age, {
          series: [{ label: "oldest ready", color: STATE_COLORS.ready, points: ages.get(name) || [] }].filter((s) => s.points.some(([, v]) => v > 0)),
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
