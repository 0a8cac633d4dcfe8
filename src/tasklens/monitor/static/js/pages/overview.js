// Overview: the questions of someone paged at night, on one screen. Is a queue backing up, and
// since when? Which actor fails now, and are its failures retried or dead? Are workers alive?

import { get, isNoStore, NO_STORE_MESSAGE } from "../api.js";
import { ERROR_COLOR, lineChart, PALETTE } from "../charts.js";
import { fill, h, href, panel, stat, table } from "../dom.js";
import { count, duration, percent, rateFormat, ratio, time } from "../format.js";
import { ageSeries, banner, depthSeries, points } from "../widgets.js";

/** A queue whose ready count grew by more than this share over the last minutes is backing up. */
const GROWTH = 0.1;
/** How far back the queues' trend is read, in seconds. */
const TREND_WINDOW_S = 300;
const RETRIED_COLOR = "#b8a22b";

export default {
  title: () => "Overview",
  mount(root, context) {
    let timeWindow = context.window;
    const stats = h("div.stats", { id: "overview-stats" });
    const charts = {
      throughput: h("div", { id: "chart-throughput" }),
      outcomes: h("div", { id: "chart-outcomes" }),
      errors: h("div", { id: "chart-error-rate" }),
      p95: h("div", { id: "chart-p95" }),
      depth: h("div", { id: "chart-depth" }),
      age: h("div", { id: "chart-oldest-age" }),
    };
    const dataNote = h("p.chart-note", { id: "data-since" });
    const queues = h("div", { id: "queues-now" });
    const worst = h("div", { id: "worst-actors" });
    const notice = h("div");
    fill(
      root,
      h("h1", null, "Overview"),
      notice,
      stats,
      dataNote,
      h("div.grid-2", null, panel("Queue depth (ready + delayed)", charts.depth), panel("Oldest ready message, by queue", charts.age)),
      panel("Queues now", queues),
      panel("Actors failing now", worst),
      h(
        "div.grid-2",
        null,
        panel("Throughput", charts.throughput),
        panel("Outcomes of failed attempts", charts.outcomes),
        panel("Error rate (messages failed for good)", charts.errors),
        panel("p95 duration", charts.p95),
      ),
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
      const data = stored || { window: timeWindow, step: 60, series: [], depth: [], oldest_age: [], workers: null, worst_actors: [] };
      const series = data.series || [];
      const step = data.step || 60;
      const recent = data.recent || null;
      const totalRuns = series.reduce((sum, p) => sum + (p.runs || 0), 0);
      const lastP95 = [...series].reverse().find((p) => p.p95 !== null && p.p95 !== undefined && !p.partial);
      const latestDepth = latestByQueueState(data.depth || []);
      const backlog = broker
        ? sum(broker.queues || [], (q) => q.pending)
        : sum(latestDepth, (d) => (d.state === "ready" || d.state === "delayed" ? d.value : 0));
      const dead = broker
        ? sum(broker.queues || [], (q) => q.dead)
        : sum(latestDepth, (d) => (d.state === "dead" ? d.value : 0));
      const oldest = broker ? [...(broker.queues || [])].filter((q) => q.oldest_age).sort((a, b) => b.oldest_age - a.oldest_age)[0] : null;
      // One unit for the card and its chart, chosen from what the chart shows.
      const failedRate = series.map((p) => [p.t, (p.failed || 0) / (p.elapsed || step)]);
      const throughputFormat = rateFormat([...series.map((p) => p.throughput), ...failedRate.map(([, v]) => v), recent?.throughput]);
      const workers = workerFigures(data, broker);
      fill(
        stats,
        stat("Throughput", recent ? throughputFormat(recent.throughput) : "—", {
          hint: recent ? `over the last ${duration(recent.interval)}` : "no runs yet",
        }),
        stat("Runs", count(totalRuns), { hint: `in the last ${data.window || timeWindow}`, to: "/runs" }),
        stat("Failing now", recent ? count(recent.failed) : "—", {
          hint: recent ? `${count(recent.retried)} retried · ${count(recent.dead_lettered)} dead-lettered` : null,
          tone: recent?.failed ? "error" : null,
          to: "/runs?status=error",
        }),
        stat("Error rate", recent && recent.error_rate !== null && recent.error_rate !== undefined ? ratio(recent.error_rate) : "—", {
          hint: recent ? `failed for good, last ${duration(recent.interval)}` : null,
          tone: recent?.error_rate ? "error" : null,
          to: "/runs?status=failed",
        }),
        stat("Live workers", workers.value, { hint: workers.hint, tone: workers.tone, to: "/workers" }),
        stat("Backlog", count(backlog), { hint: "ready + delayed", to: "/queues" }),
        stat("Oldest waiting", oldest ? duration(oldest.oldest_age) : "—", {
          hint: oldest ? `${oldest.name}, since ${time(Date.now() / 1000 - oldest.oldest_age)}` : "no message waiting",
          tone: oldest && oldest.oldest_age > 60 ? "error" : null,
          to: "/queues",
        }),
        stat("p95 duration", duration(lastP95?.p95), { hint: "last complete interval" }),
        stat("Dead letters", count(dead), { tone: dead ? "error" : null, to: "/queues" }),
      );
      fill(
        dataNote,
        data.since && series.length
          ? `Run charts from ${time(data.since)} (the first run stored in this window), in steps of ${duration(step)}; the last step is still filling (dashed).`
          : "No runs stored in this window yet.",
      );
      const range = series.length ? [series[0].t, Math.max(series[series.length - 1].t, Date.now() / 1000 - step)] : undefined;
      lineChart(charts.throughput, {
        range,
        series: [
          { label: `runs ${throughputFormat.unit}`, points: points(series, "throughput"), area: true, partial: true },
          { label: `failed for good ${throughputFormat.unit}`, color: ERROR_COLOR, points: failedRate, partial: true },
        ],
        format: throughputFormat,
        legend: true,
      });
      lineChart(charts.outcomes, {
        range,
        series: [
          { label: "retried", color: RETRIED_COLOR, points: points(series, "retried") },
          { label: "dead-lettered", color: ERROR_COLOR, points: points(series, "dead_lettered") },
          { label: "failed, no retry", color: PALETTE[4], points: series.map((p) => [p.t, Math.max((p.failed || 0) - (p.dead_lettered || 0), 0)]) },
        ].map((s) => ({ ...s, partial: true })),
        format: count,
        integer: true,
        legend: true,
        empty: "No failed attempt in this window.",
      });
      lineChart(charts.errors, {
        range,
        series: [{ label: "error rate", color: ERROR_COLOR, points: points(series, "error_rate"), area: true, partial: true }],
        format: (v) => ratio(v),
      });
      lineChart(charts.p95, { range, series: [{ label: "p95", points: points(series, "p95"), partial: true }], format: duration });
      const depthStep = data.depth_step || step;
      const gapAfter = Math.max(3 * depthStep, 30);
      lineChart(charts.depth, {
        range: data.depth?.length ? undefined : range,
        series: pendingSeries(data.depth || []),
        format: count,
        integer: true,
        legend: true,
        gapAfter,
        empty: "No queue snapshots yet.",
      });
      lineChart(charts.age, {
        series: ageSeries(data.oldest_age || []),
        format: duration,
        legend: true,
        gapAfter,
        empty: "No message has waited in this window.",
      });
      fill(queues, queueTable(broker, data.depth || []));
      fill(worst, actorTable(data.worst_actors || []));
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

/** Live workers from their own reports when they send any, else the broker's count. */
function workerFigures(data, broker) {
  const reporting = data.worker_processes;
  if (reporting !== null && reporting !== undefined) {
    return { value: count(reporting), hint: "worker processes reporting", tone: reporting === 0 ? "error" : null };
  }
  const seen = broker && broker.workers !== null && broker.workers !== undefined ? broker.workers : data.workers;
  if (seen === null || seen === undefined) return { value: "—", hint: null, tone: null };
  return { value: count(seen), hint: "seen by the broker", tone: seen === 0 ? "error" : null };
}

/** Ready plus delayed per queue over time, from the depth rows. */
function pendingSeries(depth) {
  const pending = new Map();
  for (const d of depth) {
    if (d.state !== "ready" && d.state !== "delayed") continue;
    const key = `${d.queue}\u0000${d.messaging_system || ""}\u0000${d.t}`;
    const entry = pending.get(key) || { t: d.t, queue: d.queue, messaging_system: d.messaging_system, state: "pending", value: 0 };
    entry.value += d.value || 0;
    pending.set(key, entry);
  }
  // An empty queue is drawn at zero: it was read, and held nothing.
  return depthSeries([...pending.values()], { keepEmpty: true }).map((s) => ({ ...s, label: s.label.replace(" · pending", "") }));
}

/** Each queue now, with the age of its oldest message and whether it grows. */
function queueTable(broker, depth) {
  if (!broker) return h("p.muted", null, "The broker could not be read.");
  const now = Date.now() / 1000;
  const rows = [...(broker.queues || [])]
    .sort((a, b) => (b.oldest_age || 0) - (a.oldest_age || 0) || (b.pending || 0) - (a.pending || 0))
    .map((q) => {
      const trend = queueTrend(depth, q.name, now);
      return h(
        "tr",
        { dataset: { queue: q.name, trend: trend.state } },
        h("td.mono", null, h("a", { href: href("/queues", { dlq: q.name }) }, q.name)),
        h("td.num", null, count(q.ready)),
        h("td.num", null, count(q.delayed)),
        h("td.num", null, count(q.in_flight)),
        h("td.num", { class: q.dead ? "error" : null }, count(q.dead)),
        h("td.num", null, q.oldest_age ? duration(q.oldest_age) : "—"),
        h("td.nowrap", null, q.oldest_age ? time(now - q.oldest_age) : "—"),
        h("td", { class: trend.state === "growing" ? "trend-growing" : trend.state === "draining" ? "trend-draining" : null }, trend.text),
        h("td.num", null, count(q.consumers)),
      );
    });
  return table(
    [
      "Queue",
      ...["Ready", "Delayed", "In flight", "Dead", "Oldest ready"].map((label) => ({ label, className: "num" })),
      { label: "Waiting since", title: "When the oldest ready message became ready" },
      { label: "Last 5 min", title: "Ready + delayed now against five minutes ago" },
      { label: "Consumers", className: "num" },
    ],
    rows,
    { empty: "The broker has no queues yet." },
  );
}

function queueTrend(depth, queue, now) {
  const pending = new Map();
  for (const d of depth) {
    if (d.queue !== queue || (d.state !== "ready" && d.state !== "delayed")) continue;
    pending.set(d.t, (pending.get(d.t) || 0) + (d.value || 0));
  }
  const times = [...pending.keys()].sort((a, b) => a - b);
  if (times.length < 2) return { state: "unknown", text: "—" };
  const last = pending.get(times[times.length - 1]);
  const then = times.find((t) => t >= now - TREND_WINDOW_S) ?? times[0];
  const before = pending.get(then);
  if (last > before * (1 + GROWTH) && last - before >= 1) return { state: "growing", text: `growing (+${count(last - before)})` };
  if (last < before * (1 - GROWTH) && before - last >= 1) return { state: "draining", text: `draining (−${count(before - last)})` };
  return { state: "steady", text: "steady" };
}

/** The actors failing now: failures for good in the last minutes, what was retried and dead. */
function actorTable(items) {
  const format = rateFormat(items.map((a) => a.rate));
  return table(
    [
      "Actor",
      "Queue",
      { label: "Failed now", className: "num", title: "Failed for good in the last minutes" },
      { label: "Retried", className: "num" },
      { label: "Dead-lettered", className: "num" },
      { label: "Succeeded after retry", className: "num" },
      { label: "Error %", className: "num", title: "Messages failed for good, of those done" },
      { label: `Rate (${format.unit})`, className: "num" },
      { label: "p95", className: "num" },
    ],
    items.map((a) =>
      h(
        "tr",
        { dataset: { actor: a.actor } },
        h("td", null, h("a", { href: href(["actors", a.actor]) }, a.actor)),
        h("td", null, a.queue),
        h("td.num", { class: a.recent_failed ? "error" : null }, count(a.recent_failed)),
        h("td.num", null, count(a.retries)),
        h("td.num", { class: a.dead_letters ? "error" : null }, count(a.dead_letters)),
        h("td.num", null, count(a.succeeded_after_retry)),
        h("td.num", { class: a.error_pct > 0 ? "error" : null }, percent(a.error_pct)),
        h("td.num", null, format(a.rate)),
        h("td.num", null, duration(a.p95)),
      ),
    ),
    { empty: "No actor failed in this window." },
  );
}

function latestByQueueState(depth) {
  const latest = new Map();
  for (const d of depth) {
    const key = `${d.queue}\u0000${d.messaging_system || ""}\u0000${d.state}`;
    if (!latest.has(key) || latest.get(key).t < d.t) latest.set(key, d);
  }
  return [...latest.values()];
}

function sum(items, pick) {
  return items.reduce((total, item) => total + (pick(item) || 0), 0);
}
