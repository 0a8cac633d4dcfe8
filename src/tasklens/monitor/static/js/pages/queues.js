// Queues: current counts, depth history per queue, and the dead-letter browser with its actions.

import { ApiError, del, get, getToken, post } from "../api.js";
import { lineChart } from "../charts.js";
import { fill, h, panel, table } from "../dom.js";
import { ago, count, duration, shortId, time } from "../format.js";
import { banner, depthSeries, runsTable, STATE_COLORS } from "../widgets.js";
import { windowSeconds } from "./overview.js";

/** Dead letters per page of the browser. */
const DLQ_PAGE_SIZE = 25;
const STATES = ["ready", "delayed", "in_flight", "dead"];

export default {
  title: () => "Queues",
  mount(root, context) {
    let timeWindow = context.window;
    let queues = [];
    const dlq = {
      queue: context.query.get("dlq") || "",
      offset: 0,
      page: null,
      selected: new Set(),
      inspected: null,
      armed: null,
      loads: 0,
    };

    const readNotice = h("div", { id: "queues-notice" });
    const counts = h("div", { id: "queue-counts" });
    const historyPanel = h("div.grid-2", { id: "depth-history" });
    const queuePicker = h("select", { id: "dlq-queue", "aria-label": "Dead-letter queue", onchange: () => chooseQueue(queuePicker.value) });
    const resetRetries = h("input", { type: "checkbox", id: "dlq-reset-retries" });
    const outcome = h("div.action-outcome", { id: "dlq-outcome", "aria-live": "polite" });
    const letters = h("div", { id: "dlq-list" });
    const inspector = h("div", { id: "dlq-inspect" });
    const pager = h("div.pager");
    const buttons = {
      requeue: h("button", { type: "button", id: "dlq-requeue", onclick: () => requeue(false) }, "Requeue selected"),
      remove: h("button.danger", { type: "button", id: "dlq-delete", onclick: () => confirmThen("delete", removeSelected) }, "Delete selected"),
      requeueAll: h("button.secondary", { type: "button", id: "dlq-requeue-all", onclick: () => confirmThen("requeueAll", () => requeue(true)) }, "Requeue all"),
      purge: h("button.danger", { type: "button", id: "dlq-purge", onclick: () => confirmThen("purge", purge) }, "Purge"),
    };
    const tokenHint = h("span.muted", { id: "dlq-token-hint" });

    fill(
      root,
      h("h1", null, "Queues & dead letters"),
      readNotice,
      panel("Queues now", counts),
      h("h2.section", null, "Depth history"),
      historyPanel,
      h(
        "section.panel",
        { id: "dlq" },
        h("h2", null, "Dead letters"),
        h(
          "div.dlq-toolbar",
          null,
          h("label", null, "Queue ", queuePicker),
          buttons.requeue,
          buttons.remove,
          h("label.checkbox", null, resetRetries, " reset retry count"),
          h("span.spacer"),
          buttons.requeueAll,
          buttons.purge,
        ),
        tokenHint,
        outcome,
        letters,
        pager,
        inspector,
      ),
    );

    function showTokenHint() {
      fill(
        tokenHint,
        getToken()
          ? "Actions send the API token saved in this browser (top right)."
          : "Actions need the monitor's API token: enter it at the top right.",
      );
    }
    document.addEventListener("tasklens:token", showTokenHint);

    function chooseQueue(name) {
      dlq.queue = name;
      dlq.offset = 0;
      dlq.selected.clear();
      dlq.inspected = null;
      dlq.armed = null;
      const url = new URL(location.href);
      url.searchParams.set("dlq", name);
      history.replaceState(null, "", url);
      fill(inspector);
      fill(outcome);
      loadLetters().catch(showReadError);
    }

    function renderCounts() {
      fill(
        counts,
        table(
          [
            "Queue",
            { label: "Ready", className: "num" },
            { label: "Delayed", className: "num" },
            { label: "In flight", className: "num" },
            { label: "Dead", className: "num" },
            { label: "Oldest ready", className: "num" },
            { label: "Consumers", className: "num" },
            "",
          ],
          queues.map((q) => [
            [q.name, "mono"],
            [count(q.ready), "num"],
            [count(q.delayed), "num"],
            [count(q.in_flight), "num"],
            [count(q.dead), q.dead ? "num error" : "num"],
            [q.oldest_age ? duration(q.oldest_age) : "—", "num"],
            [count(q.consumers), "num"],
            q.dead ? h("button.link", { type: "button", onclick: () => ((queuePicker.value = q.name), chooseQueue(q.name)) }, "Dead letters") : "",
          ]),
          { empty: "The broker has no queues yet." },
        ),
      );
      const names = queues.map((q) => q.name);
      if (dlq.queue && !names.includes(dlq.queue)) names.push(dlq.queue);
      if (!dlq.queue) dlq.queue = (queues.find((q) => q.dead) || queues[0] || {}).name || "";
      fill(queuePicker, names.map((name) => h("option", { value: name }, name)));
      queuePicker.value = dlq.queue;
    }

    function renderHistory(items) {
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
      const range = [now - windowSeconds(timeWindow), now];
      const charts = names.map((name) => [name, h("div", { dataset: { queue: name } })]);
      fill(historyPanel, charts.map(([name, chart]) => h("section.panel", null, h("h3.queue-name.mono", null, name), chart)));
      // Charts measure their container, so they are drawn once it is in the page.
      for (const [name, chart] of charts) {
        const series = depthSeries(byQueue.get(name) || [], { limit: STATES.length })
          .map((s) => ({ ...s, label: s.state, color: STATE_COLORS[s.state] }))
          .sort((a, b) => STATES.indexOf(a.label) - STATES.indexOf(b.label));
        lineChart(chart, { series, range, format: count, integer: true, legend: true, height: 140, empty: "Empty over this window." });
      }
    }

    async function loadLetters() {
      if (!dlq.queue) {
        fill(letters, h("p.muted", null, "No queue to browse."));
        return;
      }
      // A poll that started before an action may answer after it: only the latest load renders.
      const load = ++dlq.loads;
      let page;
      try {
        page = await get(`/api/queues/${encodeURIComponent(dlq.queue)}/dead-letters`, {
          offset: dlq.offset,
          limit: DLQ_PAGE_SIZE,
        });
      } catch (error) {
        // A queue whose messages are all gone has no keys left on Redis: nothing is dead there.
        if (!(error instanceof ApiError && error.status === 404)) throw error;
        page = { items: [], total: 0, offset: 0, limit: DLQ_PAGE_SIZE };
      }
      if (load !== dlq.loads) return;
      dlq.page = page;
      const ids = new Set(page.items.map((l) => l.message_id));
      for (const id of [...dlq.selected]) if (!ids.has(id)) dlq.selected.delete(id);
      renderLetters();
    }

    function renderLetters() {
      const page = dlq.page;
      const allBox = h("input", {
        type: "checkbox",
        "aria-label": "Select all on this page",
        checked: page.items.length > 0 && page.items.every((l) => dlq.selected.has(l.message_id)),
        onchange: (event) => {
          for (const l of page.items) event.target.checked ? dlq.selected.add(l.message_id) : dlq.selected.delete(l.message_id);
          renderLetters();
        },
      });
      const withErrors = page.items.some((letter) => letter.traceback);
      const rows = page.items.map((letter) =>
        h(
          "tr",
          { dataset: { messageId: letter.message_id }, class: dlq.inspected === letter.message_id ? "selected" : null },
          h(
            "td",
            null,
            h("input", {
              type: "checkbox",
              "aria-label": `Select ${letter.message_id}`,
              checked: dlq.selected.has(letter.message_id),
              onchange: (event) => {
                event.target.checked ? dlq.selected.add(letter.message_id) : dlq.selected.delete(letter.message_id);
                updateButtons();
              },
            }),
          ),
          h("td.mono", { title: letter.message_id }, shortId(letter.message_id, 13)),
          h("td", null, letter.actor),
          h("td.nowrap", { title: time(letter.died_at) }, letter.died_at ? ago(letter.died_at) : "—"),
          h("td.num", null, String(letter.retries)),
          // Redis keeps a dead letter as it was sent, without the traceback: "Inspect" shows its runs.
          withErrors ? h("td.error-line", null, lastLine(letter.traceback)) : null,
          h("td", null, h("button.link", { type: "button", onclick: () => inspect(letter.message_id) }, "Inspect")),
        ),
      );
      fill(
        letters,
        table([h("span", null, allBox), "Message id", "Actor", "Died", { label: "Retries", className: "num" }, withErrors ? "Error" : null, ""].filter(Boolean), rows, {
          empty: `No dead letters in ${dlq.queue}.`,
          className: "dlq",
        }),
      );
      const last = Math.min(page.offset + page.items.length, page.total);
      fill(
        pager,
        h("span.muted", null, page.total ? `${page.offset + 1}–${last} of ${count(page.total)}` : ""),
        page.offset > 0 ? h("button.secondary", { type: "button", onclick: () => turn(-1) }, "Newer") : null,
        last < page.total ? h("button.secondary", { type: "button", onclick: () => turn(1) }, "Older") : null,
      );
      updateButtons();
    }

    function updateButtons() {
      const none = dlq.selected.size === 0;
      buttons.requeue.disabled = none;
      buttons.remove.disabled = none;
      const empty = !dlq.page || dlq.page.total === 0;
      buttons.requeueAll.disabled = empty;
      buttons.purge.disabled = empty;
      buttons.requeue.textContent = none ? "Requeue selected" : `Requeue ${dlq.selected.size} selected`;
      buttons.remove.textContent =
        dlq.armed === "delete" ? `Confirm: delete ${dlq.selected.size}` : none ? "Delete selected" : `Delete ${dlq.selected.size} selected`;
      buttons.requeueAll.textContent = dlq.armed === "requeueAll" ? `Confirm: requeue all ${count(dlq.page?.total)}` : "Requeue all";
      buttons.purge.textContent = dlq.armed === "purge" ? `Confirm: purge ${count(dlq.page?.total)}` : "Purge";
    }

    function turn(direction) {
      dlq.offset = Math.max(0, dlq.offset + direction * DLQ_PAGE_SIZE);
      loadLetters().catch(showReadError);
    }

    async function inspect(messageId) {
      dlq.inspected = messageId;
      try {
        const [letter, attempts] = await Promise.all([
          get(`/api/queues/${encodeURIComponent(dlq.queue)}/dead-letters/${encodeURIComponent(messageId)}`),
          // The broker keeps the message as it was sent; why it failed is in its runs.
          get("/api/runs", { q: messageId, limit: 10 }).catch(() => ({ items: [] })),
        ]);
        const { traceback: tb, ...rest } = letter;
        const runs = (attempts.items || []).filter((run) => run.message_id === messageId);
        const otel = letter.options?.otel_context?.traceparent;
        const traceId = typeof otel === "string" ? otel.split("-")[1] : null;
        fill(
          inspector,
          h(
            "section.panel.inspected",
            null,
            h("h3.mono", null, `Dead letter ${letter.message_id}`),
            h(
              "dl.facts",
              null,
              h("dt", null, "Actor"),
              h("dd", null, letter.actor),
              h("dt", null, "Enqueued"),
              h("dd", null, time(letter.enqueued_at)),
              h("dt", null, "Died"),
              h("dd", null, time(letter.died_at)),
              h("dt", null, "Retries"),
              h("dd", null, String(letter.retries)),
              traceId ? [h("dt", null, "Trace"), h("dd", null, h("a.mono", { href: `/runs/${encodeURIComponent(traceId)}` }, traceId))] : null,
            ),
            h("h4", null, "Attempts"),
            runs.length
              ? runsTable(runs, { showActor: false })
              : h("p.muted", null, "No run of this message is in the store."),
            h("h4", null, "Arguments"),
            h("pre.json", null, JSON.stringify({ args: rest.args, kwargs: rest.kwargs }, null, 2)),
            h("h4", null, "Options"),
            h("pre.json", null, JSON.stringify(rest.options, null, 2)),
            tb ? [h("h4", null, "Traceback"), h("pre.traceback", null, tb)] : null,
          ),
        );
        renderLetters();
      } catch (error) {
        report("Inspect", error);
      }
    }

    function confirmThen(action, run) {
      if (dlq.armed === action) {
        dlq.armed = null;
        updateButtons();
        run();
        return;
      }
      dlq.armed = action;
      updateButtons();
      fill(outcome, banner("Click again to confirm; this cannot be undone.", "info"));
    }

    async function act(label, call, describe) {
      dlq.armed = null;
      updateButtons();
      try {
        const result = await call();
        fill(outcome, banner(describe(result), "ok"));
        dlq.selected.clear();
        await Promise.all([loadLetters(), loadQueues()]);
      } catch (error) {
        report(label, error);
      }
    }

    function report(label, error) {
      const text = error instanceof ApiError ? error.describe() : String(error.message || error);
      fill(outcome, banner(`${label} refused: ${text}`, "error"));
    }

    function requeue(all) {
      const body = all ? { all: true } : { message_ids: [...dlq.selected] };
      body.reset_retries = resetRetries.checked;
      return act(all ? "Requeue all" : "Requeue", () => post(`/api/queues/${encodeURIComponent(dlq.queue)}/dead-letters/requeue`, body), (r) =>
        `Requeued ${plural(r.requeued, "message")} to ${dlq.queue}.`,
      );
    }

    function removeSelected() {
      const body = { message_ids: [...dlq.selected] };
      return act("Delete", () => post(`/api/queues/${encodeURIComponent(dlq.queue)}/dead-letters/delete`, body), (r) =>
        `Deleted ${plural(r.deleted, "dead letter")}.`,
      );
    }

    function purge() {
      return act("Purge", () => del(`/api/queues/${encodeURIComponent(dlq.queue)}/dead-letters`), (r) =>
        `Purged ${plural(r.purged, "dead letter")} from ${dlq.queue}.`,
      );
    }

    async function loadQueues() {
      const data = await get("/api/queues");
      queues = data.queues || [];
      renderCounts();
    }

    function showReadError(error) {
      const text = error instanceof ApiError ? error.describe() : String(error.message || error);
      const hint = error instanceof ApiError && error.status === 401 ? " Enter the monitor's API token at the top right." : "";
      fill(readNotice, banner(`Could not read the broker: ${text}.${hint}`, "error"));
    }

    showTokenHint();
    return {
      poll: true,
      async refresh() {
        // A failure here is reported above the page by the shell, like on every page.
        await loadQueues();
        fill(readNotice);
        const [historyData] = await Promise.all([
          get("/api/queues/history", { window: timeWindow }).catch(() => ({ items: [] })),
          loadLetters(),
        ]);
        renderHistory(historyData.items || []);
      },
      setWindow(value) {
        timeWindow = value;
      },
    };
  },
};

function lastLine(traceback) {
  if (!traceback) return "—";
  const lines = String(traceback).trim().split("\n");
  return lines[lines.length - 1];
}

function plural(n, word) {
  return `${count(n)} ${word}${n === 1 ? "" : "s"}`;
}
