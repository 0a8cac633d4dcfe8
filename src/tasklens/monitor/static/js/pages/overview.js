// Overview: how the whole system does right now and over the window.

import { get, isNoStore, NO_STORE_MESSAGE } from "../api.js";
import { ERROR_COLOR, lineChart } from "../charts.js";
import { fill, h, href, panel, stat, table } from "../dom.js";
import { count, duration, percent, rate, ratio, windowSeconds } from "../format.js";
import { banner, depthSeries, points } from "../widgets.js";

export default {
  title: () => "Overview",
  mount(root, context) {
    let timeWindow = context.window;
    const stats = h("div.stats", { id: "overview-stats" });
    const charts = {
      throughput: h("div", { id: "chart-throughput" }),
      errors: h("div", { id: "chart-error-rate" }),
      p95: h("div", { id: "chart-p95" }),
      depth: h("div", { id: "chart-depth" }),
    };
    const worst = h("div", { id: "worst-actors" });
    const notice = h("div");
    fill(
      root,
      h("h1", null, "Overview"),
      notice,
      stats,
      h(
        "div.grid-2",
        null,
        panel("Throughput", charts.throughput),
        panel("Error rate", charts.errors),
        panel("p95 duration", charts.p95),
        panel("Queue depth by queue and state", charts.depth),
      ),
      panel("Worst actors now", worst),
    );

    async function refresh() {
      // The "now" figures come from the broker itself; the history from the store.
      const [stored, broker] = await Promise.all([
        get("/api/overview", { window: timeWindow }).catch((error) => {
          if (isNoStore(error)) return null;
          throw error;
        }),
        get("/api/queues").catch(() => null),
      ]);
      fill(notice, stored ? null : banner(NO_STORE_MESSAGE, "info"));
      const data = stored || { window: timeWindow, step: 60, series: [], depth: [], workers: null, worst_actors: [] };
      if (broker && broker.workers !== null && broker.workers !== undefined) data.workers = broker.workers;
      const series = data.series || [];
      const totalRuns = series.reduce((sum, p) => sum + (p.runs || 0), 0);
      const totalErrors = series.reduce((sum, p) => sum + (p.errors || 0), 0);
      const lastP95 = [...series].reverse().find((p) => p.p95 !== null && p.p95 !== undefined);
      const latestDepth = latestByQueueState(data.depth || []);
      const backlog = broker
        ? sum(broker.queues || [], (q) => q.pending)
        : sum(latestDepth, (d) => (d.state === "ready" || d.state === "delayed" ? d.value : 0));
      const dead = broker
        ? sum(broker.queues || [], (q) => q.dead)
        : sum(latestDepth, (d) => (d.state === "dead" ? d.value : 0));
      const span = windowSeconds(data.window || timeWindow);
      fill(
        stats,
        stat("Runs", count(totalRuns), { hint: `in the last ${data.window || timeWindow}`, to: "/runs" }),
        stat("Throughput", rate(totalRuns / span), { hint: "average" }),
        stat("Error rate", totalRuns ? ratio(totalErrors / totalRuns) : "—", {
          hint: `${count(totalErrors)} failed`,
          tone: totalErrors ? "error" : null,
          to: "/runs?status=error",
        }),
        stat("p95 duration", duration(lastP95?.p95), { hint: "latest interval" }),
        stat("Live workers", data.workers === null || data.workers === undefined ? "—" : count(data.workers), {
          tone: data.workers === 0 ? "error" : null,
          to: "/workers",
        }),
        stat("Backlog", count(backlog), { hint: "ready + delayed", to: "/queues" }),
        stat("Dead letters", count(dead), { tone: dead ? "error" : null, to: "/queues" }),
      );
      const range = series.length ? [series[0].t, series[series.length - 1].t] : undefined;
      lineChart(charts.throughput, {
        range,
        series: [
          { label: "runs/s", points: points(series, "throughput"), area: true },
          { label: "errors/s", color: ERROR_COLOR, points: series.map((p) => [p.t, (p.errors || 0) / (data.step || 60)]) },
        ],
        format: (v) => rate(v),
      });
      lineChart(charts.errors, {
        range,
        series: [{ label: "error rate", color: ERROR_COLOR, points: points(series, "error_rate"), area: true }],
        format: (v) => ratio(v),
      });
      lineChart(charts.p95, { range, series: [{ label: "p95", points: points(series, "p95") }], format: duration });
      lineChart(charts.depth, {
        range,
        series: depthSeries(data.depth || []),
        format: count,
        integer: true,
        legend: true,
        empty: "No queue snapshots yet.",
      });
      fill(worst, actorTable(data.worst_actors || [], "No actor has run in this window."));
    }

    return {
      poll: true,
      refresh,
      setWindow(value) {
        timeWindow = value;
      },
    };
  },
};

/** The compact actor table used by the overview. */
function actorTable(items, empty) {
  return table(
    [
      "Actor",
      "Queue",
      { label: "Runs", className: "num" },
      { label: "Rate", className: "num" },
      { label: "Error %", className: "num" },
      { label: "p95", className: "num" },
      { label: "Dead letters", className: "num" },
    ],
    items.map((a) => [
      h("a", { href: href(["actors", a.actor]) }, a.actor),
      a.queue,
      [count(a.runs), "num"],
      [rate(a.rate), "num"],
      [percent(a.error_pct), a.error_pct > 0 ? "num error" : "num"],
      [duration(a.p95), "num"],
      [count(a.dead_letters), a.dead_letters ? "num error" : "num"],
    ]),
    { empty },
  );
}

function latestByQueueState(depth) {
  const latest = new Map();
  for (const d of depth) {
    const key = `${d.queue}\u0000${d.state}`;
    if (!latest.has(key) || latest.get(key).t < d.t) latest.set(key, d);
  }
  return [...latest.values()];
}

function sum(items, pick) {
  return items.reduce((total, item) => total + (pick(item) || 0), 0);
}
