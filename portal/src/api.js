// The API client of the portal: same-origin fetch, RFC 9457 problems and RFC 6749 errors as
// exceptions, and the signed-in session. The access token lives in this module's memory only:
// never written to web storage or cookies, so it is gone with the page.

/** What happened to the session: `signed-in`, `signed-out` (with `detail.reason`). */
export const sessionEvents = new EventTarget();

let session = null;
let expiryTimer = null;

/** The last rate-limit window the server reported (`RateLimit-*` headers of a `/v1/*` answer). */
export const rateWindow = { limit: null, remaining: null, reset: null };

export class ApiError extends Error {
  constructor(status, body) {
    const detail = body?.detail ?? body?.error_description ?? body?.error ?? `HTTP ${status}`;
    super(detail);
    this.status = status;
    this.code = body?.code ?? body?.error ?? null;
    this.title = body?.title ?? null;
    this.body = body;
  }

  /** One line for a person: the title, the detail and the stable code. */
  describe() {
    const title = this.title && this.title !== this.message ? `${this.title}: ` : "";
    return `${title}${this.message}${this.code ? ` (${this.code})` : ""}`;
  }
}

/** One line for a person, whatever failed: the API's problem, or the network. */
export function describeError(error) {
  return error instanceof ApiError ? error.describe() : `Network error: ${error.message}`;
}

async function parse(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return { detail: text.slice(0, 200) };
  }
}

/** `application/x-www-form-urlencoded`, as RFC 6749 §2.3.1 wants client ids and secrets encoded. */
function formEncode(value) {
  return encodeURIComponent(value).replace(/%20/g, "+");
}

function claimsOf(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload));
  } catch {
    return {};
  }
}

/** Exchanges an admin client id and secret for an access token (client_credentials). */
export async function signIn(clientId, clientSecret) {
  const response = await fetch("/oauth2/token", {
    method: "POST",
    headers: {
      authorization: `Basic ${btoa(`${formEncode(clientId)}:${formEncode(clientSecret)}`)}`,
      "content-type": "application/x-www-form-urlencoded",
      accept: "application/json",
    },
    body: "grant_type=client_credentials",
    cache: "no-store",
    credentials: "omit",
  });
  const body = await parse(response);
  if (!response.ok) throw new ApiError(response.status, body);
  const lifetime = Number(body.expires_in) * 1000;
  session = {
    token: body.access_token,
    clientId,
    scope: body.scope ?? "",
    claims: claimsOf(body.access_token),
    expiresAt: Date.now() + lifetime,
  };
  clearTimeout(expiryTimer);
  expiryTimer = setTimeout(() => signOut("expired"), lifetime);
  sessionEvents.dispatchEvent(new CustomEvent("signed-in", { detail: currentSession() }));
  return currentSession();
}

/** Forgets the token. */
export function signOut(reason = "signed-out") {
  if (!session) return;
  session = null;
  clearTimeout(expiryTimer);
  sessionEvents.dispatchEvent(new CustomEvent("signed-out", { detail: { reason } }));
}

/** What the page may show of the session (never the token). */
export function currentSession() {
  if (!session) return null;
  const { clientId, scope, claims, expiresAt } = session;
  return { clientId, scope, orgId: claims.org_id ?? null, expiresAt };
}

async function send(method, path, body, options) {
  const headers = { accept: options.accept ?? "application/json" };
  const bearer = options.bearer ?? session?.token;
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  if (options.ifMatch) headers["if-match"] = options.ifMatch;
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
    credentials: "omit",
  });
  const limit = response.headers.get("ratelimit-limit");
  if (limit !== null) {
    rateWindow.limit = Number(limit);
    rateWindow.remaining = Number(response.headers.get("ratelimit-remaining"));
    rateWindow.reset = Number(response.headers.get("ratelimit-reset"));
  }
  if (!response.ok) {
    const error = new ApiError(response.status, await parse(response));
    // The token expired or was revoked (suspension of the admin, rotation of its credential).
    if (response.status === 401 && session && !options.bearer) signOut("rejected");
    throw error;
  }
  return response;
}

/**
 * Calls the API: `api("GET", "/v1/agents")`, `api("POST", "/v1/agents", body)`. With a session
 * it sends the bearer token; `options.bearer` replaces it (the sign-up token). Throws ApiError.
 */
export async function api(method, path, body, options = {}) {
  return parse(await send(method, path, body, options));
}

/** The same for a download (the audit export's NDJSON): the body as a Blob. */
export async function apiBlob(method, path, accept) {
  return (await send(method, path, undefined, { accept })).blob();
}

/** A query string from the non-empty entries of `params`. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}
