// Runs: every task execution, newest first, searchable and filterable; each opens its trace.

import { get } from "../api.js";
import { fill, h, panel } from "../dom.js";
import { count, windowSeconds } from "../format.js";
import { runsTable } from "../widgets.js";

/** Rows asked for per page. */
const PAGE_SIZE = 50;
/** How long the actor and queue choices are kept before they are read again, in milliseconds. */
const CHOICES_MAX_AGE_MS = 60_000;

export default {
  title: () => "Runs",
  mount(root, context) {
    const query = context.query;
    let items = [];
    let nextCursor = null;
    let browsingOlder = false;

    const search = h("input", {
      type: "search",
      name: "q",
      placeholder: "Message id, trace id, actor, exception…",
      "aria-label": "Search runs",
      value: query.get("q") || "",
    });
    const actor = h("select", { name: "actor", "aria-label": "Actor" }, h("option", { value: "" }, "All actors"));
    const queue = h("select", { name: "queue", "aria-label": "Queue" }, h("option", { value: "" }, "All queues"));
    const status = h(
      "select",
      { name: "status", "aria-label": "Status" },
      h("option", { value: "" }, "Any status"),
      h("option", { value: "ok" }, "Succeeded"),
      h("option", { value: "succeeded_after_retry" }, "Succeeded after retry"),
      h("option", { value: "error" }, "Failed (any attempt)"),
      h("option", { value: "retried" }, "Failed, retried"),
      h("option", { value: "dead_lettered" }, "Dead-lettered"),
      h("option", { value: "failed" }, "Failed, not retried"),
    );
    // The time range is the window picker's, in the top bar, as on every page.
    let timeWindow = context.window;
    const slower = h("input", {
      type: "number",
      name: "min_duration",
      min: 0,
      step: "any",
      placeholder: "ms",
      "aria-label": "Slower than (ms)",
      value: query.get("min_duration") || "",
    });
    const attempt = h("input", {
      type: "number",
      name: "min_attempt",
      min: 1,
      step: 1,
      placeholder: "≥",
      "aria-label": "Attempt at least",
      value: query.get("min_attempt") || "",
    });
    status.value = query.get("status") || "";
    const form = h(
      "form.filters",
      { role: "search", onsubmit: (event) => (event.preventDefault(), apply()) },
      h("label.grow", null, "Search", search),
      h("label", null, "Actor", actor),
      h("label", null, "Queue", queue),
      h("label", null, "Status", status),
      h("label.narrow", null, "Slower than (ms)", slower),
      h("label.narrow", null, "Attempt ≥", attempt),
      h("button", { type: "submit" }, "Search"),
    );
    for (const control of [actor, queue, status]) control.addEventListener("change", apply);
    const summary = h("div.summary", { id: "runs-summary" });
    const results = h("div", { id: "runs-table" });
    const more = h("button.secondary", { type: "button", hidden: true, onclick: loadMore }, "Load older runs");
    fill(root, h("h1", null, "Runs"), form, panel(null, summary, results, h("div.more", null, more)));

    async function loadChoices() {
      const data = await get("/api/actors", { window: "24h" });
      // Keep what is chosen (from the URL at first, from the user later) even when it is gone.
      const chosen = { actor: actor.value || query.get("actor") || "", queue: queue.value || query.get("queue") || "" };
      const actors = new Set(chosen.actor ? [chosen.actor] : []);
      const queues = new Set(chosen.queue ? [chosen.queue] : []);
      for (const item of data.items || []) {
        actors.add(item.actor);
        if (item.queue) queues.add(item.queue);
      }
      fill(actor, h("option", { value: "" }, "All actors"), [...actors].sort().map((a) => h("option", { value: a }, a)));
      fill(queue, h("option", { value: "" }, "All queues"), [...queues].sort().map((q) => h("option", { value: q }, q)));
      actor.value = chosen.actor;
      queue.value = chosen.queue;
    }

    function filters() {
      return {
        q: search.value.trim(),
        actor: actor.value,
        queue: queue.value,
        status: status.value,
        min_duration: slower.value,
        min_attempt: attempt.value,
      };
    }

    function apiQuery(cursor) {
      const f = filters();
      return {
        q: f.q,
        actor: f.actor,
        queue: f.queue,
        status: f.status,
        since: (Date.now() / 1000 - windowSeconds(timeWindow)).toFixed(3),
        limit: PAGE_SIZE,
        cursor,
      };
    }

    /** Duration and attempt are narrowed here, on the rows the API returned. */
    function narrow(rows) {
      const f = filters();
      const minSeconds = f.min_duration ? Number(f.min_duration) / 1000 : null;
      const minAttempt = f.min_attempt ? Number(f.min_attempt) : null;
      return rows.filter(
        (r) => (minSeconds === null || r.duration >= minSeconds) && (minAttempt === null || (r.attempt ?? 1) >= minAttempt),
      );
    }

    function render() {
      const shown = narrow(items);
      fill(
        summary,
        `${count(shown.length)} run${shown.length === 1 ? "" : "s"} shown from the last ${timeWindow}`,
        shown.length !== items.length ? ` (of ${count(items.length)} loaded)` : "",
        nextCursor ? ", more below" : "",
        browsingOlder ? " · live updates paused while older runs are shown" : "",
      );
      fill(results, runsTable(shown, { empty: "No runs match these filters." }));
      more.hidden = !nextCursor;
    }

    async function loadFirstPage() {
      const data = await get("/api/runs", apiQuery());
      items = data.items || [];
      nextCursor = data.next_cursor || null;
      render();
    }

    async function apply() {
      const url = new URL(location.href);
      url.search = "";
      for (const [key, value] of Object.entries(filters())) if (value) url.searchParams.set(key, value);
      url.searchParams.set("window", timeWindow);
      history.replaceState(null, "", url);
      browsingOlder = false;
      await loadFirstPage();
    }

    async function loadMore() {
      if (!nextCursor) return;
      more.disabled = true;
      try {
        const data = await get("/api/runs", apiQuery(nextCursor));
        items = items.concat(data.items || []);
        nextCursor = data.next_cursor || null;
        browsingOlder = true;
        render();
      } finally {
        more.disabled = false;
      }
    }

    let choicesLoadedAt = 0;
    return {
      poll: true,
      setWindow(value) {
        timeWindow = value;
        browsingOlder = false;
      },
      async refresh() {
        if (Date.now() - choicesLoadedAt > CHOICES_MAX_AGE_MS) {
          await loadChoices();
          choicesLoadedAt = Date.now();
        }
        if (!browsingOlder) await loadFirstPage();
      },
    };
  },
};
