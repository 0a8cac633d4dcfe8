// A run's trace as a waterfall: spans nested by parent on a shared time axis, the selected
// span's attributes, events and exception, and the trace's log lines.

import { ApiError, get, post } from "../api.js";
import { niceMax } from "../charts.js";
import { fill, h, href, panel, table } from "../dom.js";
import { duration, preciseTime, shortId } from "../format.js";
import { banner, statusBadge } from "../widgets.js";

const EXCEPTION_EVENT = "exception";

export default {
  title: (params) => `Trace ${shortId(params.traceId, 8)}`,
  mount(root, context) {
    const traceId = context.params.traceId;
    let selected = context.query.get("span");
    let trace = null;
    let signature = "";
    const collapsed = new Set();
    // What "Run again" answered, per span: kept across the re-renders polling causes.
    const reruns = new Map();

    const summary = h("div.stats", { id: "trace-summary" });
    const waterfall = h("div.waterfall", { id: "waterfall", role: "tree", "aria-label": "Spans of the trace" });
    const details = h("div", { id: "span-details" });
    const logs = h("div", { id: "trace-logs" });
    const notice = h("div");
    fill(
      root,
      h(
        "div.page-head",
        null,
        h("h1", null, h("a.crumb", { href: "/runs" }, "Runs"), " / Trace ", h("span.mono", { title: traceId }, shortId(traceId, 16))),
      ),
      notice,
      summary,
      panel("Waterfall", waterfall),
      panel("Span", details),
      panel("Log lines", logs),
    );

    function select(spanId) {
      selected = spanId;
      const url = new URL(location.href);
      url.searchParams.set("span", spanId);
      history.replaceState(null, "", url);
      render();
    }

    function render() {
      const spans = trace.spans || [];
      const byId = new Map(spans.map((s) => [s.span_id, s]));
      if (!byId.has(selected)) selected = defaultSpan(spans)?.span_id ?? null;
      const t0 = Math.min(...spans.map((s) => s.start));
      const t1 = Math.max(...spans.map((s) => s.end ?? s.start));
      const services = new Set(spans.map((s) => s.service).filter(Boolean));
      const rootSpan = ordered(spans)[0]?.span;
      const runs = spans.filter(isRun);
      const failedRuns = runs.filter((s) => normalStatus(s.status) === "ERROR");
      const outcome = outcomeOf(runs);
      fill(
        summary,
        statBlock("Root", rootSpan ? rootSpan.name : "—"),
        statBlock("Outcome", outcome.text, outcome.tone, "outcome"),
        statBlock("Attempts", runs.length ? `${runs.length} (${failedRuns.length} failed)` : "—", failedRuns.length ? "error" : null, "attempts"),
        statBlock("Duration", duration(t1 - t0)),
        statBlock("Spans", String(spans.length)),
        statBlock("Services", [...services].join(", ") || "—"),
        statBlock("Started", preciseTime(t0)),
      );
      renderWaterfall(spans, t0, t1);
      const span = byId.get(selected);
      fill(details, span ? spanDetails(span, t0) : h("p.muted", null, "Select a span."));
      renderLogs(t0);
    }

    function renderWaterfall(spans, t0, t1) {
      const total = niceMax(Math.max(t1 - t0, 1e-6));
      const offset = (t) => (((t - t0) / total) * 100).toFixed(3);
      const axis = h(
        "div.wf-row.wf-axis",
        null,
        h("div.wf-label", null, "Span"),
        h(
          "div.wf-track",
          null,
          [0, 0.2, 0.4, 0.6, 0.8, 1].map((f) => h("span.wf-tick", { style: `left:${f * 100}%` }, f ? duration(total * f) : "0")),
        ),
      );
      const rows = [];
      let hiddenBelow = Infinity;
      for (const { span, depth, orphan, descendants } of ordered(spans)) {
        if (depth > hiddenBelow) continue;
        hiddenBelow = collapsed.has(span.span_id) ? depth : Infinity;
        rows.push(spanRow(span, depth, orphan, descendants, t0, total, offset));
      }
      fill(waterfall, axis, rows);
    }

    function toggle(spanId, open) {
      const isOpen = !collapsed.has(spanId);
      if (open === isOpen) return;
      if (isOpen) collapsed.add(spanId);
      else collapsed.delete(spanId);
      render();
      waterfall.querySelector(`[data-span-id="${CSS.escape(spanId)}"]`)?.focus();
    }

    function spanRow(span, depth, orphan, descendants, t0, total, offset) {
      const kind = normalKind(span.kind);
      const failed = normalStatus(span.status) === "ERROR";
      const exception = (span.events || []).find((e) => e.name === EXCEPTION_EVENT);
      const end = span.end ?? span.start;
      const bar = h(
        "div.wf-bar",
        {
          class: `kind-${kind.toLowerCase()}${failed ? " failed" : ""}`,
          style: `left:${offset(span.start)}%;width:max(2px, ${(((end - span.start) / total) * 100).toFixed(3)}%)`,
        },
        (span.events || []).map((event) =>
          h("span.wf-event", {
            class: event.name === EXCEPTION_EVENT ? "wf-event-exception" : null,
            style: `left:${end > span.start ? (((event.time - span.start) / (end - span.start)) * 100).toFixed(2) : 0}%`,
            title: `${event.name} at +${duration(event.time - t0)}`,
          }),
        ),
      );
      const folded = collapsed.has(span.span_id);
      return h(
        "div.wf-row",
        {
          role: "treeitem",
          tabindex: 0,
          "aria-level": depth + 1,
          "aria-selected": span.span_id === selected ? "true" : "false",
          "aria-expanded": descendants ? String(!folded) : null,
          class: span.span_id === selected ? "selected" : null,
          dataset: { spanId: span.span_id, status: normalStatus(span.status).toLowerCase() },
          onclick: () => select(span.span_id),
          onkeydown: (event) => {
            if (event.key === "Enter" || event.key === " ") {
              event.preventDefault();
              select(span.span_id);
            } else if (descendants && (event.key === "ArrowLeft" || event.key === "ArrowRight")) {
              event.preventDefault();
              toggle(span.span_id, event.key === "ArrowRight");
            }
          },
        },
        h(
          "div.wf-label",
          { style: `padding-left:${4 + depth * 16}px`, title: [span.name, taskName(span), isRun(span) ? `attempt ${attemptOf(span)}` : null].filter(Boolean).join(" · ") },
          descendants
            ? h(
                "button.wf-toggle",
                {
                  type: "button",
                  tabindex: -1,
                  "aria-label": folded ? `Show ${descendants} nested spans` : "Hide nested spans",
                  onclick: (event) => {
                    event.stopPropagation();
                    toggle(span.span_id);
                  },
                },
                folded ? "▸" : "▾",
              )
            : h("span.wf-toggle-space"),
          h("span.kind", { class: `kind-${kind.toLowerCase()}` }, KIND_LABELS[kind] || kind),
          h("span.wf-name", null, span.name),
          taskName(span) ? h("span.wf-actor", { title: "actor" }, taskName(span)) : null,
          isRun(span) ? h("span.wf-attempt", { title: "attempt" }, `attempt ${attemptOf(span)}`) : null,
          eventLabel(span),
          span.service ? h("span.wf-service", null, span.service) : null,
          orphan ? h("span.wf-orphan", { title: "Its parent span was not received." }, "parent missing") : null,
          exception || failed ? errorLabel(exception) : null,
          folded ? h("span.wf-folded", null, `+${descendants}`) : null,
        ),
        h("div.wf-track", null, bar, h("span.wf-duration", { style: `left:calc(${offset(end)}% + 4px)` }, duration(end - span.start))),
      );
    }

    function spanDetails(span, t0) {
      const exceptions = (span.events || []).filter((e) => e.name === EXCEPTION_EVENT);
      const others = (span.events || []).filter((e) => e.name !== EXCEPTION_EVENT);
      const attributes = Object.entries(span.attributes || {}).sort(([a], [b]) => a.localeCompare(b));
      return h(
        "div.span-details",
        null,
        h(
          "div.span-title",
          null,
          h("h3", null, span.name),
          statusBadge(normalStatus(span.status)),
          span.status_message ? h("span.status-message", null, span.status_message) : null,
        ),
        rerunnable(span) ? runAgain(span) : null,
        h(
          "dl.facts",
          null,
          fact("Kind", normalKind(span.kind)),
          fact("Service", span.service || "—"),
          fact("Start", `${preciseTime(span.start)} (+${duration(span.start - t0)})`),
          fact("Duration", duration((span.end ?? span.start) - span.start)),
          fact("Span id", span.span_id, true),
          fact("Parent", span.parent_span_id || "—", true),
          (span.links || []).length
            ? fact(
                "Links",
                span.links.map((l) => h("a.mono", { href: href(["runs", l.trace_id], { span: l.span_id }) }, shortId(l.trace_id, 16))),
              )
            : null,
        ),
        exceptions.map((event) => exceptionBox(event)),
        h("h4", null, "Attributes"),
        table(
          ["Name", "Value"],
          attributes.map(([key, value]) => [[key, "mono key"], [printable(value), "mono value"]]),
          { empty: "No attributes.", className: "attributes" },
        ),
        others.length
          ? [
              h("h4", null, "Events"),
              table(
                ["Time", "Event", "Attributes"],
                others.map((event) => [
                  [`+${duration(event.time - t0)}`, "num nowrap"],
                  [event.name, "mono"],
                  [attributeList(event.attributes), "mono"],
                ]),
                { className: "events" },
              ),
            ]
          : null,
      );
    }

    /** A failed Celery run: the monitor can send its task again with the same arguments. */
    function rerunnable(span) {
      const a = span.attributes || {};
      return normalKind(span.kind) === "CONSUMER" && normalStatus(span.status) === "ERROR" && a["messaging.system"] === "celery";
    }

    function runAgain(span) {
      const outcome = reruns.get(span.span_id);
      const result = h("span.run-again-result", { id: "run-again-result", role: "status", class: outcome?.tone ? `tone-${outcome.tone}` : null }, outcome?.text || "");
      const button = h(
        "button",
        {
          type: "button",
          id: "run-again",
          disabled: outcome && outcome.tone !== "error" ? true : null,
          title: "Send this task again with its original arguments (needs the API token).",
          onclick: async () => {
            button.disabled = true;
            reruns.set(span.span_id, { text: "Sending…" });
            fill(result, "Sending…");
            try {
              const sent = await post(`/api/runs/${encodeURIComponent(traceId)}/${encodeURIComponent(span.span_id)}/run-again`);
              reruns.set(span.span_id, { text: `Sent again as task ${sent.task_id}.`, tone: "ok" });
            } catch (error) {
              reruns.set(span.span_id, { text: `Not sent: ${error.message}`, tone: "error" });
            }
            render();
          },
        },
        "Run again",
      );
      return h("div.run-again", null, button, " ", result);
    }

    function renderLogs(t0) {
      const lines = trace.logs || [];
      if (!lines.length) {
        fill(logs, h("p.muted", null, "No log lines were received for this trace."));
        return;
      }
      const rows = lines.map((line) =>
        h(
          "tr",
          { class: line.span_id && line.span_id === selected ? "highlight" : null },
          h("td.nowrap.mono", { title: preciseTime(line.time) }, `+${duration(line.time - t0)}`),
          h("td", null, h("span.severity", { class: `sev-${String(line.severity || "").toLowerCase()}` }, line.severity || "—")),
          h("td.log-body", null, printable(line.body)),
          h(
            "td.mono",
            null,
            line.span_id ? h("a", { href: "#", onclick: (event) => (event.preventDefault(), select(line.span_id)) }, shortId(line.span_id, 8)) : "—",
          ),
        ),
      );
      fill(logs, table(["Time", "Level", "Message", "Span"], rows, { className: "logs" }));
    }

    return {
      poll: true,
      usesWindow: false,
      async refresh() {
        let data;
        try {
          data = await get(`/api/traces/${encodeURIComponent(traceId)}`);
        } catch (error) {
          if (error instanceof ApiError && error.status === 404) {
            fill(notice, banner(`Trace ${traceId} is not in the store (yet, or any more).`, "info"));
            return;
          }
          throw error;
        }
        fill(notice);
        const next = `${(data.spans || []).map((s) => `${s.span_id}:${s.end}`).join(",")}|${(data.logs || []).length}`;
        if (next === signature) return;
        signature = next;
        trace = data;
        if (!(trace.spans || []).length) {
          fill(notice, banner("This trace has no spans.", "info"));
          return;
        }
        render();
      },
    };
  },
};

