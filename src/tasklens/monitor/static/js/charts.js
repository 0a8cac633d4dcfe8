// Small SVG time-series charts: lines (optionally filled), a shared time axis, a hover readout.

import { h, fill } from "./dom.js";

/** Colours given to series in order; chosen to stay apart for the common colour blindnesses. */
export const PALETTE = ["#3b7dd8", "#e8833a", "#2ca58d", "#c94f7c", "#8a6bd1", "#b8a22b", "#5b9bd5", "#9c6644"];
export const ERROR_COLOR = "#d64545";

const HEIGHT = 170;
const MARGIN = { top: 10, right: 12, bottom: 22, left: 52 };

/**
 * Draw a time-series chart into `container`, replacing what was there.
 * @param {HTMLElement} container
 * @param {{series: {label: string, color?: string, area?: boolean, partial?: boolean, points: [number, number|null][]}[],
 *          format?: (v: number) => string, height?: number, empty?: string, yMax?: number, gapAfter?: number}} options
 *   points are [unix seconds, value]; a null value leaves a gap, and so do two points further
 *   apart than `gapAfter` seconds (no reading in between is not a reading of 0). A `partial`
 *   series' last point is a bucket still filling: drawn dashed, as an estimate.
 */
export function lineChart(
  container,
  { series, format = String, height = HEIGHT, empty = "No data in this window.", yMax, range, integer = false, legend = null, gapAfter = Infinity },
) {
  container.classList.add("chart");
  const withData = series.filter((s) => s.points.some(([, v]) => v !== null && v !== undefined));
  if (!withData.length) {
    fill(container, h("div.chart-empty", { style: `height:${height}px` }, empty));
    return;
  }
  const width = Math.max(240, container.clientWidth || 480);
  const times = withData.flatMap((s) => s.points.map(([t]) => t));
  const values = withData.flatMap((s) => s.points.map(([, v]) => v)).filter((v) => v !== null && v !== undefined);
  // A shared range keeps the charts of one page aligned, however sparse a series is.
  const t0 = Math.min(...times, ...(range ? [range[0]] : []));
  const t1 = Math.max(...times, t0 + 1, ...(range ? [range[1]] : []));
  const highest = yMax ?? Math.max(...values, 0);
  // Counts never fall between integers: with fewer than 2 at the top, the half line would lie.
  const rounded = niceMax(Math.ceil(highest));
  // An odd top would put the middle line between two counts.
  const top = integer ? Math.max(2, rounded % 2 ? rounded + 1 : rounded) : niceMax(highest);
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const x = (t) => MARGIN.left + ((t - t0) / (t1 - t0)) * plotW;
  const y = (v) => MARGIN.top + plotH - (v / top) * plotH;

  const svg = h("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": withData.map((s) => s.label).join(", ") });
  for (const fraction of [0, 0.5, 1]) {
    const value = top * fraction;
    svg.appendChild(h("line.grid", { x1: MARGIN.left, x2: width - MARGIN.right, y1: y(value), y2: y(value) }));
    svg.appendChild(h("text.axis", { x: MARGIN.left - 6, y: y(value) + 4, "text-anchor": "end" }, format(value)));
  }
  for (const t of timeTicks(t0, t1, Math.max(2, Math.floor(plotW / 110)))) {
    svg.appendChild(h("text.axis", { x: x(t), y: height - 6, "text-anchor": "middle" }, clock(t, t1 - t0)));
  }
  const path = (run) => run.map(([t, v], i) => `${i ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join("");
  withData.forEach((s, index) => {
    const color = s.color || PALETTE[index % PALETTE.length];
    const lastT = Math.max(...s.points.map(([t]) => t));
    for (const run of runs(s.points, gapAfter)) {
      // The bucket still filling is an estimate: drawn dashed from the last complete one.
      const partial = s.partial && run.at(-1)[0] === lastT ? run.at(-1) : null;
      const solid = partial ? run.slice(0, -1) : run;
      if (s.area && solid.length) {
        const closed = `${path(solid)}L${x(solid.at(-1)[0]).toFixed(1)},${y(0)}L${x(solid[0][0]).toFixed(1)},${y(0)}Z`;
        svg.appendChild(h("path", { d: closed, fill: color, "fill-opacity": 0.15, stroke: "none" }));
      }
      if (solid.length) svg.appendChild(h("path", { d: path(solid), fill: "none", stroke: color, "stroke-width": 1.6 }));
      if (solid.length === 1) svg.appendChild(h("circle", { cx: x(solid[0][0]), cy: y(solid[0][1]), r: 2.5, fill: color }));
      if (partial) {
        const from = solid.length ? solid.at(-1) : partial;
        svg.appendChild(h("path.partial", { d: path([from, partial]), fill: "none", stroke: color, "stroke-width": 1.6, "stroke-dasharray": "3 3" }));
        svg.appendChild(
          h("circle.partial", { cx: x(partial[0]), cy: y(partial[1]), r: 2.5, fill: "#fff", stroke: color, "stroke-width": 1.4 }, h("title", null, "still filling")),
        );
      }
    }
  });

  const cursor = h("line.cursor", { x1: 0, x2: 0, y1: MARGIN.top, y2: MARGIN.top + plotH, visibility: "hidden" });
  svg.appendChild(cursor);
  const readout = h("div.chart-readout", { hidden: true });
  const overlay = h("rect", { x: MARGIN.left, y: MARGIN.top, width: plotW, height: plotH, fill: "transparent" });
  overlay.addEventListener("mousemove", (event) => {
    const box = svg.getBoundingClientRect();
    const t = t0 + ((event.clientX - box.left - MARGIN.left) / plotW) * (t1 - t0);
    const nearest = nearestTime(times, t);
    cursor.setAttribute("x1", x(nearest));
    cursor.setAttribute("x2", x(nearest));
    cursor.setAttribute("visibility", "visible");
    fill(
      readout,
      h("div.readout-time", null, clock(nearest, 0)),
      withData.map((s, index) => {
        const point = s.points.find(([pt]) => pt === nearest);
        const value = point && point[1] !== null && point[1] !== undefined ? format(point[1]) : "—";
        return h("div", null, h("span.swatch", { style: `background:${s.color || PALETTE[index % PALETTE.length]}` }), `${s.label}: ${value}`);
      }),
    );
    readout.hidden = false;
    const left = x(nearest) + 12;
    readout.style.left = `${left > width - 170 ? x(nearest) - 170 : left}px`;
  });
  overlay.addEventListener("mouseleave", () => {
    cursor.setAttribute("visibility", "hidden");
    readout.hidden = true;
  });
  svg.appendChild(overlay);

  const legendBox = h(
    "div.legend",
    null,
    withData.map((s, index) =>
      h("span.legend-item", null, h("span.swatch", { style: `background:${s.color || PALETTE[index % PALETTE.length]}` }), s.label),
    ),
  );
  fill(container, svg, readout, (legend ?? withData.length > 1) ? legendBox : null);
}

/** Consecutive stretches of non-null points no further apart than `gapAfter` seconds. */
function runs(points, gapAfter = Infinity) {
  const result = [];
  let current = [];
  for (const [t, v] of [...points].sort((a, b) => a[0] - b[0])) {
    if (current.length && t - current.at(-1)[0] > gapAfter) {
      result.push(current);
      current = [];
    }
    if (v === null || v === undefined) {
      if (current.length) result.push(current);
      current = [];
    } else {
      current.push([t, Number(v)]);
    }
  }
  if (current.length) result.push(current);
  return result;
}

/** The smallest "round" number at or above `value` (1, 2, 2.5, 5 times a power of ten). */
export function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

function timeTicks(t0, t1, wanted) {
  const steps = [10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
  const step = steps.find((s) => (t1 - t0) / s <= wanted) || 86400;
  const ticks = [];
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) ticks.push(t);
  return ticks;
}

function clock(t, span) {
  const date = new Date(t * 1000);
  const options = span && span < 600 ? { hour: "2-digit", minute: "2-digit", second: "2-digit" } : { hour: "2-digit", minute: "2-digit" };
  if (!span) Object.assign(options, { second: "2-digit" });
  return date.toLocaleTimeString("en-GB", { ...options, hour12: false });
}

function nearestTime(times, t) {
  let best = times[0];
  for (const candidate of times) if (Math.abs(candidate - t) < Math.abs(best - t)) best = candidate;
  return best;
}

/** A horizontal bar showing a fraction 0..1, for table cells (CPU, error %). */
export function meter(fraction, { tone = null, label = "" } = {}) {
  const clamped = Math.max(0, Math.min(1, Number(fraction) || 0));
  return h(
    "span.meter",
    { class: tone ? `tone-${tone}` : null, title: label || null },
    h("span.meter-fill", { style: `width:${(clamped * 100).toFixed(1)}%` }),
  );
}

/**
 * A tiny line without axes, for a table cell: the recent shape of one figure.
 * @param {number[]} values - oldest first.
 */
export function sparkline(values, { width = 90, height = 22, color = PALETTE[0], label = "", from = null } = {}) {
  const shown = values.filter((v) => v !== null && v !== undefined);
  const svg = h("svg.sparkline", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label });
  if (shown.length < 2) return svg;
  // From zero for shares like CPU; from the lowest reading for sizes, whose changes are small.
  const low = from ?? Math.min(...shown);
  const span = Math.max(...shown) - low || 1;
  const step = width / (shown.length - 1);
  const y = (v) => (height - 2 - ((v - low) / span) * (height - 4)).toFixed(1);
  const line = shown.map((v, i) => `${(i * step).toFixed(1)},${y(v)}`).join(" ");
  svg.appendChild(h("polyline", { points: line, fill: "none", stroke: color, "stroke-width": 1.4 }));
  return svg;
}
