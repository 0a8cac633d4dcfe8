// One actor: its numbers, its charts over the window, and its latest runs.

import { ApiError, get } from "../api.js";
import { ERROR_COLOR, lineChart } from "../charts.js";
import { fill, h, href, panel, stat } from "../dom.js";
import { count, duration, percent, rateFormat, ratio } from "../format.js";
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
        const series = data.series || [];
        const step = data.step || 60;
        const failedRate = series.map((p) => [p.t, (p.failed || 0) / (p.elapsed || step)]);
        const rateOf = rateFormat([...series.map((p) => p.throughput), ...failedRate.map(([, v]) => v), s.rate]);
        fill(
          stats,
          stat("Runs", count(s.runs), { hint: s.queue ? `on ${s.queue}` : null }),
          stat("Rate", rateOf(s.rate), { hint: s.interval ? `over ${duration(s.interval)}` : null }),
          stat("Error %", percent(s.error_pct), { hint: "failed for good", tone: s.error_pct > 0 ? "error" : null }),
          stat("Failed", count(s.failed), { tone: s.failed ? "error" : null }),
          stat("Succeeded after retry", count(s.succeeded_after_retry)),
          stat("p50", duration(s.p50)),
          stat("p95", duration(s.p95)),
          stat("p99", duration(s.p99)),
          stat("p95 queue wait", duration(s.queue_wait_p95)),
          stat("Retried", count(s.retries)),
          stat("Dead letters", count(s.dead_letters), { tone: s.dead_letters ? "error" : null }),
        );
        const range = series.length ? [series[0].t, series[series.length - 1].t] : undefined;
        lineChart(throughput, {
          range,
          series: [
            { label: `runs ${rateOf.unit}`, points: points(series, "throughput"), area: true, partial: true },
            { label: `failed for good ${rateOf.unit}`, color: ERROR_COLOR, points: failedRate, partial: true },
          ],
          format: rateOf,
          legend: true,
        });
        lineChart(errors, {
          range,
          series: [{ label: "error rate", color: ERROR_COLOR, points: points(series, "error_rate"), area: true, partial: true }],
          format: ratio,
        });
        lineChart(latency, {
          range,
          series: [
            { label: "p95", points: points(series, "p95"), partial: true },
            ...(series.some((p) => p.p50 !== undefined) ? [{ label: "p50", points: points(series, "p50"), partial: true }] : []),
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