const KIND_LABELS = { SERVER: "server", CLIENT: "client", PRODUCER: "send", CONSUMER: "process", INTERNAL: "internal" };

function normalKind(kind) {
  return String(kind || "INTERNAL").replace(/^SPAN_KIND_/, "").toUpperCase();
}

function normalStatus(status) {
  return String(status || "UNSET").replace(/^STATUS_CODE_/, "").toUpperCase();
}

/** Spans depth-first, children in start order; spans whose parent is absent become roots. */
function ordered(spans) {
  const ids = new Set(spans.map((s) => s.span_id));
  const children = new Map();
  const roots = [];
  for (const span of [...spans].sort((a, b) => a.start - b.start)) {
    if (span.parent_span_id && ids.has(span.parent_span_id)) {
      if (!children.has(span.parent_span_id)) children.set(span.parent_span_id, []);
      children.get(span.parent_span_id).push(span);
    } else {
      roots.push(span);
    }
  }
  const result = [];
  const visit = (span, depth) => {
    const entry = { span, depth, orphan: depth === 0 && Boolean(span.parent_span_id), descendants: 0 };
    result.push(entry);
    for (const child of children.get(span.span_id) || []) entry.descendants += 1 + visit(child, depth + 1);
    return entry.descendants;
  };
  for (const rootSpan of roots) visit(rootSpan, 0);
  return result;
}

