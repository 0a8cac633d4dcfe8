// Talking to the monitor: JSON over fetch, with the bearer token when the user has set one.

const TOKEN_KEY = "tasklens.authToken";

/** An API answer that was not a success; `message` is what the API said, for the user. */
export class ApiError extends Error {
  constructor(status, message, path) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.path = path;
  }

  /** "401 Unauthorized: a valid bearer token is required" */
  describe() {
    return this.status ? `${this.status} ${statusText(this.status)}: ${this.message}` : this.message;
  }
}

function statusText(status) {
  return (
    {
      400: "Bad Request",
      401: "Unauthorized",
      403: "Forbidden",
      404: "Not Found",
      409: "Conflict",
      413: "Payload Too Large",
      422: "Unprocessable",
      500: "Server Error",
      502: "Bad Gateway",
      503: "Unavailable",
      504: "Gateway Timeout",
    }[status] || "Error"
  );
}

/**
 * Whether `error` says the monitor serves no dashboard data: it runs without a telemetry store
 * (`--no-store`), so the route does not exist at all, which is not the same as "no such run".
 */
export function isNoStore(error) {
  return error instanceof ApiError && error.status === 404 && error.message === "Not Found";
}

/** What the pages say when the monitor keeps no telemetry. */
export const NO_STORE_MESSAGE =
  "This monitor keeps no telemetry (it was started with --no-store): runs, traces and charts need its store. Queues, dead letters and live workers still work.";

/** The token stored in this browser, or "". */
export function getToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return "";
  }
}

/** Store (or, with "", forget) the token used for the monitor's protected actions. */
export function setToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // Storage can be disabled; the token then lasts as long as the page.
  }
}

/** Build "/api/runs?actor=x" from a path and query parameters, leaving empty ones out. */
export function apiUrl(path, query) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== null && value !== undefined && value !== "") params.set(key, String(value));
  }
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

/**
 * Fetch JSON from the monitor.
 * @param {string} path - "/api/...", with its query string.
 * @param {{method?: string, body?: any, signal?: AbortSignal}} options
 * @returns {Promise<any>} the decoded body.
 * @throws {ApiError} on a non-2xx answer or a network failure.
 */
export async function request(path, { method = "GET", body, signal } = {}) {
  const headers = { Accept: "application/json" };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: "no-store",
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "the monitor did not answer (is it still running?)", path);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) throw new ApiError(response.status, errorMessage(data, text), path);
  return data;
}

/** The human part of an error body: {"error": ...}, FastAPI's {"detail": ...}, or the text. */
function errorMessage(data, text) {
  if (data && typeof data === "object") {
    const value = data.error ?? data.detail ?? data.message;
    if (typeof value === "string") return value;
    if (Array.isArray(value)) return value.map((item) => item.msg || JSON.stringify(item)).join("; ");
    if (value && typeof value === "object") return value.message || JSON.stringify(value);
  }
  return (text || "no details").slice(0, 300);
}

export const get = (path, query, options) => request(apiUrl(path, query), options);
export const post = (path, body) => request(path, { method: "POST", body: body ?? {} });
export const del = (path, body) => request(path, { method: "DELETE", body });
