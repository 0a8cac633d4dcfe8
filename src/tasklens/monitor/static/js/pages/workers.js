// Workers: each process by host and pid, whether it is alive, the queues it serves, what it runs
// now, and its CPU and memory over the window; the broker's own count beside them, the workers the
// broker knows (with their library when several are read) and, with several brokers, each one's
// answer.

import { get, isNoStore, NO_STORE_MESSAGE } from "../api.js";
import { meter, PALETTE, sparkline } from "../charts.js";
import { fill, h, href, panel, stat, table } from "../dom.js";
import { ago, bytes, count, duration, percent, shortId } from "../format.js";
import { libraryFilter } from "../widgets.js";

/** The task library of a worker the broker knows, "?" when the API does not say. */
function libraryOf(worker) {
  return worker.messaging_system || "?";
}

export default {
  title: () => "Workers",
  mount(root, context) {
    let timeWindow = context.window;
    let brokerWorkers = { items: null };
    const stats = h("div.stats", { id: "worker-stats" });
    const processes = h("div", { id: "processes" });
    const notice = h("div");
    const note = h("p.chart-note", { id: "workers-note" });
    const brokerList = h("ul.broker-parts", { id: "worker-brokers", hidden: true });
    const known = h("div", { id: "broker-workers" });
    const library = libraryFilter({ id: "worker-library", initial: context.query.get("library") || "", onChange: () => renderKnown() });
    fill(
      root,
      h("h1", null, "Workers"),
      notice,
      stats,
      note,
      panel("Processes", processes),
      panel("Workers the broker knows", brokerList, library.element, known),
    );

    function renderKnown() {
      const items = brokerWorkers.items;
      const libraries = [...new Set((items || []).map(libraryOf))].sort();
      const mixed = libraries.length > 1;
      library.setChoices(mixed ? libraries : []);
      const shown = mixed && library.value ? items.filter((w) => libraryOf(w) === library.value) : items || [];
      const columns = [
        "Worker",
        mixed ? "Library" : null,
        "Queues",
        { label: "Active", className: "num", title: "Tasks it runs now" },
        { label: "Processed", className: "num", title: "Since it started" },
        "Pool",
        { label: "Last heartbeat", className: "num" },
      ].filter(Boolean);
      const rows = shown.map((w) => knownRow(w, mixed));
      const empty = brokerWorkers.error
        ? "The broker did not answer."
        : items === null || items === undefined
          ? brokerWorkers.workers_note || "The broker does not list its workers."
          : items.length
            ? "No worker of this library."
            : "No live worker.";
      fill(known, table(columns, rows, { empty, className: "broker-workers" }));
      renderBrokers(brokerWorkers.brokers);
    }


    function renderBrokers(brokers) {
      brokerList.hidden = !brokers || !brokers.length;
      fill(brokerList, (brokers || []).map(brokerLine));
    }

    return {
      poll: true,
      setWindow(value) {
        timeWindow = value;
      },
      async refresh() {
        const [workers, reported] = await Promise.all([
          get("/api/workers").catch((error) => ({ error })),
          get("/api/processes", { window: timeWindow }).catch((error) => {
            if (isNoStore(error)) return { items: [], noStore: true };
            throw error;
          }),
        ]);
        brokerWorkers = workers;
        renderKnown();
        const items = (reported.items || []).slice().sort(byLiveness);
        const workerItems = items.filter((p) => p.kind === "worker");
        const live = workerItems.filter((p) => p.live);
        const stopped = workerItems.length - live.length;
        const rss = live.reduce((sum, p) => sum + (p.memory_rss_bytes || 0), 0);
        const cpu = live.reduce((sum, p) => sum + (p.cpu_percent || 0), 0);
        const running = live.reduce((sum, p) => sum + (p.running || []).reduce((n, r) => n + r.count, 0), 0);
        const brokerCount = workers.error || workers.workers === null || workers.workers === undefined ? null : workers.workers;
        fill(
          notice,
          workers.error ? h("div.banner.error", { role: "alert" }, `The broker's worker count is unknown: ${workers.error.describe?.() || workers.error.message}`) : null,
        );
        // Workers that report are counted from their reports: a process that only sends
        // messages, or one that stopped, is not a live worker. The broker's count is the fallback.
        const liveValue = workerItems.length ? count(live.length) : brokerCount === null ? "—" : count(brokerCount);
        fill(
          stats,
          stat("Live workers", liveValue, {
            hint: workerItems.length ? `${count(stopped)} stopped or quiet` : "seen by the broker",
            tone: (workerItems.length ? live.length : brokerCount) === 0 ? "error" : null,
          }),
          stat("Running now", count(running), { hint: "messages in progress" }),
          stat("Broker count", brokerCount === null ? "—" : count(brokerCount), {
            hint: "heartbeats or consumers (producers included on Redis)",
          }),
          stat("CPU, live workers", percent(cpu)),
          stat("Memory, live workers", bytes(rss)),
        );
        fill(
          note,
          `Processes that sent telemetry in the last ${timeWindow}: a process is a worker once it runs tasks (or runs a worker command), live while its reports keep coming. Trends cover the window.`,
        );
        fill(
          processes,
          table(
            [
              "Process",
              "Service",
              "Role",
              "State",
              "Queues",
              { label: "Running now", title: "Messages in progress, by actor" },
              { label: "Runs", className: "num", title: "In this window" },
              { label: "CPU", className: "num" },
              { label: "CPU trend", title: "Over the window" },
              { label: "Memory (RSS)", className: "num" },
              { label: "Memory trend", title: "Over the window" },
              { label: "Threads", className: "num" },
            ],
            items.map((p) => processRow(p)),
            {
              empty: reported.noStore
                ? NO_STORE_MESSAGE
                : "No process has sent telemetry in this window. Workers started with tasklens.setup() send it.",
            },
          ),
        );
      },
    };
  },
};

