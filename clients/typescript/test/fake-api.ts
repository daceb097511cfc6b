// A small in-memory stand-in for the patreon-gate API, with the rules a client must respect:
// cookie vs Bearer credentials, the CSRF header on cookie-authenticated POSTs, single-use handoff
// codes, renewal only from a refresh token (cookie or body) that rotates on use, no JWT in a
// cookie caller's body, revocation on logout. Tests drive it through the
// `fetch` option of the client and inspect `calls`.
import type { components } from "../src/generated/schema.js";

type Member = components["schemas"]["Me"];
type JobStatus = components["schemas"]["JobStatus"];

export const ADA: Member = {
  id: 1,
  patreonId: "100000001",
  name: "Ada Active",
  email: "ada@example.com",
  avatarUrl: "https://c8.patreon.com/3/200/100000001",
  membershipActive: true,
  isPaidMember: true,
  membershipTier: "Supporter",
  isTeamMember: false,
  isAdmin: false,
  lastChecked: "2026-11-28T07:34:28Z",
  needsRelogin: false,
  sessionExpiresAt: "2026-12-05T07:34:28Z",
};

export const FRED: Member = {
  ...ADA,
  id: 4,
  patreonId: "100000004",
  name: "Fred Free",
  email: "fred@example.com",
  avatarUrl: undefined,
  membershipActive: false,
  isPaidMember: false,
  membershipTier: "Free",
};

/** When a token issued now with this lifetime expires, as the API reports it. */
function expiryOf(lifetimeSeconds: number): string {
  return new Date(Date.now() + lifetimeSeconds * 1000).toISOString();
}

