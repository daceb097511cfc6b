// @ts-check
// Talking to /api/* with the httpOnly auth_token cookie. Calls name the operation as openapi.json
// does (method and path template); the answer's type comes from the TypeScript client's schema,
// generated from that spec, so a renamed path, field or status is a type error in this page
// (`scripts/test-frontend` runs tsc over it).
import { el, showBanner } from "./dom.js";

/** @typedef {import("../../../../../clients/typescript/src/generated/schema").paths} Paths */
/** @typedef {import("../../../../../clients/typescript/src/generated/schema").components["schemas"]} Schemas */
/** @typedef {"get" | "post" | "delete"} Method */

/**
 * What a call sends: the path template's parameters, the query, the JSON body; `follow` fetches
 * a `Location` the server handed out for this operation instead of the template.
 * @template Op
 * @typedef {{
 *   params?: Op extends { parameters: { path: infer Params } } ? Params : never,
 *   query?: Op extends { parameters: { query?: infer Query } } ? Query : never,
 *   body?: Op extends { requestBody: { content: infer C } } ? C[keyof C] : never,
 *   follow?: string,
 * }} Call
 */

/** @typedef {200 | 201 | 202 | 204} Success */

/**
 * One documented answer. Error bodies may be null: a proxy in front can answer with anything.
 * @template S, R
 * @typedef {{
 *   status: S,
 *   ok: S extends Success ? true : false,
 *   headers: Headers,
 *   body: (R extends { content: infer C } ? C[keyof C] : null) | (S extends Success ? never : null),
 * }} Answer
 */

/**
 * The operation's answers, one variant per documented status: testing `ok` or `status` narrows
 * `body` to that status's schema.
 * @template Op
 * @typedef {Op extends { responses: infer R } ? { [S in keyof R]: Answer<S, R[S]> }[keyof R] : never} Result
 */

/** Thrown once the page can no longer act for the admin; `guarded` swallows it. */
export class SignedOut extends Error {}

let signedOut = false;
/** @type {Promise<boolean> | null} */
let renewal = null;
/** @type {(() => void)[]} */
const signOutListeners = [];

/** Whether the sign-in has ended (timers stop re-arming). */
export const isSignedOut = () => signedOut;

/**
 * Runs `listener` once when the sign-in ends, e.g. to stop polling.
 * @param {() => void} listener
 */
export function onSignedOut(listener) {
  signOutListeners.push(listener);
}

/** Renews the short-lived JWT once per expiry; concurrent callers share the attempt. */
function renew() {
  renewal ??= fetch("/api/auth/refresh", {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-Requested-With": "XMLHttpRequest" },
  })
    .then((r) => r.ok)
    .catch(() => false)
    .finally(() => setTimeout(() => (renewal = null), 5_000));
  return renewal;
}

/**
 * The path with its `{name}` parameters filled in, and the query.
 * @param {string} template
 * @param {Record<string, string | number> | undefined} params
 * @param {Record<string, string | number | undefined> | undefined} query
 */
function url(template, params, query) {
  const path = template.replace(/\{(\w+)\}/g, (_, name) => {
    const value = params?.[name];
    if (value === undefined) throw new Error(`${template} needs ${name}`);
    return encodeURIComponent(value);
  });
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined) search.set(key, String(value));
  }
  const encoded = search.toString();
  return encoded ? `${path}?${encoded}` : path;
}

/**
 * fetch() for our API: same-origin cookies, `X-Requested-With` on every POST (the CSRF guard),
 * JSON bodies. On 401 it renews the sign-in once and retries; if that fails the page says the
 * sign-in ended and offers the sign-in link.
 * @template {keyof Paths} P
 * @template {Method} M
 * @param {M} method
 * @param {P} path the spec's template, e.g. `/api/admin/members/{id}`
 * @param {Call<Paths[P][M]>} [call]
 * @returns {Promise<Result<Paths[P][M]>>}
 */
export async function api(method, path, call = {}) {
  if (signedOut) throw new SignedOut();
  const { body } = call;
  const target = call.follow ?? url(path, call.params, call.query);
  const verb = method.toUpperCase();
  const send = () => {
    /** @type {Record<string, string>} */
    const headers = { Accept: "application/json" };
    if (verb !== "GET") headers["X-Requested-With"] = "XMLHttpRequest";
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(target, {
      method: verb,
      credentials: "same-origin",
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  };
  let response = await send();
  if (response.status === 401 && (await renew())) response = await send();
  if (response.status === 401) {
    showSignedOut();
    throw new SignedOut();
  }
  const json = await readJson(response);
  if (response.status === 403 && messageOf(json, "error") === "forbidden") {
    // The admin role was taken away while the page was open.
    showBanner("Your account is no longer an admin. Reload the page.");
    throw new SignedOut();
  }
  // The spec promises this shape for the status; the checks above are all this page relies on.
  return /** @type {Result<Paths[P][M]>} */ ({ status: response.status, ok: response.ok, headers: response.headers, body: json });
}

/** @param {Response} response */
async function readJson(response) {
  try {
    return /** @type {unknown} */ (await response.json());
  } catch {
    return null;
  }
}

/**
 * A string field of an error body, if the body has one.
 * @param {unknown} body
 * @param {keyof Schemas["ErrorBody"]} field
 */
function messageOf(body, field) {
  if (typeof body !== "object" || body === null || !(field in body)) return undefined;
  const value = /** @type {Record<string, unknown>} */ (body)[field];
  return typeof value === "string" ? value : undefined;
}

/**
 * The server's explanation of a failed call, or `fallback` and the status.
 * @param {{ status: number, body: unknown }} result
 * @param {string} fallback
 */
export function problemText(result, fallback) {
  return messageOf(result.body, "message") || `${fallback} (HTTP ${result.status}).`;
}

function showSignedOut() {
  if (signedOut) return;
  signedOut = true;
  showBanner(
    "Your sign-in has ended. ",
    el("a", { href: "/api/auth/patreon/login?return_to=/admin", id: "sign-in-again" }, "Sign in with Patreon"),
  );
  for (const listener of signOutListeners) listener();
}

/**
 * Runs a handler, turning failures into a banner instead of an unhandled rejection.
 * @template {unknown[]} A
 * @param {(...args: A) => unknown} handler
 * @returns {(...args: A) => Promise<void>}
 */
export function guarded(handler) {
  return async (...args) => {
    try {
      await handler(...args);
    } catch (error) {
      if (error instanceof SignedOut) return;
      showBanner(`Something went wrong: ${error instanceof Error ? error.message : error}`);
    }
  };
}