/** One broker of several: whether it answered (why not, when it did not) and what it says of its workers. */
function brokerLine(part) {
  const name = `${part.broker} (${part.messaging_system || "?"})`;
  return h(
    "li.broker-part",
    { dataset: { broker: part.broker, library: part.messaging_system || "?", up: String(Boolean(part.up)) } },
    part.up ? h("span.badge.status-ok", null, "answered") : h("span.badge.status-error", null, "did not answer"),
    " ",
    h("span.mono.broker-name", null, name),
    part.up
      ? h("span.broker-workers", null, `: workers ${part.workers === null || part.workers === undefined ? "?" : count(part.workers)}`)
      : h("span.broker-error", null, `: ${part.error || "?"}`),
    part.workers_note ? h("div.workers-note.muted", null, part.workers_note) : null,
  );
}

/** A worker as the broker knows it: heartbeats (Celery, Dramatiq on Redis) or announcements. */
function knownRow(w, mixed) {
  const queues = w.queues || [];
  return h(
    "tr",
    { dataset: { worker: w.hostname, library: libraryOf(w) } },
    h("td.mono", { title: w.software || null }, w.hostname),
    mixed ? h("td.library", null, libraryOf(w)) : null,
    h("td.queues", null, queues.length ? queues.map((q, i) => [i ? ", " : "", h("a.mono", { href: href("/queues", { dlq: q }) }, q)]) : "—"),
    h("td.num", null, count(w.active)),
    h("td.num", null, count(w.processed)),
    h("td", null, w.pool ? `${w.pool}${w.concurrency ? ` × ${w.concurrency}` : ""}` : "—"),
    h("td.num", { title: w.freq ? `every ${duration(w.freq)}` : null }, ago(w.last_heartbeat)),
  );
}

function processRow(p) {
  const history = p.history || [];
  const name = p.host || p.pid ? `${p.host || "?"} · pid ${p.pid ?? "?"}` : shortId(p.instance, 13);
  return h(
    "tr",
    { class: p.live ? null : "quiet", dataset: { instance: p.instance, kind: p.kind || "", live: String(Boolean(p.live)) } },
    h("td.mono", { title: `service.instance.id ${p.instance}` }, name),
    h("td", null, p.service || "—"),
    h("td", null, p.kind || "—"),
    h(
      "td.nowrap",
      { title: `last report ${ago(p.last_seen)}, every ${duration(p.report_interval)}` },
      p.live ? h("span.badge.status-ok", null, "live") : h("span.badge.status-unset", null, p.kind === "worker" ? "stopped?" : "quiet"),
      " ",
      ago(p.last_seen),
    ),
    h(
      "td",
      null,
      (p.queues || []).length ? p.queues.map((q, i) => [i ? ", " : "", h("a.mono", { href: href("/queues", { dlq: q }) }, q)]) : "—",
    ),
    h(
      "td.running-now",
      null,
      (p.running || []).length ? p.running.map((r, i) => [i ? ", " : "", `${r.actor || "?"}${r.count > 1 ? ` ×${r.count}` : ""}`]) : p.kind === "worker" && p.live ? "idle" : "—",
    ),
    h("td.num", null, p.runs ? count(p.runs) : "—"),
    h(
      "td.num",
      null,
      p.cpu_percent === null || p.cpu_percent === undefined ? "—" : [meter(p.cpu_percent / 100, { tone: p.cpu_percent > 90 ? "error" : null }), " ", percent(p.cpu_percent)],
    ),
    h("td", null, sparkline(history.map((r) => r.cpu_percent), { label: "CPU trend", from: 0 })),
    h("td.num", null, bytes(p.memory_rss_bytes)),
    h("td", null, sparkline(history.map((r) => r.memory_rss_bytes), { label: "Memory trend", color: PALETTE[1] })),
    h("td.num", null, count(p.threads)),
  );
}

/** Live workers first, then the rest, each group by host and pid. */
function byLiveness(a, b) {
  const rank = (p) => (p.kind === "worker" ? 0 : 1) + (p.live ? 0 : 2);
  return rank(a) - rank(b) || String(a.host || "").localeCompare(String(b.host || "")) || (a.pid || 0) - (b.pid || 0);
}
