// The typed API client: every call to patreon-gate goes through openapi-fetch with the paths and
// schemas generated from openapi.json, so a change of the API contract breaks the build here
// rather than at run time in a member's browser.
import createClient, { type Client, type Middleware } from "openapi-fetch";

import type { components, paths } from "./generated/schema.js";
import { tokenLifetime, type TokenLifetime } from "./token.js";

export type { components, paths } from "./generated/schema.js";

/** The signed-in member, as `GET /api/auth/me` returns them. */
export type Member = components["schemas"]["Me"];
/** A background job's state, as `GET /api/jobs/{id}` returns it. */
export type JobStatus = components["schemas"]["JobStatus"];
/** Every error body of the API: a stable `error` code and a human `message`. */
export type ErrorBody = components["schemas"]["ErrorBody"];

/**
 * `cookie` (default): the API's httpOnly `auth_token` cookie authenticates; requests carry
 * credentials. `bearer`: the JWT lives in memory (or opt-in storage) and is sent as
 * `Authorization: Bearer`; cookies are not sent.
 */
export type AuthMode = "cookie" | "bearer";

export interface ClientOptions {
  /** Origin (and optional path prefix) of the API, e.g. `https://auth.example.com`. Defaults to the page's origin. */
  baseUrl?: string;
  mode?: AuthMode;
  /** Bearer mode: the current JWT, read on every request. */
  getToken?: () => string | null;
  /** Override `credentials`; defaults to `include` in cookie mode and `omit` in bearer mode. */
  credentials?: RequestCredentials;
  /** A `fetch` implementation (tests, server-side rendering). */
  fetch?: typeof globalThis.fetch;
}

/** A non-2xx answer of the API (or a network failure, `status` 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Seconds to wait, from `Retry-After` on 429s. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = "ApiError";
  }

  get isUnauthorized(): boolean {
    return this.status === 401;
  }
}

/** What a Bearer client gets for a handoff code: a JWT, the refresh token that renews it, and when the JWT expires. */
export interface IssuedToken extends TokenLifetime {
  token: string;
  /** Spent by the next `renew(refreshToken)`, which hands back the next one. Never put it in a URL. */
  refreshToken: string;
}

/**
 * What a renewal brought. `renewed`: when the new JWT expires, and in Bearer mode the new JWT and
 * the next refresh token (in cookie mode both stay in httpOnly cookies, out of reach of scripts).
 * `current`: a concurrent renewal with the same refresh token (another tab) has just rotated it,
 * so nothing new was issued; the credentials that renewal received are the current ones.
 */
export type Renewal =
  | ({ status: "renewed"; token?: string; refreshToken?: string } & TokenLifetime)
  | { status: "current" };

export type RecheckRequest =
  | { queued: true; jobId: string }
  | { queued: false; retryAfterSeconds: number; message: string };

const LOGIN_PATH = "/api/auth/patreon/login" satisfies keyof paths;
type LoginQuery = NonNullable<paths[typeof LOGIN_PATH]["get"]["parameters"]["query"]>;

/** The only header our CSRF guard asks of cookie-authenticated state changes. */
const CSRF_HEADER = "X-Requested-With";
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

function defaultBaseUrl(): string {
  return typeof location === "undefined" ? "" : location.origin;
}

function toApiError(status: number, body: unknown, response?: Response): ApiError {
  const errorBody = body as Partial<ErrorBody> | undefined;
  const retryAfter = Number(response?.headers.get("Retry-After"));
  return new ApiError(
    status,
    errorBody?.error ?? `http_${status}`,
    errorBody?.message ?? `The API answered ${status}.`,
    Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined,
  );
}

/** Runs an API call, turning a failed `fetch` (offline, CORS refusal) into an `ApiError` with status 0. */
async function reach<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    if (e instanceof ApiError) throw e;
    throw new ApiError(0, "network", "The sign-in service cannot be reached.");
  }
}

