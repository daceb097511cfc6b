// The sign-in state of one page, independent of any UI framework: who is signed in, the landing
// after the Patreon redirect, keeping the short-lived JWT renewed, and signing out. The React
// provider is a thin subscription to it.
import {
  ApiError,
  createPatreonGateClient,
  type ClientOptions,
  type JobStatus,
  type Member,
  type PatreonGateClient,
  type Renewal,
} from "./client.js";
import { renewalLeadTime, tokenLifetime, type TokenLifetime } from "./token.js";

/** Something that went wrong signing in or talking to the API, ready to show to the member. */
export interface AuthError {
  /** `access_denied`, `patreon_unavailable`, `patreon_error` (from the sign-in redirect), an API error code, or `network`. */
  code: string;
  message: string;
}

export interface AuthState {
  /** The signed-in member, or `null`. */
  user: Member | null;
  /** True until the first answer about who is signed in. */
  isLoading: boolean;
  error: AuthError | null;
}

export type RecheckOutcome =
  | { status: "succeeded"; job: JobStatus; message: string }
  | { status: "failed"; job: JobStatus; message: string }
  | { status: "too_soon"; retryAfterSeconds: number; message: string }
  | { status: "timeout" | "signed_out" | "error"; message: string };

/** Where Bearer-mode tokens may be kept across reloads; `sessionStorage` fits. */
export type TokenStorage = Pick<Storage, "getItem" | "setItem" | "removeItem">;

export interface AuthOptions extends Omit<ClientOptions, "getToken"> {
  /**
   * Bearer mode only: keep the JWT (under `storageKey`) and the refresh token (under
   * `storageKey + ".refresh"`) here too; they stay in memory only by default.
   */
  storage?: TokenStorage;
  storageKey?: string;
  /** How often a recheck's job is polled, and for how long at most. */
  recheckPollMs?: number;
  recheckTimeoutMs?: number;
  /** Leaves the page for Patreon; defaults to `location.assign`. */
  navigate?: (url: string) => void;
}

const DEFAULT_STORAGE_KEY = "patreon-gate.token";
/** After a renewal failed for a passing reason (network, 429, 5xx), try again this soon. */
const RENEW_RETRY_MS = 15_000;

const REDIRECT_REASONS: Record<string, string> = {
  access_denied: "You declined the Patreon consent, so you are not signed in.",
  patreon_unavailable: "Patreon is not answering right now. Try again in a moment.",
  patreon_error: "Patreon refused the sign-in. Try again.",
};

const JOB_RESULTS: Record<string, string> = {
  paying_member: "Checked with Patreon just now: you are a paying member.",
  not_a_paying_member: "Checked with Patreon just now: no paid membership found.",
  needs_relogin: "Patreon no longer accepts our access to your account. Sign in with Patreon again.",
};

