// REST calls to the hub. The session lives in the HttpOnly cookie set by /api/auth/login, so
// the page never holds the token; writes carry X-Requested-With (the hub's CSRF guard).

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = (body && body.code) || "http_error";
    this.data = (body && body.data) || {};
  }
}

let onUnauthorized = () => {};

/** Called when any request answers 401 (session expired or revoked): back to the login form. */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

export async function api(method, path, body) {
  const headers = { Accept: "application/json", "X-Requested-With": "contacthub-inbox" };
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let data = null;
  const type = response.headers.get("content-type") || "";
  if (type.includes("application/json")) data = await response.json();
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401 && !path.startsWith("/api/auth/login")) onUnauthorized(error);
    throw error;
  }
  return data;
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body === undefined ? {} : body);
export const put = (path, body) => api("PUT", path, body);

export function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") q.set(key, value);
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

/** Where an attachment's bytes are (GET /api/media/{sha256}: access-checked, logged, seekable). */
export function attachmentUrl(attachment, { download = false } = {}) {
  return `/api/media/${encodeURIComponent(attachment.sha256)}${download ? "?download=1" : ""}`;
}
