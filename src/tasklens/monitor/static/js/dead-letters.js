// The dead-letter browser: list a queue's dead letters, inspect one, requeue, delete or purge
// them through the monitor's API with the token saved in this browser.

import { ApiError, del, get, getToken, post } from "./api.js";
import { fill, h, table } from "./dom.js";
import { ago, count, shortId, time } from "./format.js";
import { banner, runsTable } from "./widgets.js";

/** Dead letters per page. */
const PAGE_SIZE = 25;

/**
 * Build the browser.
 * @param {{queue: string, onAction: () => Promise<void>}} options
 *   queue: the queue shown first ("" for the first with dead letters);
 *   onAction: called after an action succeeded (to refresh the queue counts).
 * @returns {{element: HTMLElement, setQueues: (queues: object[]) => void, refresh: () => Promise<void>}}
 */
export function deadLetterBrowser({ queue = "", onAction }) {
  const state = {
    queue,
    offset: 0,
    page: null,
    waiting: null,
    selected: new Set(),
    inspected: null,
    armed: null,
    loads: 0,
    // Null until the monitor says; a reason (text) when it refuses every action.
    actionsOff: null,
  };

  const picker = h("select", { id: "dlq-queue", "aria-label": "Dead-letter queue", onchange: () => choose(picker.value) });
  const resetRetries = h("input", { type: "checkbox", id: "dlq-reset-retries" });
  const outcome = h("div.action-outcome", { id: "dlq-outcome", "aria-live": "polite" });
  const letters = h("div", { id: "dlq-list" });
  const inspector = h("div", { id: "dlq-inspect" });
  const arrivals = h("div.dlq-new", { id: "dlq-new", "aria-live": "polite" });
  const pager = h("div.pager");
  const tokenHint = h("span.muted", { id: "dlq-token-hint" });
  const buttons = {
    requeue: h("button", { type: "button", id: "dlq-requeue", onclick: () => requeue(false) }, "Requeue selected"),
    remove: h("button.danger", { type: "button", id: "dlq-delete", onclick: () => confirmThen("delete", removeSelected) }, "Delete selected"),
    requeueAll: h("button.secondary", { type: "button", id: "dlq-requeue-all", onclick: () => confirmThen("requeueAll", () => requeue(true)) }, "Requeue all"),
    purge: h("button.danger", { type: "button", id: "dlq-purge", onclick: () => confirmThen("purge", purge) }, "Purge"),
  };
  const element = h(
    "section.panel",
    { id: "dlq" },
    h("h2", null, "Dead letters"),
    h(
      "div.dlq-toolbar",
      null,
      h("label", null, "Queue ", picker),
      buttons.requeue,
      buttons.remove,
      h("label.checkbox", null, resetRetries, " reset retry count"),
      h("span.spacer"),
      buttons.requeueAll,
      buttons.purge,
    ),
    tokenHint,
    outcome,
    // The inspected letter opens above the list, where the click was, not below 25 rows.
    inspector,
    arrivals,
    letters,
    pager,
  );

  const showTokenHint = () =>
    fill(
      tokenHint,
      state.actionsOff
        ? `Actions are off: ${state.actionsOff}.`
        : getToken()
          ? "Actions send the API token saved in this browser (top right)."
          : "Actions need the monitor's API token: enter it at the top right.",
    );
  document.addEventListener("tasklens:token", showTokenHint);
  showTokenHint();

  /** Ask once whether this monitor allows actions at all (it refuses them without a token). */
  async function loadCapabilities() {
    if (state.actionsOff !== null) return;
    try {
      const monitor = await get("/api/monitor");
      state.actionsOff = monitor.dead_letter_actions ? "" : monitor.reason || "this monitor refuses dead-letter actions";
    } catch {
      // Without the route (no store) the buttons stay on and the API's answer says why.
      state.actionsOff = "";
    }
    showTokenHint();
    updateButtons();
  }

  const path = (...rest) => ["/api/queues", state.queue, "dead-letters", ...rest].map((p, i) => (i ? encodeURIComponent(p) : p)).join("/");

  /** Offer the broker's queues; the first with dead letters is shown unless one was chosen. */
  function setQueues(queues) {
    const names = queues.map((q) => q.name);
    if (state.queue && !names.includes(state.queue)) names.push(state.queue);
    if (!state.queue) state.queue = (queues.find((q) => q.dead) || queues[0] || {}).name || "";
    fill(picker, names.map((name) => h("option", { value: name }, name)));
    picker.value = state.queue;
  }

  function choose(name) {
    Object.assign(state, { queue: name, offset: 0, inspected: null, armed: null, waiting: null });
    state.selected.clear();
    const url = new URL(location.href);
    url.searchParams.set("dlq", name);
    history.replaceState(null, "", url);
    picker.value = name;
    fill(inspector);
    fill(outcome);
    refresh({ force: true }).catch((error) => report("Reading dead letters", error));
  }

  /**
   * Read the page again. While a letter is inspected or rows are selected, letters that arrive
   * do not move the rows under the user: they are announced, and shown on request.
   */
  async function refresh({ force = false } = {}) {
    await loadCapabilities();
    if (!state.queue) {
      fill(letters, h("p.muted", null, "No queue to browse."));
      return;
    }
    // A poll that started before an action may answer after it: only the latest load renders.
    const load = ++state.loads;
    let page;
    try {
      page = await get(path(), { offset: state.offset, limit: PAGE_SIZE });
    } catch (error) {
      // A queue whose messages are all gone has no keys left on Redis: nothing is dead there.
      if (!(error instanceof ApiError && error.status === 404)) throw error;
      page = { items: [], total: 0, offset: 0, limit: PAGE_SIZE };
    }
    if (load !== state.loads) return;
    const holding = !force && state.page && (state.inspected || state.selected.size) && !samePage(state.page, page);
    if (holding) {
      state.waiting = page;
      const added = page.total - state.page.total;
      fill(
        arrivals,
        banner(
          added > 0 ? `${plural(added, "new dead letter")} since this list was shown.` : "The dead letters changed since this list was shown.",
          "info",
        ),
        h("button.secondary", { type: "button", onclick: () => showWaiting() }, "Show them"),
      );
      return;
    }
    state.page = page;
    state.waiting = null;
    fill(arrivals);
    const ids = new Set(page.items.map((l) => l.message_id));
    for (const id of [...state.selected]) if (!ids.has(id)) state.selected.delete(id);
    render();
  }

  function showWaiting() {
    if (!state.waiting) return;
    state.page = state.waiting;
    state.waiting = null;
    fill(arrivals);
    render();
  }

  function render() {
    const page = state.page;
    const allBox = h("input", {
      type: "checkbox",
      "aria-label": "Select all on this page",
      checked: page.items.length > 0 && page.items.every((l) => state.selected.has(l.message_id)),
      onchange: (event) => {
        for (const l of page.items) event.target.checked ? state.selected.add(l.message_id) : state.selected.delete(l.message_id);
        render();
      },
    });
    // Redis keeps a dead letter as it was sent, without the traceback: "Inspect" shows its runs.
    const withErrors = page.items.some((letter) => letter.traceback);
    const rows = page.items.map((letter) =>
      h(
        "tr",
        { dataset: { messageId: letter.message_id }, class: state.inspected === letter.message_id ? "selected" : null },
        h(
          "td",
          null,
          h("input", {
            type: "checkbox",
            "aria-label": `Select ${letter.message_id}`,
            checked: state.selected.has(letter.message_id),
            onchange: (event) => {
              event.target.checked ? state.selected.add(letter.message_id) : state.selected.delete(letter.message_id);
              updateButtons();
            },
          }),
        ),
        h("td.mono", { title: letter.message_id }, shortId(letter.message_id, 13)),
        h("td", null, letter.actor),
        h("td.nowrap", { title: time(letter.died_at) }, letter.died_at ? ago(letter.died_at) : "—"),
        h("td.num", null, String(letter.retries)),
        withErrors ? h("td.error-line", null, lastLine(letter.traceback)) : null,
        h("td", null, h("button.link", { type: "button", onclick: () => inspect(letter.message_id) }, "Inspect")),
      ),
    );
    const columns = [allBox, "Message id", "Actor", "Died", { label: "Retries", className: "num" }, withErrors ? "Error" : null, ""];
    fill(letters, table(columns.filter((c) => c !== null), rows, { empty: `No dead letters in ${state.queue}.`, className: "dlq" }));
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
    const chosen = state.selected.size;
    const total = state.page?.total ?? 0;
    const off = Boolean(state.actionsOff);
    buttons.requeue.disabled = off || !chosen;
    buttons.remove.disabled = off || !chosen;
    buttons.requeueAll.disabled = off || !total;
    buttons.purge.disabled = off || !total;
    for (const button of Object.values(buttons)) button.title = off ? `Actions are off: ${state.actionsOff}` : "";
    buttons.requeue.textContent = chosen ? `Requeue ${chosen} selected` : "Requeue selected";
    buttons.remove.textContent = state.armed === "delete" ? `Confirm: delete ${chosen}` : chosen ? `Delete ${chosen} selected` : "Delete selected";
    buttons.requeueAll.textContent = state.armed === "requeueAll" ? `Confirm: requeue all ${count(total)}` : "Requeue all";
    buttons.purge.textContent = state.armed === "purge" ? `Confirm: purge ${count(total)}` : "Purge";
  }

  function turn(direction) {
    state.offset = Math.max(0, state.offset + direction * PAGE_SIZE);
    refresh({ force: true }).catch((error) => report("Reading dead letters", error));
  }

  async function inspect(messageId) {
    state.inspected = messageId;
    try {
      const [letter, attempts] = await Promise.all([
        get(path(messageId)),
        // The broker keeps the message as it was sent; why it failed is in its runs.
        get("/api/runs", { q: messageId, limit: 10 }).catch(() => ({ items: [] })),
      ]);
      fill(inspector, letterDetails(letter, (attempts.items || []).filter((run) => run.message_id === messageId)));
      render();
      inspector.scrollIntoView({ block: "nearest" });
    } catch (error) {
      report("Inspect", error);
    }
  }

  /** Destructive actions take a second click on the same button. */
  function confirmThen(action, run) {
    if (state.armed === action) {
      state.armed = null;
      updateButtons();
      run();
      return;
    }
    state.armed = action;
    updateButtons();
    fill(outcome, banner("Click again to confirm; this cannot be undone.", "info"));
  }

  async function act(label, call, describe) {
    state.armed = null;
    updateButtons();
    try {
      const result = await call();
      fill(outcome, banner(describe(result), "ok"));
      state.selected.clear();
      await Promise.all([refresh({ force: true }), onAction()]);
    } catch (error) {
      report(label, error);
    }
  }

  function report(label, error) {
    const text = error instanceof ApiError ? error.describe() : String(error.message || error);
    fill(outcome, banner(`${label} refused: ${text}`, "error"));
  }

  function requeue(all) {
    const body = all ? { all: true } : { message_ids: [...state.selected] };
    body.reset_retries = resetRetries.checked;
    const queueName = state.queue;
    return act(all ? "Requeue all" : "Requeue", () => post(path("requeue"), body), (r) => `Requeued ${plural(r.requeued, "message")} to ${queueName}.`);
  }

  function removeSelected() {
    const body = { message_ids: [...state.selected] };
    return act("Delete", () => post(path("delete"), body), (r) => `Deleted ${plural(r.deleted, "dead letter")}.`);
  }

  function purge() {
    const queueName = state.queue;
    return act("Purge", () => del(path()), (r) => `Purged ${plural(r.purged, "dead letter")} from ${queueName}.`);
  }

  return { element, setQueues, refresh };
}

