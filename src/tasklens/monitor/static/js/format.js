// How numbers, durations and times read on the dashboard.

const DASH = "—";

/** A duration given in seconds: "850 µs", "12.4 ms", "1.52 s", "3m 05s", "2h 10m". */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return DASH;
  const s = Number(seconds);
  if (s === 0) return "0";
  if (s < 0.001) return `${Math.round(s * 1e6)} µs`;
  if (s < 1) return `${trim(s * 1000)} ms`;
  if (s < 60) return `${trim(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(Math.floor(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** Three significant digits at most, no trailing zeros. */
function trim(value) {
  const size = Math.abs(value);
  const digits = size >= 100 ? 0 : size >= 10 ? 1 : 2;
  return String(Number(value.toFixed(digits)));
}

/** A count: 1234 -> "1,234", 1.2e6 -> "1.2M". */
export function count(value) {
  if (value === null || value === undefined) return DASH;
  const n = Number(value);
  if (Math.abs(n) >= 1e6) return `${trim(n / 1e6)}M`;
  if (Math.abs(n) >= 1e4) return `${trim(n / 1e3)}k`;
  return Math.round(n).toLocaleString("en-US");
}

/** Rate units from the finest to the coarsest, with how many of them make one per second. */
const RATE_UNITS = [
  ["/s", 1],
  ["/min", 60],
  ["/h", 3600],
];

/**
 * The unit for a set of rates shown together (a table column, a chart's axis, a card beside its
 * chart): the first whose largest value reaches 1, so every figure of the column reads in one unit.
 * @param {(number|null|undefined)[]} perSecond
 * @returns {{unit: string, factor: number}}
 */
export function rateUnit(perSecond) {
  const largest = Math.max(0, ...perSecond.filter((v) => v !== null && v !== undefined).map(Number));
  if (!(largest > 0)) return { unit: "/s", factor: 1 };
  const [unit, factor] = RATE_UNITS.find(([, f]) => largest * f >= 1) || RATE_UNITS[RATE_UNITS.length - 1];
  return { unit, factor };
}

/** A formatter of rates in the one unit `rateUnit(values)` picks for them. */
export function rateFormat(perSecond) {
  const { unit, factor } = rateUnit(perSecond);
  const format = (value) => (value === null || value === undefined ? DASH : Number(value) === 0 ? `0${unit}` : `${trim(Number(value) * factor)}${unit}`);
  format.unit = unit;
  return format;
}

/** One rate in events per second, in the unit that suits it alone. */
export function rate(perSecond) {
  if (perSecond === null || perSecond === undefined) return DASH;
  return rateFormat([perSecond])(perSecond);
}

/** A fraction 0..1 as a percentage. */
export function ratio(value) {
  if (value === null || value === undefined) return DASH;
  return percent(Number(value) * 100);
}

/** A percentage 0..100. */
export function percent(value) {
  if (value === null || value === undefined) return DASH;
  const n = Number(value);
  if (n === 0) return "0%";
  if (n < 0.1) return "<0.1%";
  return `${trim(n)}%`;
}

/** A size in bytes. */
export function bytes(value) {
  if (value === null || value === undefined) return DASH;
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let n = Number(value);
  let unit = 0;
  while (n >= 1024 && unit < units.length - 1) {
    n /= 1024;
    unit += 1;
  }
  return `${trim(n)} ${units[unit]}`;
}

/** A Unix time (seconds) as local wall-clock time; the date is added when it is not today. */
export function time(unixSeconds) {
  if (unixSeconds === null || unixSeconds === undefined) return DASH;
  const date = new Date(Number(unixSeconds) * 1000);
  const clock = date.toLocaleTimeString("en-GB", { hour12: false });
  const today = new Date();
  if (date.toDateString() === today.toDateString()) return clock;
  return `${date.toLocaleDateString("en-CA")} ${clock}`;
}

/** A Unix time with milliseconds, for spans and log lines. */
export function preciseTime(unixSeconds) {
  if (unixSeconds === null || unixSeconds === undefined) return DASH;
  const date = new Date(Number(unixSeconds) * 1000);
  return `${date.toLocaleTimeString("en-GB", { hour12: false })}.${String(date.getMilliseconds()).padStart(3, "0")}`;
}

/** How long ago a Unix time was: "4 s ago", "3 min ago". */
export function ago(unixSeconds) {
  if (unixSeconds === null || unixSeconds === undefined) return DASH;
  const s = Math.max(0, Date.now() / 1000 - Number(unixSeconds));
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

/** A state of a run as the API gives it, for people. */
export const RUN_STATES = {
  ok: "succeeded",
  succeeded_after_retry: "succeeded after retry",
  retried: "failed, retried",
  dead_lettered: "dead-lettered",
  failed: "failed",
};

/** The first characters of a long id, the rest left to the title attribute. */
export function shortId(id, length = 12) {
  if (!id) return DASH;
  const text = String(id);
  return text.length > length ? `${text.slice(0, length)}…` : text;
}

/** A window as the API writes it, in seconds: "15m" -> 900, "24h" -> 86400. */
export function windowSeconds(value) {
  const match = /^(\d+)([smhd])$/.exec(value || "");
  if (!match) return 3600;
  return Number(match[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[match[2]];
}
