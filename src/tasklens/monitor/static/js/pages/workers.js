// Workers: how many the broker sees alive, and each worker process's CPU, memory and threads.

import { get, isNoStore, NO_STORE_MESSAGE } from "../api.js";
import { meter, PALETTE, sparkline } from "../charts.js";
import { fill, h, panel, stat, table } from "../dom.js";
import { ago, bytes, count, percent } from "../format.js";

/** A process not heard from for this long is shown as gone quiet, in seconds. */
const STALE_AFTER_S = 60;
/** Readings kept per process for its sparklines: five minutes at one poll every 5 s. */
const HISTORY_LENGTH = 60;

export default {
  title: () => "Workers",
  mount(root) {
    const stats = h("div.stats", { id: "worker-stats" });
    const processes = h("div", { id: "processes" });
    const notice = h("div");
    fill(root, h("h1", null, "Workers"), notice, stats, panel("Processes reporting metrics", processes));
    // The API gives each process's latest reading; the trend is kept here since the page opened.
    const history = new Map();

    function remember(process) {
      const key = `${process.service}\u0000${process.instance}`;
      const readings = history.get(key) || [];
      if (!readings.length || readings[readings.length - 1].t !== process.last_seen) {
        readings.push({ t: process.last_seen, cpu: process.cpu_percent, rss: process.memory_rss_bytes });
        if (readings.length > HISTORY_LENGTH) readings.shift();
      }
      history.set(key, readings);
      return readings;
    }

    return {
      poll: true,
      usesWindow: false,
      async refresh() {
        const [workers, reported] = await Promise.all([
          get("/api/workers").catch((error) => ({ error })),
          get("/api/processes", { window: "15m" }).catch((error) => {
            if (isNoStore(error)) return { items: [], noStore: true };
            throw error;
          }),
        ]);
        const items = (reported.items || []).slice().sort((a, b) => (b.cpu_percent ?? -1) - (a.cpu_percent ?? -1));
        const now = Date.now() / 1000;
        const live = items.filter((p) => now - p.last_seen < STALE_AFTER_S);
        const rss = live.reduce((sum, p) => sum + (p.memory_rss_bytes || 0), 0);
        const cpu = live.reduce((sum, p) => sum + (p.cpu_percent || 0), 0);
        fill(
          notice,
          workers.error ? h("div.banner.error", { role: "alert" }, `Live workers unknown: ${workers.error.describe?.() || workers.error.message}`) : null,
        );
        fill(
          stats,
          stat("Live workers", workers.error || workers.workers === null || workers.workers === undefined ? "—" : count(workers.workers), {
            hint: "seen by the broker",
            tone: workers.workers === 0 ? "error" : null,
          }),
          stat("Processes reporting", count(live.length), { hint: `${count(items.length - live.length)} quiet` }),
          stat("CPU, all processes", percent(cpu)),
          stat("Memory, all processes", bytes(rss)),
        );
        fill(
          processes,
          table(
            [
              "Service",
              "Instance",
              "Last seen",
              { label: "CPU", className: "num" },
              { label: "CPU trend", title: "Since this page opened" },
              { label: "Memory (RSS)", className: "num" },
              { label: "Memory trend", title: "Since this page opened" },
              { label: "Threads", className: "num" },
            ],
            items.map((p) => {
              const quiet = now - p.last_seen >= STALE_AFTER_S;
              const readings = remember(p);
              return h(
                "tr",
                { class: quiet ? "quiet" : null, dataset: { instance: p.instance } },
                h("td", null, p.service || "—"),
                h("td.mono", { title: p.instance }, p.instance || "—"),
                h("td.nowrap", null, ago(p.last_seen), quiet ? h("span.badge.status-unset", null, "quiet") : null),
                h(
                  "td.num",
                  null,
                  p.cpu_percent === null || p.cpu_percent === undefined ? "—" : [meter(p.cpu_percent / 100, { tone: p.cpu_percent > 90 ? "error" : null }), " ", percent(p.cpu_percent)],
                ),
                h("td", null, sparkline(readings.map((r) => r.cpu), { label: "CPU trend", from: 0 })),
                h("td.num", null, bytes(p.memory_rss_bytes)),
                h("td", null, sparkline(readings.map((r) => r.rss), { label: "Memory trend", color: PALETTE[1] })),
                h("td.num", null, count(p.threads)),
              );
            }),
            {
              empty: reported.noStore
                ? NO_STORE_MESSAGE
                : "No worker process has sent process metrics yet. Workers started with tasklens.setup() send them.",
            },
          ),
        );
      },
    };
  },
};