function toAuthError(e: unknown): AuthError {
  if (e instanceof ApiError) return { code: e.code, message: e.message };
  return { code: "unexpected", message: e instanceof Error ? e.message : String(e) };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** What the sign-in redirect left in the page URL. */
interface Landing {
  auth: string;
  handoff: string | null;
  reason: string | null;
}

/**
 * Reads `auth`, `handoff` and `reason` from the URL and removes them at once, before anything is
 * awaited: the handoff code is single-use and must not linger in the history or be replayed by a
 * second mount (React StrictMode).
 */
function takeLanding(): Landing | null {
  if (typeof window === "undefined") return null;
  const url = new URL(window.location.href);
  const auth = url.searchParams.get("auth");
  if (auth === null) return null;
  const landing = { auth, handoff: url.searchParams.get("handoff"), reason: url.searchParams.get("reason") };
  url.searchParams.delete("auth");
  if (auth === "success") url.searchParams.delete("handoff");
  if (auth === "error") url.searchParams.delete("reason");
  window.history.replaceState(window.history.state, "", url.pathname + url.search + url.hash);
  return landing;
}

function currentPath(): string {
  if (typeof window === "undefined") return "/";
  const { pathname, search, hash } = window.location;
  return pathname + search + hash;
}

export class AuthStore {
  readonly client: PatreonGateClient;
  private state: AuthState = { user: null, isLoading: true, error: null };
  private readonly listeners = new Set<() => void>();
  private readonly options: AuthOptions;
  /** Bearer mode: the JWT we send. */
  private token: string | null = null;
  /** Bearer mode: what renews the JWT; spent on use, the renewal hands back the next one. */
  private refreshToken: string | null = null;
  /** The current JWT's lifetime, once known (both modes), to renew it in time. */
  private lifetime: TokenLifetime | null = null;
  private renewTimer: ReturnType<typeof setTimeout> | undefined;
  private nextRenewalAt: number | null = null;
  private renewing: Promise<boolean> | null = null;
  private initialized: Promise<void> | null = null;
  private active = false;
  /** The failed sign-in this page landed from: shown until the member acts, unlike passing errors. */
  private landingError: AuthError | null = null;
  /** Bumped on every sign-out, so a renewal answered after it cannot bring a token back. */
  private signInGeneration = 0;

  constructor(options: AuthOptions = {}) {
    this.options = options;
    this.client = createPatreonGateClient({ ...options, getToken: () => this.token });
  }

  get mode() {
    return this.client.mode;
  }

  getState = (): AuthState => this.state;

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  /** Finds out who is signed in (once) and keeps the token renewed until `stop()`. */
  start(): void {
    if (this.active) return;
    this.active = true;
    if (typeof document !== "undefined") document.addEventListener("visibilitychange", this.onVisible);
    this.initialized ??= this.initialize();
    if (this.nextRenewalAt !== null) this.armTimer();
  }

  /** Stops renewing (the page or component goes away); `start()` resumes. */
  stop(): void {
    this.active = false;
    clearTimeout(this.renewTimer);
    if (typeof document !== "undefined") document.removeEventListener("visibilitychange", this.onVisible);
  }

  /** Leaves for Patreon; the member comes back to `returnTo` (default: this page). */
  login = (returnTo?: string): void => {
    const url = this.client.loginUrl(returnTo ?? currentPath());
    (this.options.navigate ?? ((to: string) => window.location.assign(to)))(url);
  };

  /** Ends the session on the server, then forgets it here. */
  logout = async (): Promise<void> => {
    try {
      await this.client.logout();
    } catch (e) {
      // The session may still be live on the server: do not pretend it ended.
      this.update({ error: toAuthError(e) });
      return;
    }
    this.signedOut();
    this.update({ error: null });
  };

  /** Renews the JWT and reads the member again; `null` when no sign-in is left. */
  refresh = async (): Promise<Member | null> => {
    try {
      if (!(await this.renewNow())) return null;
    } catch (e) {
      this.update({ error: toAuthError(e) });
      return this.state.user;
    }
    return this.loadMember();
  };

  /** Asks the API to check the membership with Patreon now, waits for the job, reloads the member. */
  recheck = async (): Promise<RecheckOutcome> => {
    const signedOut = { status: "signed_out", message: "You are signed out. Sign in again." } as const;
    try {
      const request = await this.authenticated(() => this.client.requestRecheck());
      if (request === null) return signedOut;
      if (!request.queued) return { status: "too_soon", ...request };
      const deadline = Date.now() + (this.options.recheckTimeoutMs ?? 30_000);
      for (;;) {
        await sleep(this.options.recheckPollMs ?? 500);
        const job = await this.authenticated(() => this.client.job(request.jobId));
        if (job === null) return signedOut;
        if (job.status === "succeeded" || job.status === "failed") {
          await this.loadMember();
          if (job.status === "failed") {
            return { status: "failed", job, message: "Patreon could not be reached; try again later." };
          }
          const message = (job.result && JOB_RESULTS[job.result]) ?? "Checked with Patreon just now.";
          return { status: "succeeded", job, message };
        }
        if (Date.now() >= deadline) {
          return { status: "timeout", message: "The check is still waiting for Patreon; your status will update later." };
        }
      }
    } catch (e) {
      return { status: "error", message: toAuthError(e).message };
    }
  };

  private update(patch: Partial<AuthState>): void {
    this.state = { ...this.state, ...patch };
    for (const listener of this.listeners) listener();
  }

  private async initialize(): Promise<void> {
    const landing = takeLanding();
    if (landing?.auth === "error") {
      const reason = landing.reason ?? "unknown";
      this.landingError = { code: reason, message: REDIRECT_REASONS[reason] ?? "Signing in failed. Try again." };
      this.update({ error: this.landingError });
    }
    if (this.mode === "bearer") {
      if (landing?.auth === "success" && landing.handoff) {
        try {
          this.useToken(await this.client.exchangeHandoff(landing.handoff));
        } catch (e) {
          const { code } = toAuthError(e);
          const message =
            e instanceof ApiError && e.status === 400
              ? "The sign-in link expired or was already used. Sign in again."
              : toAuthError(e).message;
          this.update({ error: { code, message } });
        }
      } else {
        this.restoreToken();
        // The stored JWT expired but the sign-in may not have: renew it from the refresh token.
        if (!this.token && this.refreshToken) await this.renewNow().catch(() => false);
      }
      if (!this.token) {
        this.update({ user: null, isLoading: false });
        return;
      }
    }
    await this.loadMember();
  }

  /** Reads the member; in cookie mode an expired JWT is first renewed from the refresh cookie. */
  private async loadMember(): Promise<Member | null> {
    try {
      const user = await this.authenticated(() => this.client.me());
      if (!user) {
        this.signedOut();
        return null;
      }
      // A successful answer ends an earlier network or server error.
      this.update({ user, isLoading: false, error: this.state.error === this.landingError ? this.state.error : null });
      // A cookie-mode page cannot read its httpOnly JWT: renew once to learn when it expires.
      if (!this.lifetime) void this.renewNow().catch(() => undefined);
      return user;
    } catch (e) {
      this.update({ isLoading: false, error: toAuthError(e) });
      return this.state.user;
    }
  }

  /**
   * Runs an authenticated call. A 401 (or `me()`'s `null`) gets one renewal (from the refresh
   * cookie, or the Bearer refresh token) and a retry; when that fails too, the member is signed
   * out and the result is `null`.
   */
  private async authenticated<T>(call: () => Promise<T | null>): Promise<T | null> {
    const attempt = async () => {
      try {
        return await call();
      } catch (e) {
        if (e instanceof ApiError && e.isUnauthorized) return null;
        throw e;
      }
    };
    const first = await attempt();
    if (first !== null) return first;
    if ((this.mode === "cookie" || this.refreshToken) && (await this.renewNow())) {
      const second = await attempt();
      if (second !== null) return second;
    }
    this.signedOut();
    return null;
  }

  /**
   * One renewal at a time: concurrent callers share it (the refresh token rotates on use). True
   * while the sign-in lives.
   */
  private renewNow(): Promise<boolean> {
    this.renewing ??= this.renew().finally(() => {
      this.renewing = null;
    });
    return this.renewing;
  }

  private async renew(): Promise<boolean> {
    const generation = this.signInGeneration;
    let renewal: Renewal | null;
    try {
      renewal = await this.client.renew(this.mode === "bearer" ? (this.refreshToken ?? undefined) : undefined);
    } catch (e) {
      if (generation !== this.signInGeneration) return false;
      // Offline, rate limited or a server hiccup: the sign-in may well be alive, so try again
      // soon. A 403 is a misconfigured origin and will not heal by itself.
      if (!(e instanceof ApiError && e.status === 403)) this.scheduleRenewal(Date.now() + RENEW_RETRY_MS);
      throw e;
    }
    if (generation !== this.signInGeneration) return false; // signed out meanwhile
    if (!renewal) {
      this.signedOut();
      return false;
    }
    if (renewal.status === "current") {
      // Another tab renewed with the same refresh token a moment ago. Cookie mode: the browser
      // shares that tab's new cookies. Bearer mode: they may be in the shared storage.
      if (this.mode === "bearer") this.restoreToken();
      this.scheduleRenewal(Date.now() + RENEW_RETRY_MS);
      return true;
    }
    this.useToken(renewal);
    return true;
  }

  private useToken(issued: TokenLifetime & { token?: string; refreshToken?: string }): void {
    this.lifetime = { issuedAt: issued.issuedAt, expiresAt: issued.expiresAt };
    if (this.mode === "bearer" && issued.token) {
      this.token = issued.token;
      this.options.storage?.setItem(this.storageKey, issued.token);
      if (issued.refreshToken) {
        this.refreshToken = issued.refreshToken;
        this.options.storage?.setItem(this.refreshStorageKey, issued.refreshToken);
      }
    }
    this.scheduleRenewal(issued.expiresAt - renewalLeadTime(this.lifetime));
  }

  private restoreToken(): void {
    const stored = this.options.storage?.getItem(this.storageKey);
    this.refreshToken = this.options.storage?.getItem(this.refreshStorageKey) ?? this.refreshToken;
    if (!stored || stored === this.token) return;
    try {
      const lifetime = tokenLifetime(stored);
      if (lifetime.expiresAt > Date.now()) {
        this.useToken({ token: stored, ...lifetime });
        return;
      }
    } catch {
      // Not a JWT: drop it below.
    }
    this.options.storage?.removeItem(this.storageKey);
  }

  private signedOut(): void {
    this.signInGeneration++;
    this.token = null;
    this.refreshToken = null;
    this.lifetime = null;
    this.nextRenewalAt = null;
    clearTimeout(this.renewTimer);
    if (this.mode === "bearer") {
      this.options.storage?.removeItem(this.storageKey);
      this.options.storage?.removeItem(this.refreshStorageKey);
    }
    this.update({ user: null, isLoading: false });
  }

  private get storageKey(): string {
    return this.options.storageKey ?? DEFAULT_STORAGE_KEY;
  }

  private get refreshStorageKey(): string {
    return `${this.storageKey}.refresh`;
  }

  private scheduleRenewal(at: number): void {
    this.nextRenewalAt = at;
    if (this.active) this.armTimer();
  }

  private armTimer(): void {
    clearTimeout(this.renewTimer);
    if (this.nextRenewalAt === null) return;
    const delay = Math.max(0, this.nextRenewalAt - Date.now());
    this.renewTimer = setTimeout(() => void this.renewNow().catch(() => undefined), delay);
  }

  /** Background tabs' timers are throttled: renew on return if the renewal time has passed. */
  private onVisible = (): void => {
    if (document.visibilityState !== "visible" || this.nextRenewalAt === null) return;
    if (Date.now() >= this.nextRenewalAt) void this.renewNow().catch(() => undefined);
  };
}
