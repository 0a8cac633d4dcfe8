// Actors: one row per actor with its rate, errors, latency percentiles, waits and dead letters.

import { get } from "../api.js";
import { meter } from "../charts.js";
import { fill, h, href, panel } from "../dom.js";
import { count, duration, percent, rateFormat } from "../format.js";

/** Sortable columns: label, field, formatter, numeric. */
const COLUMNS = [
  ["Actor", "actor", null, false],
  ["Queue", "queue", null, false],
  ["Runs", "runs", count, true],
  ["Rate", "rate", null, true],
  ["Error %", "error_pct", percent, true],
  ["Failed", "failed", count, true],
  ["p50", "p50", duration, true],
  ["p95", "p95", duration, true],
  ["p99", "p99", duration, true],
  ["p95 queue wait", "queue_wait_p95", duration, true],
  ["Retried", "retries", count, true],
  ["Dead letters", "dead_letters", count, true],
  ["Succeeded after retry", "succeeded_after_retry", count, true],
];

export default {
  title: () => "Actors",
  mount(root, context) {
    let timeWindow = context.window;
    let items = [];
    let sortField = context.query.get("sort") || "runs";
    let descending = context.query.get("order") !== "asc";
    const search = h("input", {
      type: "search",
      placeholder: "Filter by actor or queue",
      "aria-label": "Filter actors",
      value: context.query.get("q") || "",
      oninput: render,
    });
    const holder = h("div", { id: "actors-table" });
    const note = h("p.chart-note", { id: "actors-interval" });
    fill(root, h("div.page-head", null, h("h1", null, "Actors"), search), note, panel(null, holder));

    function render() {
      const needle = search.value.trim().toLowerCase();
      const shown = items
        .filter((a) => !needle || a.actor.toLowerCase().includes(needle) || String(a.queue).toLowerCase().includes(needle))
        .sort((a, b) => compare(a[sortField], b[sortField]) * (descending ? -1 : 1));
      // One unit for the whole column, from the largest rate in it.
      const rateOf = rateFormat(items.map((a) => a.rate));
      const head = h(
        "tr",
        null,
        COLUMNS.map(([label, field, , numeric]) =>
          h(
            "th.sortable",
            {
              class: numeric ? "num" : null,
              "aria-sort": field === sortField ? (descending ? "descending" : "ascending") : null,
              onclick: () => {
                descending = field === sortField ? !descending : numeric;
                sortField = field;
                render();
              },
            },
            field === "rate" ? `Rate (${rateOf.unit})` : label,
            field === sortField ? (descending ? " ▾" : " ▴") : "",
          ),
        ),
      );
      const body = h("tbody");
      if (!shown.length) {
        body.appendChild(h("tr.empty", null, h("td", { colspan: COLUMNS.length }, items.length ? "No actor matches." : "No actor has run in this window.")));
      }
      for (const a of shown) {
        body.appendChild(
          h(
            "tr",
            { dataset: { actor: a.actor } },
            h("td", null, h("a", { href: href(["actors", a.actor]) }, a.actor)),
            h("td", null, a.queue),
            h("td.num", null, count(a.runs)),
            h("td.num", { title: `over ${duration(a.interval)}` }, rateOf(a.rate)),
            h(
              "td.num",
              { class: a.error_pct > 0 ? "error" : null },
              meter((a.error_pct || 0) / 100, { tone: a.error_pct > 0 ? "error" : null }),
              " ",
              percent(a.error_pct),
            ),
            h("td.num", { class: a.failed ? "error" : null }, count(a.failed)),
            h("td.num", null, duration(a.p50)),
            h("td.num", null, duration(a.p95)),
            h("td.num", null, duration(a.p99)),
            h("td.num", null, duration(a.queue_wait_p95)),
            h("td.num", null, count(a.retries)),
            h("td.num", { class: a.dead_letters ? "error" : null }, count(a.dead_letters)),
            h("td.num", null, count(a.succeeded_after_retry)),
          ),
        );
      }
      fill(holder, h("table.data", null, h("thead", null, head), body));
    }

    return {
      poll: true,
      async refresh() {
        const data = await get("/api/actors", { window: timeWindow });
        items = data.items || [];
        fill(
          note,
          data.interval
            ? `Rates over the last ${duration(data.interval)} (what the store holds of this window). Error % counts messages that failed for good; a retried attempt is not a failure yet.`
            : null,
        );
        render();
      },
      setWindow(value) {
        timeWindow = value;
      },
    };
  },
};

function compare(a, b) {
  if (a === b) return 0;
  if (a === null || a === undefined) return -1;
  if (b === null || b === undefined) return 1;
  return typeof a === "string" ? a.localeCompare(b) : a - b;
}
