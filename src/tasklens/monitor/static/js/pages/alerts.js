// Alerts: what fires now, what fired before, the rules and how the notifiers are doing.

import { get } from "../api.js";
import { fill, h, panel, stat, table } from "../dom.js";
import { ago, count, duration, time } from "../format.js";
import { banner } from "../widgets.js";

/** The alert's value in the unit of its rule. */
function value(alert) {
  if (alert.rule === "error_rate" || alert.rule === "retry_storm") return `${Math.round(alert.value * 100)}%`;
  if (alert.rule === "oldest_message_age") return duration(alert.value);
  if (alert.rule === "broker_unreachable") return "—";
  return count(alert.value);
}

function severityBadge(severity) {
  return h("span.badge", { class: severity === "critical" ? "status-error" : "status-unset" }, severity);
}

function where(alert) {
  return alert.queue === null ? "the broker" : alert.queue;
}

export default {
  title: () => "Alerts",
  mount(root) {
    const notice = h("div");
    const stats = h("div.stats", { id: "alert-stats" });
    const firing = h("div", { id: "alerts-firing" });
    const history = h("div", { id: "alerts-history" });
    const rules = h("div", { id: "alert-rules" });
    const notifiers = h("div", { id: "alert-notifiers" });
    fill(
      root,
      h("h1", null, "Alerts"),
      notice,
      stats,
      panel("Firing now", firing),
      panel("History", history),
      panel("Notifiers", notifiers),
      panel("Rules", rules),
    );

    return {
      poll: true,
      usesWindow: false,
      async refresh() {
        const body = await get("/api/alerts");
        fill(
          notice,
          body.enabled
            ? null
            : banner("This monitor evaluates no alerts. Start it with --alerts FILE or an --alert-* option to have them.", "info"),
        );
        const failing = body.notifiers.filter((n) => n.last_error);
        fill(
          stats,
          stat("Firing", count(body.firing.length), { tone: body.firing.length ? "error" : "ok" }),
          stat("Pending", count(Object.keys(body.pending).length), { hint: "holding, not for long enough yet" }),
          stat("Resolved", count(body.history.length), { hint: "kept in the history" }),
          stat("Last evaluated", body.evaluated_at ? ago(body.evaluated_at) : "—"),
        );
        fill(
          firing,
          table(
            ["Alert", "Where", "Severity", { label: "Value", className: "num" }, "Since", "Summary"],
            body.firing.map((a) =>
              h(
                "tr",
                { dataset: { key: a.key } },
                h("td.mono", null, a.rule),
                h("td", null, where(a)),
                h("td", null, severityBadge(a.severity)),
                h("td.num", null, value(a)),
                h("td.nowrap", { title: time(a.started_at) }, ago(a.started_at)),
                h("td", null, a.summary),
              ),
            ),
            { empty: body.enabled ? "Nothing fires." : "No alerts are evaluated." },
          ),
        );
        fill(
          history,
          table(
            ["Alert", "Where", "Severity", "Fired", "Resolved", { label: "Lasted", className: "num" }, "Last summary"],
            body.history.map((a) =>
              h(
                "tr",
                { dataset: { key: a.key } },
                h("td.mono", null, a.rule),
                h("td", null, where(a)),
                h("td", null, severityBadge(a.severity)),
                h("td.nowrap", null, time(a.started_at)),
                h("td.nowrap", null, time(a.resolved_at)),
                h("td.num", null, duration(a.resolved_at - a.started_at)),
                h("td", null, a.summary),
              ),
            ),
            { empty: "No alert has resolved yet." },
          ),
        );
        fill(
          notifiers,
          failing.length ? banner(`Failing: ${failing.map((n) => `${n.target}: ${n.last_error}`).join("; ")} (retried with backoff)`, "error") : null,
          table(
            ["Target", { label: "Sent", className: "num" }, { label: "Failed attempts", className: "num" }, { label: "Waiting", className: "num" }, { label: "Given up", className: "num" }],
            body.notifiers.map((n) => [n.target, [count(n.sent), "num"], [count(n.failures), "num"], [count(n.pending), "num"], [count(n.dropped), "num"]]),
            { empty: "No notifier: alerts show here and in /api/alerts only." },
          ),
        );
        fill(
          rules,
          table(
            ["Rule", "Severity", "Enabled", { label: "Threshold", className: "num" }, { label: "For", className: "num" }, { label: "Window", className: "num" }, "Condition"],
            body.rules.map((r) => [
              h("span.mono", { title: r.runbook }, r.name),
              severityBadge(r.severity),
              r.enabled ? "yes" : "no",
              [String(r.threshold), "num"],
              [duration(r.for_seconds), "num"],
              [r.window ? duration(r.window) : "—", "num"],
              r.description,
            ]),
            { empty: "—" },
          ),
        );
      },
    };
  },
};
