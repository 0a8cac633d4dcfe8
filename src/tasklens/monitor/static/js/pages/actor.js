// One actor: its numbers, its charts over the window, and its latest runs.

import { ApiError, get } from "../api.js";
import { ERROR_COLOR, lineChart } from "../charts.js";
import { fill, h, href, panel, stat } from "../dom.js";
import { count, duration, percent, rate, ratio } from "../format.js";
import { banner, points, runsTable } from "../widgets.js";

export default {
  title: (params) => params.actor,
  mount(root, context) {
    const actor = context.params.actor;
    let timeWindow = context.window;
    const stats = h("div.stats");
    const throughput = h("div", { id: "chart-throughput" });
    const errors = h("div", { id: "chart-error-rate" });
    const latency = h("div", { id: "chart-latency" });
    const runs = h("div", { id: "recent-runs" });
    const notice = h("div");
    fill(
      root,
      h(
        "div.page-head",
        null,
        h("h1", null, h("a.crumb", { href: "/actors" }, "Actors"), " / ", h("span.mono", null, actor)),
        h("a.button", { href: href("/runs", { actor }) }, "All runs of this actor"),
      ),
      notice,
      stats,
      h("div.grid-3", null, panel("Throughput", throughput), panel("Error rate", errors), panel("Duration", latency)),
      panel("Recent runs", runs),
    );

    return {
      poll: true,
      async refresh() {
        let data;
        try {
          data = await get(`/api/actors/${encodeURIComponent(actor)}`, { window: timeWindow });
        } catch (error) {
          if (error instanceof ApiError && error.status === 404) {
            fill(notice, banner(`No runs of ${actor} in the last ${timeWindow}.`, "info"));
            fill(stats);
            return;
          }
          throw error;
        }
        fill(notice);
        const s = data.stats || {};
        fill(
          stats,
          stat("Runs", count(s.runs), { hint: s.queue ? `on ${s.queue}` : null }),
          stat("Rate", rate(s.rate)),
          stat("Error %", percent(s.error_pct), { tone: s.error_pct > 0 ? "error" : null }),
          stat("p50", duration(s.p50)),
          stat("p95", duration(s.p95)),
          stat("p99", duration(s.p99)),
          stat("p95 queue wait", duration(s.queue_wait_p95)),
          stat("Retries", count(s.retries)),
          stat("Dead letters", count(s.dead_letters), { tone: s.dead_letters ? "error" : null }),
        );
        const series = data.series || [];
        const range = series.length ? [series[0].t, series[series.length - 1].t] : undefined;
        lineChart(throughput, {
          range,
          series: [
            { label: "runs/s", points: points(series, "throughput"), area: true },
            { label: "errors/s", color: ERROR_COLOR, points: series.map((p) => [p.t, (p.errors || 0) / (data.step || 60)]) },
          ],
          format: rate,
        });
        lineChart(errors, {
          range,
          series: [{ label: "error rate", color: ERROR_COLOR, points: points(series, "error_rate"), area: true }],
          format: ratio,
        });
        lineChart(latency, {
          range,
          series: [
            { label: "p95", points: points(series, "p95") },
            ...(series.some((p) => p.p50 !== undefined) ? [{ label: "p50", points: points(series, "p50") }] : []),
          ],
          format: duration,
        });
        fill(runs, runsTable(data.recent_runs || [], { showActor: false, empty: "No recent runs." }));
      },
      setWindow(value) {
        timeWindow = value;
      },
    };
  },
};
