// The dashboard's shell: picks the page for the URL, keeps the time window, polls for updates.

import { fill, h } from "./dom.js";
import { getToken, isNoStore, NO_STORE_MESSAGE, setToken } from "./api.js";
import { time } from "./format.js";

/** How often the visible page asks the monitor for fresh data, in milliseconds. */
const POLL_INTERVAL_MS = 5000;
const WINDOW_KEY = "tasklens.window";
const WINDOWS = ["15m", "1h", "6h", "24h"];

/** URL patterns and the module that renders each page. */
const ROUTES = [
  [/^\/$/, "overview", () => import("./pages/overview.js")],
  [/^\/actors\/?$/, "actors", () => import("./pages/actors.js")],
  [/^\/actors\/(?<actor>[^/]+)\/?$/, "actors", () => import("./pages/actor.js")],
  [/^\/runs\/?$/, "runs", () => import("./pages/runs.js")],
  [/^\/runs\/(?<traceId>[^/]+)\/?$/, "runs", () => import("./pages/trace.js")],
  [/^\/queues\/?$/, "queues", () => import("./pages/queues.js")],
  [/^\/workers\/?$/, "workers", () => import("./pages/workers.js")],
  [/^\/alerts\/?$/, "alerts", () => import("./pages/alerts.js")],
];

const state = { page: null, timer: null, paused: false, refreshing: false, again: false, lastOk: null };

function currentWindow() {
  const fromUrl = new URLSearchParams(location.search).get("window");
  if (WINDOWS.includes(fromUrl)) return fromUrl;
  const stored = remembered(WINDOW_KEY);
  return WINDOWS.includes(stored) ? stored : "1h";
}

/** A value kept in this browser, or null when there is none or storage is disabled. */
function remembered(key, value) {
  try {
    if (value === undefined) return localStorage.getItem(key);
    localStorage.setItem(key, value);
  } catch {
    // Without storage the choice lasts as long as the page.
  }
  return null;
}

function setLive(text, tone) {
  const live = document.getElementById("live");
  live.textContent = text;
  live.dataset.state = tone;
}

/** A message above the page, for problems every page shares (no token, monitor gone). */
function setNotice(text) {
  const notice = document.getElementById("app-notice");
  notice.textContent = text || "";
  notice.hidden = !text;
}

async function refresh() {
  if (!state.page) return;
  if (state.refreshing) {
    // Asked again mid-way (a new token, a new window): run once more when this one ends.
    state.again = true;
    return;
  }
  state.refreshing = true;
  state.again = false;
  try {
    await state.page.refresh();
    state.lastOk = Date.now() / 1000;
    setLive(state.paused ? `Paused · ${time(state.lastOk)}` : `Live · ${time(state.lastOk)}`, state.paused ? "paused" : "ok");
    setNotice(null);
  } catch (error) {
    const message = error.describe ? error.describe() : String(error.message || error);
    setLive(`Not updating: ${message}`, "error");
    setNotice(
      error.status === 401
        ? `The monitor refused to answer: ${message}. Enter its API token at the top right.`
        : isNoStore(error)
          ? NO_STORE_MESSAGE
          : `The page could not be updated: ${message}`,
    );
    if (!state.lastOk) console.error(error);
  } finally {
    state.refreshing = false;
  }
  if (state.again) await refresh();
}

function schedule() {
  clearTimeout(state.timer);
  if (state.paused || !state.page?.poll) return;
  state.timer = setTimeout(async () => {
    if (!document.hidden) await refresh();
    schedule();
  }, POLL_INTERVAL_MS);
}

/** The token form in the top bar: saved in this browser, sent with every API call. */
function setUpToken() {
  // A link may carry the token in its fragment (never sent to the server): keep it, then drop it
  // from the address bar and the history.
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.has("token")) {
    setToken(fragment.get("token").trim());
    fragment.delete("token");
    const rest = fragment.toString();
    history.replaceState(null, "", `${location.pathname}${location.search}${rest ? `#${rest}` : ""}`);
  }
  const form = document.getElementById("token-form");
  const input = document.getElementById("token");
  const save = document.getElementById("token-save");
  const show = () => {
    const saved = getToken();
    input.value = saved;
    input.placeholder = "API token";
    save.textContent = "Save";
    form.dataset.state = saved ? "set" : "unset";
    form.title = saved ? "A token is saved in this browser." : "No token saved: the monitor may refuse protected calls.";
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setToken(input.value.trim());
    show();
    document.dispatchEvent(new CustomEvent("tasklens:token"));
    refresh();
  });
  input.addEventListener("input", () => {
    save.textContent = input.value.trim() ? "Save" : "Forget";
  });
  show();
}

/** Percent-decode a URL part; a malformed one is shown as it is rather than breaking the page. */
function safeDecode(text) {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

async function start() {
  setUpToken();
  const route = ROUTES.find(([pattern]) => pattern.test(location.pathname));
  const root = document.getElementById("page");
  const picker = document.getElementById("window");
  picker.value = currentWindow();
  picker.addEventListener("change", () => {
    remembered(WINDOW_KEY, picker.value);
    const url = new URL(location.href);
    url.searchParams.set("window", picker.value);
    history.replaceState(null, "", url);
    state.page?.setWindow?.(picker.value);
    refresh();
  });
  document.getElementById("live").addEventListener("click", () => {
    state.paused = !state.paused;
    if (state.paused) setLive(`Paused · ${time(state.lastOk)}`, "paused");
    refresh();
    schedule();
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refresh();
  });

  if (!route) {
    fill(root, h("div.banner.error", null, `No page at ${safeDecode(location.pathname)}.`), h("p", null, h("a", { href: "/" }, "Go to the overview")));
    setLive("—", "idle");
    return;
  }
  const [pattern, nav, load] = route;
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === nav) a.setAttribute("aria-current", "page");
  }
  const params = {};
  for (const [key, value] of Object.entries(location.pathname.match(pattern).groups || {})) {
    params[key] = safeDecode(value);
  }
  const module = await load();
  const page = module.default;
  document.title = `${page.title(params)} · tasklens`;
  const context = { params, query: new URLSearchParams(location.search), window: picker.value };
  state.page = page.mount(root, context);
  picker.closest("label").hidden = state.page.usesWindow === false;
  await refresh();
  schedule();
}

start();