/** The span to show first: the first one that raised, else the first failed one, else the root. */
function defaultSpan(spans) {
  return (
    spans.find((s) => (s.events || []).some((e) => e.name === EXCEPTION_EVENT)) ||
    spans.find((s) => normalStatus(s.status) === "ERROR") ||
    ordered(spans)[0]?.span
  );
}

function exceptionType(event) {
  return event.attributes?.["exception.type"];
}

/** The exception's class name without its module, the full name in the tooltip. */
function errorLabel(exception) {
  const full = exception ? exceptionType(exception) : null;
  return h("span.wf-error", { title: full || "failed" }, full ? full.split(".").pop() : "error");
}

function exceptionBox(event) {
  const a = event.attributes || {};
  return h(
    "div.exception",
    { role: "group", "aria-label": "Exception" },
    h("div.exception-head", null, h("strong.exception-type", null, a["exception.type"] || "Exception"), a["exception.message"] ? `: ${a["exception.message"]}` : ""),
    a["exception.stacktrace"] ? h("pre.traceback", null, String(a["exception.stacktrace"])) : null,
  );
}

function statBlock(label, value, tone, name = null) {
  return h(
    "div.stat",
    { class: tone ? `tone-${tone}` : null, dataset: name ? { stat: name } : null },
    h("div.stat-label", null, label),
    h("div.stat-value.small", null, value),
  );
}