function base64Url(text: string): string {
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

let serial = 0;
/** An unsigned JWT-shaped token; the fake API recognises it by identity, as the real one checks signatures. */
export function makeToken(lifetimeSeconds: number, now = Date.now()): string {
  const iat = Math.floor(now / 1000);
  const claims = { sub: "100000001", iat, exp: iat + lifetimeSeconds, jti: `t${++serial}` };
  return `${base64Url('{"alg":"HS256"}')}.${base64Url(JSON.stringify(claims))}.sig`;
}

export interface RecordedCall {
  method: string;
  path: string;
  authorization: string | null;
  csrfHeader: string | null;
  credentials: RequestCredentials;
  body: unknown;
}

export interface FakeApiOptions {
  member?: Member;
  /** The browser holds a valid `auth_token` cookie. */
  cookieToken?: boolean;
  /** The browser holds a live refresh cookie. */
  refreshCookie?: boolean;
  /** Handoff codes that `POST /api/auth/token` accepts once each. */
  handoffs?: string[];
  /** Lifetime of the JWTs it issues. */
  tokenSeconds?: number;
  /** How many cookie renewals are answered 204 (another tab rotated the cookie a moment ago). */
  renewedElsewhere?: number;
  /** How many polls a recheck job stays `running`, and what it finds. */
  jobPolls?: number;
  jobResult?: Member;
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
const unauthorized = () => json(401, { error: "unauthorized", message: "Sign in first." });

export class FakeApi {
  member: Member;
  cookieToken: boolean;
  refreshCookie: boolean;
  readonly handoffs: Set<string>;
  readonly bearerTokens = new Set<string>();
  /** Live Bearer refresh tokens, and the ones a renewal just replaced (answered 204). */
  readonly refreshTokens = new Set<string>();
  readonly replacedRefreshTokens = new Set<string>();
  renewedElsewhere: number;
  readonly calls: RecordedCall[] = [];
  private readonly tokenSeconds: number;
  private jobPollsLeft: number;
  private readonly jobResult: Member | undefined;

  constructor(options: FakeApiOptions = {}) {
    this.member = options.member ?? ADA;
    this.cookieToken = options.cookieToken ?? false;
    this.refreshCookie = options.refreshCookie ?? this.cookieToken;
    this.handoffs = new Set(options.handoffs ?? []);
    this.tokenSeconds = options.tokenSeconds ?? 900;
    this.renewedElsewhere = options.renewedElsewhere ?? 0;
    this.jobPollsLeft = options.jobPolls ?? 1;
    this.jobResult = options.jobResult;
  }

  /** Issues a Bearer token as the real API would after sign-in. */
  issueBearer(lifetimeSeconds = this.tokenSeconds): string {
    const token = makeToken(lifetimeSeconds);
    this.bearerTokens.add(token);
    return token;
  }

  /** Issues a Bearer refresh token as `POST /api/auth/token` would. */
  issueRefreshToken(): string {
    const token = `refresh-${++serial}`;
    this.refreshTokens.add(token);
    return token;
  }

  paths(): string[] {
    return this.calls.map((c) => `${c.method} ${c.path}`);
  }

  fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    const text = request.method === "POST" ? await request.text() : "";
    const call: RecordedCall = {
      method: request.method,
      path: url.pathname,
      authorization: request.headers.get("authorization"),
      csrfHeader: request.headers.get("x-requested-with"),
      credentials: request.credentials,
      body: text ? JSON.parse(text) : undefined,
    };
    this.calls.push(call);
    return this.route(call);
  };

  /** Cookies only travel when the client asks for credentials. */
  private sendsCookies(call: RecordedCall): boolean {
    return call.credentials === "include";
  }

  private authenticated(call: RecordedCall): "bearer" | "cookie" | null {
    const bearer = call.authorization?.replace(/^Bearer /, "");
    if (bearer) return this.bearerTokens.has(bearer) ? "bearer" : null;
    return this.sendsCookies(call) && this.cookieToken ? "cookie" : null;
  }

  private route(call: RecordedCall): Response {
    const key = `${call.method} ${call.path}`;
    const via = this.authenticated(call);
    const csrfRefused = () => json(403, { error: "forbidden_origin", message: "Missing X-Requested-With." });
    switch (key) {
      case "GET /api/auth/me":
        return via ? json(200, this.member) : unauthorized();
      case "POST /api/auth/refresh": {
        // A JWT alone (Bearer or cookie) renews nothing.
        const presented = (call.body as { refreshToken?: string } | undefined)?.refreshToken;
        if (presented !== undefined) {
          if (this.replacedRefreshTokens.has(presented)) return new Response(null, { status: 204 });
          if (!this.refreshTokens.delete(presented)) return unauthorized();
          this.replacedRefreshTokens.add(presented);
          const token = this.issueBearer();
          const refreshToken = this.issueRefreshToken();
          return json(200, { token, refreshToken, expiresAt: expiryOf(this.tokenSeconds), message: "Session renewed." });
        }
        if (!(this.sendsCookies(call) && this.refreshCookie)) return unauthorized();
        if (!call.csrfHeader) return csrfRefused();
        if (this.renewedElsewhere > 0) {
          this.renewedElsewhere--;
          // The other tab's renewal set the new cookies, which this browser shares.
          this.cookieToken = true;
          return new Response(null, { status: 204 });
        }
        // The new JWT only in the (httpOnly) cookie, never in the body.
        this.cookieToken = true;
        return json(200, { expiresAt: expiryOf(this.tokenSeconds), message: "Session renewed." });
      }
      case "POST /api/auth/token": {
        const handoff = (call.body as { handoff?: string } | undefined)?.handoff ?? "";
        if (!this.handoffs.delete(handoff)) {
          return json(400, { error: "invalid_handoff", message: "The handoff code is invalid." });
        }
        return json(200, {
          token: this.issueBearer(),
          refreshToken: this.issueRefreshToken(),
          expiresAt: expiryOf(this.tokenSeconds),
        });
      }
      case "POST /api/auth/logout":
        if (via === "cookie" && !call.csrfHeader) return csrfRefused();
        // Revokes the whole sign-in: cookie, refresh cookie and every Bearer token of it.
        this.cookieToken = false;
        this.refreshCookie = false;
        this.bearerTokens.clear();
        this.refreshTokens.clear();
        this.replacedRefreshTokens.clear();
        return new Response(null, { status: 204 });
      case "POST /api/auth/recheck":
        if (!via) return unauthorized();
        if (via === "cookie" && !call.csrfHeader) return csrfRefused();
        return json(202, { jobId: "job-1", status: "queued" }, { location: "/api/jobs/job-1" });
      case "GET /api/jobs/job-1": {
        if (!via) return unauthorized();
        const done = this.jobPollsLeft-- <= 0;
        if (done && this.jobResult) this.member = this.jobResult;
        const job: JobStatus = {
          id: "job-1",
          kind: "verify_membership",
          status: done ? "succeeded" : "running",
          result: done ? (this.member.isPaidMember ? "paying_member" : "not_a_paying_member") : undefined,
          attempts: 1,
          createdAt: new Date().toISOString(),
        };
        return json(200, job);
      }
      default:
        return json(404, { error: "not_found", message: `No route ${key}` });
    }
  }
}