/** One dead letter: when and why it died, its attempts, arguments and options. */
function letterDetails(letter, runs) {
  const traceparent = letter.options?.otel_context?.traceparent;
  const traceId = typeof traceparent === "string" ? traceparent.split("-")[1] : null;
  const facts = [
    ["Actor", letter.actor],
    ["Enqueued", time(letter.enqueued_at)],
    ["Died", time(letter.died_at)],
    ["Retries", String(letter.retries)],
  ];
  return h(
    "section.panel.inspected",
    null,
    h("h3.mono", null, `Dead letter ${letter.message_id}`),
    h(
      "dl.facts",
      null,
      facts.map(([label, value]) => [h("dt", null, label), h("dd", null, value)]),
      traceId ? [h("dt", null, "Trace"), h("dd", null, h("a.mono", { href: `/runs/${encodeURIComponent(traceId)}` }, traceId))] : null,
    ),
    h("h4", null, "Attempts"),
    runs.length ? runsTable(runs, { showActor: false }) : h("p.muted", null, "No run of this message is in the store."),
    h("h4", null, "Arguments"),
    h("pre.json", null, JSON.stringify({ args: letter.args, kwargs: letter.kwargs }, null, 2)),
    h("h4", null, "Options"),
    h("pre.json", null, JSON.stringify(letter.options, null, 2)),
    letter.traceback ? [h("h4", null, "Traceback"), h("pre.traceback", null, letter.traceback)] : null,
  );
}

/** Whether two reads of a page list the same letters in the same order. */
function samePage(a, b) {
  return a.total === b.total && a.items.length === b.items.length && a.items.every((l, i) => l.message_id === b.items[i].message_id);
}

function lastLine(traceback) {
  if (!traceback) return "—";
  const lines = String(traceback).trim().split("\n");
  return lines[lines.length - 1];
}

function plural(n, word) {
  return `${count(n)} ${word}${n === 1 ? "" : "s"}`;
}