/** Attribute names of the task a span sends or runs, and of its retries so far, per library. */
const TASK_NAME_KEYS = ["dramatiq.actor.name", "celery.task.name"];
const RETRIES_KEYS = ["dramatiq.message.retries", "celery.task.retries"];
const MESSAGE_ID_KEY = "messaging.message.id";
// The events tasklens.semconv names for a scheduled retry and a dead-lettering.
const RETRY_EVENTS = ["dramatiq.retry.scheduled"];
const DEAD_EVENTS = ["dramatiq.message.dead_lettered"];

function firstAttribute(span, keys) {
  for (const key of keys) {
    const value = span.attributes?.[key];
    if (value !== undefined && value !== null && value !== "") return value;
  }
  return null;
}

function taskName(span) {
  return firstAttribute(span, TASK_NAME_KEYS);
}

/** A task's execution: the consumer span of a process operation. */
function isRun(span) {
  const operation = span.attributes?.["messaging.operation.type"] ?? span.attributes?.["messaging.operation.name"];
  return normalKind(span.kind) === "CONSUMER" && (operation === "process" || taskName(span) !== null);
}

function attemptOf(span) {
  const retries = Number(firstAttribute(span, RETRIES_KEYS) ?? 0);
  return Number.isFinite(retries) ? retries + 1 : 1;
}

function hasEvent(span, names) {
  return (span.events || []).some((event) => names.includes(event.name));
}

/** "retried" or "dead-lettered" next to a failed run. */
function eventLabel(span) {
  if (!isRun(span)) return null;
  if (hasEvent(span, DEAD_EVENTS)) return h("span.badge.status-error", { dataset: { state: "dead_lettered" } }, "dead-lettered");
  if (hasEvent(span, RETRY_EVENTS)) return h("span.badge.status-retried", { dataset: { state: "retried" } }, "retried");
  return null;
}

/** How the trace's messages ended, from their last runs. */
function outcomeOf(runs) {
  if (!runs.length) return { text: "—", tone: null };
  const byMessage = new Map();
  for (const run of [...runs].sort((a, b) => a.start - b.start)) {
    const id = run.attributes?.[MESSAGE_ID_KEY] || run.span_id;
    if (!byMessage.has(id)) byMessage.set(id, []);
    byMessage.get(id).push(run);
  }
  const ends = [...byMessage.values()].map((attempts) => {
    const last = attempts[attempts.length - 1];
    if (normalStatus(last.status) !== "ERROR") return attempts.length > 1 || attemptOf(last) > 1 ? "succeeded after retry" : "succeeded";
    if (hasEvent(last, DEAD_EVENTS)) return "dead-lettered";
    if (hasEvent(last, RETRY_EVENTS)) return "retry pending";
    return "failed";
  });
  const tally = new Map();
  for (const end of ends) tally.set(end, (tally.get(end) || 0) + 1);
  const text =
    ends.length === 1 ? ends[0] : [...tally.entries()].map(([end, n]) => `${n} ${end}`).join(", ");
  const tone = ends.some((end) => end === "dead-lettered" || end === "failed") ? "error" : ends.includes("retry pending") ? "warn" : "ok";
  return { text, tone };
}

function fact(label, value, mono = false) {
  return [h("dt", null, label), h("dd", { class: mono ? "mono" : null }, value)];
}

function attributeList(attributes) {
  const entries = Object.entries(attributes || {});
  if (!entries.length) return "—";
  return entries.map(([k, v]) => `${k}=${printable(v)}`).join("  ");
}

/** Attribute values as text: strings as they are, everything else as JSON. */
function printable(value) {
  if (typeof value === "string") return value;
  if (value === null || value === undefined) return "—";
  return JSON.stringify(value);
}