export interface PatreonGateClient {
  /** The raw typed client, for any endpoint of the API. */
  readonly api: Client<paths>;
  readonly mode: AuthMode;
  /** The URL that starts signing in with Patreon; the member lands back on `returnTo`. */
  loginUrl(returnTo?: string): string;
  /** The signed-in member, or `null` when the request is not authenticated (401). */
  me(): Promise<Member | null>;
  /**
   * Renews the sign-in (`POST /api/auth/refresh`) from the refresh cookie (cookie mode) or from
   * `refreshToken` (Bearer mode, sent in the body); `null` when there is no live sign-in (401).
   */
  renew(refreshToken?: string): Promise<Renewal | null>;
  /** Trades the single-use `handoff` code from the sign-in redirect for a JWT and a refresh token. */
  exchangeHandoff(handoff: string): Promise<IssuedToken>;
  /** Ends the sign-in session on the server and clears its cookies. */
  logout(): Promise<void>;
  /** Asks for the member's status to be checked with Patreon now. */
  requestRecheck(): Promise<RecheckRequest>;
  job(id: string): Promise<JobStatus>;
}

export function createPatreonGateClient(options: ClientOptions = {}): PatreonGateClient {
  const mode = options.mode ?? "cookie";
  const baseUrl = (options.baseUrl ?? defaultBaseUrl()).replace(/\/+$/, "");
  const api = createClient<paths>({
    baseUrl,
    credentials: options.credentials ?? (mode === "cookie" ? "include" : "omit"),
    // Resolve `fetch` at call time so a test's or polyfill's replacement is honoured.
    fetch: (request) => (options.fetch ?? globalThis.fetch)(request),
  });

  const authenticate: Middleware = {
    onRequest({ request }) {
      if (mode === "bearer") {
        const token = options.getToken?.();
        if (token) request.headers.set("Authorization", `Bearer ${token}`);
      } else if (!SAFE_METHODS.has(request.method)) {
        // Cookie-authenticated state changes must carry it: a cross-site form cannot set it,
        // and cross-origin it forces a CORS preflight the API only grants to its frontends.
        request.headers.set(CSRF_HEADER, "fetch");
      }
      return request;
    },
  };
  api.use(authenticate);

  return {
    api,
    mode,

    loginUrl(returnTo) {
      const query: LoginQuery = returnTo ? { return_to: returnTo } : {};
      const search = new URLSearchParams(query as Record<string, string>).toString();
      return `${baseUrl}${LOGIN_PATH}${search ? `?${search}` : ""}`;
    },

    async me() {
      const { data, error, response } = await reach(() => api.GET("/api/auth/me"));
      if (response.status === 401) return null;
      if (!data) throw toApiError(response.status, error, response);
      return data;
    },

    async renew(refreshToken) {
      const { data, error, response } = await reach(() =>
        api.POST("/api/auth/refresh", refreshToken ? { body: { refreshToken } } : {}),
      );
      if (response.status === 401) return null;
      if (response.status === 204) return { status: "current" };
      if (!data) throw toApiError(response.status, error, response);
      const expiresAt = Date.parse(data.expiresAt);
      // A cookie caller never sees its JWT: the renewal happened now.
      const issuedAt = data.token ? tokenLifetime(data.token).issuedAt : Math.min(Date.now(), expiresAt);
      return { status: "renewed", issuedAt, expiresAt, token: data.token, refreshToken: data.refreshToken };
    },

    async exchangeHandoff(handoff) {
      const { data, error, response } = await reach(() =>
        api.POST("/api/auth/token", { body: { handoff } }),
      );
      if (!data) throw toApiError(response.status, error, response);
      return { token: data.token, refreshToken: data.refreshToken, ...tokenLifetime(data.token) };
    },

    async logout() {
      const { error, response } = await reach(() => api.POST("/api/auth/logout"));
      // 401 cannot happen (logout is idempotent) but would mean the same: no session left.
      if (!response.ok && response.status !== 401) throw toApiError(response.status, error, response);
    },

    async requestRecheck() {
      const { data, error, response } = await reach(() => api.POST("/api/auth/recheck"));
      if (data) return { queued: true, jobId: data.jobId };
      const failure = toApiError(response.status, error, response);
      if (response.status === 429 && failure.code === "recheck_too_soon") {
        return { queued: false, retryAfterSeconds: failure.retryAfterSeconds ?? 60, message: failure.message };
      }
      throw failure;
    },

    async job(id) {
      const { data, error, response } = await reach(() =>
        api.GET("/api/jobs/{id}", { params: { path: { id } } }),
      );
      if (!data) throw toApiError(response.status, error, response);
      return data;
    },
  };
}
