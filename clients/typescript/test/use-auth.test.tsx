import { act, cleanup, renderHook, waitFor } from "@testing-library/react";
import { StrictMode, type ReactNode } from "react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import type { AuthOptions } from "../src/auth-store.js";
import { AuthProvider, useAuth } from "../src/react/index.js";
import { ADA, FakeApi, FRED, makeToken } from "./fake-api.js";

function wrapperFor(api: FakeApi, options: AuthOptions = {}) {
  return ({ children }: { children: ReactNode }) => (
    <AuthProvider fetch={api.fetch} recheckPollMs={5} {...options}>
      {children}
    </AuthProvider>
  );
}

function renderAuth(api: FakeApi, options: AuthOptions = {}) {
  return renderHook(() => useAuth(), { wrapper: wrapperFor(api, options) });
}

beforeEach(() => {
  window.history.replaceState(null, "", "/");
  sessionStorage.clear();
});

afterEach(() => {
  cleanup();
  vi.useRealTimers();
});

describe("useAuth in cookie mode", () => {
  it("is loading at first, then signed out when there is no sign-in", async () => {
    const api = new FakeApi();
    const { result } = renderAuth(api);
    expect(result.current).toMatchObject({ isLoading: true, user: null, isAuthenticated: false });

    await waitFor(() => expect(result.current.isLoading).toBe(false));
    expect(result.current).toMatchObject({ user: null, isAuthenticated: false, error: null });
    // The httpOnly JWT cannot be seen from JS, so an unauthenticated page tries the refresh cookie once.
    expect(api.paths()).toEqual(["GET /api/auth/me", "POST /api/auth/refresh"]);
  });

  it("is signed in with the member from /api/auth/me, sending cookies and the CSRF header", async () => {
    const api = new FakeApi({ cookieToken: true });
    const { result } = renderAuth(api);

    await waitFor(() => expect(result.current.isAuthenticated).toBe(true));
    expect(result.current.user).toEqual(ADA);
    expect(result.current.error).toBeNull();
    // The token's expiry is unknown to a cookie page: it renews once to learn when to renew next.
    await waitFor(() => expect(api.paths()).toEqual(["GET /api/auth/me", "POST /api/auth/refresh"]));
    expect(api.calls.every((c) => c.credentials === "include")).toBe(true);
    expect(api.calls[0]!.csrfHeader).toBeNull();
    expect(api.calls[1]!.csrfHeader).toBe("fetch");
  });

  it("renews an expired JWT from the refresh cookie and signs in", async () => {
    const api = new FakeApi({ cookieToken: false, refreshCookie: true });
    const { result } = renderAuth(api);

    await waitFor(() => expect(result.current.user?.name).toBe("Ada Active"));
    expect(api.paths()).toEqual(["GET /api/auth/me", "POST /api/auth/refresh", "GET /api/auth/me"]);
  });

  it("signs out on the server, and a later 401 keeps the member signed out", async () => {
    const api = new FakeApi({ cookieToken: true });
    const { result } = renderAuth(api);
    await waitFor(() => expect(result.current.isAuthenticated).toBe(true));

    await act(() => result.current.logout());
    expect(result.current).toMatchObject({ user: null, isAuthenticated: false, error: null });
    const logout = api.calls.find((c) => c.path === "/api/auth/logout");
    expect(logout?.csrfHeader).toBe("fetch");

    // The session is gone on the server: whatever asks again gets 401 and stays signed out.
    await act(async () => {
      expect(await result.current.refresh()).toBeNull();
    });
    expect(result.current).toMatchObject({ user: null, isAuthenticated: false, error: null });
    expect(api.calls.at(-1)).toMatchObject({ method: "POST", path: "/api/auth/refresh" });
  });

  it("treats a 401 on any call as signed out (session revoked elsewhere)", async () => {
    const api = new FakeApi({ cookieToken: true });
    const { result } = renderAuth(api);
    await waitFor(() => expect(result.current.isAuthenticated).toBe(true));
    await waitFor(() => expect(api.paths()).toContain("POST /api/auth/refresh"));

    api.cookieToken = false;
    api.refreshCookie = false;
    let outcome: Awaited<ReturnType<typeof result.current.recheck>> | undefined;
    await act(async () => {
      outcome = await result.current.recheck();
    });
    expect(outcome?.status).toBe("signed_out");
    expect(result.current).toMatchObject({ user: null, isAuthenticated: false });
  });

  it("shows the reason of a failed sign-in and cleans it from the URL", async () => {
    window.history.replaceState(null, "", "/members?auth=error&reason=access_denied&tab=2");
    const api = new FakeApi();
    const { result } = renderAuth(api);

    await waitFor(() => expect(result.current.isLoading).toBe(false));
    expect(result.current.error).toEqual({
      code: "access_denied",
      message: "You declined the Patreon consent, so you are not signed in.",
    });
    expect(window.location.pathname + window.location.search).toBe("/members?tab=2");
  });

  it("reports an unreachable API as an error, not as signed out, until it answers again", async () => {
    const api = new FakeApi({ cookieToken: true });
    let offline = true;
    const flakyFetch: typeof fetch = (input, init) =>
      offline ? Promise.reject(new TypeError("Failed to fetch")) : api.fetch(input, init);
    const { result } = renderAuth(api, { fetch: flakyFetch });
    await waitFor(() => expect(result.current.isLoading).toBe(false));
    expect(result.current.error?.code).toBe("network");
    expect(result.current.user).toBeNull();

    offline = false;
    await act(async () => {
      await result.current.refresh();
    });
    expect(result.current.error).toBeNull();
    expect(result.current.user?.name).toBe("Ada Active");
  });

  it("rechecks with Patreon, polls the job and reloads the member", async () => {
    const api = new FakeApi({ cookieToken: true, member: FRED, jobPolls: 2, jobResult: { ...FRED, isPaidMember: true, membershipActive: true } });
    const { result } = renderAuth(api);
    await waitFor(() => expect(result.current.user?.isPaidMember).toBe(false));

    let outcome: Awaited<ReturnType<typeof result.current.recheck>> | undefined;
    await act(async () => {
      outcome = await result.current.recheck();
    });
    expect(outcome).toMatchObject({ status: "succeeded", message: "Checked with Patreon just now: you are a paying member." });
    expect(result.current.user?.isPaidMember).toBe(true);
    expect(api.paths().filter((p) => p === "GET /api/jobs/job-1")).toHaveLength(3);
    expect(api.calls.find((c) => c.path === "/api/auth/recheck")?.csrfHeader).toBe("fetch");
  });

  it("never sees the JWT: a renewal's body only says when it expires", async () => {
    const api = new FakeApi({ cookieToken: true });
    const { result } = renderAuth(api);
    await waitFor(() => expect(api.paths()).toEqual(["GET /api/auth/me", "POST /api/auth/refresh"]));

    expect(api.calls[1]!.body).toBeUndefined();
    expect(api.calls[1]!.authorization).toBeNull();
    expect(result.current.isAuthenticated).toBe(true);
  });

  it("stays signed in when another tab renewed a moment before (204)", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    const api = new FakeApi({ cookieToken: false, refreshCookie: true, renewedElsewhere: 1 });
    const { result } = renderAuth(api);
    await act(() => vi.advanceTimersByTimeAsync(0));

    // Nothing new was issued for this tab, but the browser shares the other tab's new cookies.
    expect(result.current.user?.name).toBe("Ada Active");
    // Their expiry is unknown here: one renewal of its own tells it when to renew next.
    expect(api.paths()).toEqual(["GET /api/auth/me", "POST /api/auth/refresh", "GET /api/auth/me", "POST /api/auth/refresh"]);
    await act(() => vi.advanceTimersByTimeAsync(60_000));
    expect(api.paths()).toHaveLength(4);
    expect(result.current.isAuthenticated).toBe(true);
  });

  it("works without a provider, with options of its own", async () => {
    const api = new FakeApi({ cookieToken: true });
    const { result } = renderHook(() => useAuth({ fetch: api.fetch }));
    await waitFor(() => expect(result.current.user?.name).toBe("Ada Active"));
  });
});

describe("useAuth in Bearer mode", () => {
  it("exchanges the handoff code once, keeps the token in memory and removes the code from the URL", async () => {
    window.history.replaceState(null, "", "/posts/42?auth=success&handoff=HANDOFF_CODE_0123456789&keep=1#comments");
    const api = new FakeApi({ handoffs: ["HANDOFF_CODE_0123456789"] });
    // StrictMode mounts effects twice: the single-use code must still be sent only once.
    const { result } = renderHook(() => useAuth(), {
      wrapper: ({ children }) => <StrictMode>{wrapperFor(api, { mode: "bearer" })({ children })}</StrictMode>,
    });

    expect(window.location.pathname + window.location.search + window.location.hash).toBe("/posts/42?keep=1#comments");
    await waitFor(() => expect(result.current.user?.name).toBe("Ada Active"));
    expect(api.paths()).toEqual(["POST /api/auth/token", "GET /api/auth/me"]);
    expect(api.calls[0]!.body).toEqual({ handoff: "HANDOFF_CODE_0123456789" });
    const me = api.calls[1]!;
    expect(me.authorization).toMatch(/^Bearer ey/);
    expect(api.bearerTokens.has(me.authorization!.slice("Bearer ".length))).toBe(true);
    expect(api.refreshTokens.size).toBe(1);
    // Bearer mode does not lean on cookies, and nothing is stored unless asked for.
    expect(api.calls.every((c) => c.credentials === "omit")).toBe(true);
    expect(sessionStorage.length).toBe(0);
  });

  it("says so when the handoff code was already used", async () => {
    window.history.replaceState(null, "", "/?auth=success&handoff=USED_CODE_0123456789");
    const api = new FakeApi();
    const { result } = renderAuth(api, { mode: "bearer" });

    await waitFor(() => expect(result.current.isLoading).toBe(false));
    expect(result.current.user).toBeNull();
    expect(result.current.error).toEqual({
      code: "invalid_handoff",
      message: "The sign-in link expired or was already used. Sign in again.",
    });
    expect(window.location.search).toBe("");
  });

  it("renews the token before it expires and uses the new one", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
    vi.setSystemTime(new Date("2026-11-28T08:00:00Z"));
    const api = new FakeApi({ tokenSeconds: 60 });
    const first = api.issueBearer(60);
    const firstRefresh = api.issueRefreshToken();
    sessionStorage.setItem("patreon-gate.token", first);
    sessionStorage.setItem("patreon-gate.token.refresh", firstRefresh);
    const { result } = renderAuth(api, { mode: "bearer", storage: sessionStorage });
    await act(() => vi.advanceTimersByTimeAsync(0));
    expect(result.current.user?.name).toBe("Ada Active");
    expect(api.paths()).toEqual(["GET /api/auth/me"]);

    // A 60 s token is renewed 15 s before it expires, not earlier.
    await act(() => vi.advanceTimersByTimeAsync(44_000));
    expect(api.paths()).toEqual(["GET /api/auth/me"]);
    await act(() => vi.advanceTimersByTimeAsync(2_000));
    expect(api.paths()).toEqual(["GET /api/auth/me", "POST /api/auth/refresh"]);
    // Renewed from the refresh token, in the body; the JWT alone would renew nothing.
    expect(api.calls[1]!.body).toEqual({ refreshToken: firstRefresh });
    const second = sessionStorage.getItem("patreon-gate.token");
    expect(second).not.toBe(first);
    const secondRefresh = sessionStorage.getItem("patreon-gate.token.refresh");
    expect(secondRefresh).not.toBe(firstRefresh);

    // The old token expires; the session goes on with the renewed one.
    await act(() => vi.advanceTimersByTimeAsync(20_000));
    api.bearerTokens.delete(first);
    await act(async () => {
      const recheck = result.current.recheck();
      await vi.advanceTimersByTimeAsync(100); // the job polls
      expect((await recheck).status).toBe("succeeded");
    });
    expect(api.calls.find((c) => c.path === "/api/auth/recheck")?.authorization).toBe(`Bearer ${second}`);
    expect(result.current.isAuthenticated).toBe(true);

    // ...and the renewed token is renewed in turn, 45 s after it was issued.
    await act(() => vi.advanceTimersByTimeAsync(25_000));
    const refreshes = api.calls.filter((c) => c.path === "/api/auth/refresh");
    expect(refreshes.map((c) => c.body)).toEqual([{ refreshToken: firstRefresh }, { refreshToken: secondRefresh }]);
  });

  it("renews from the stored refresh token after a reload when the stored JWT has expired", async () => {
    const api = new FakeApi();
    sessionStorage.setItem("patreon-gate.token", makeToken(60, Date.now() - 120_000));
    const refreshToken = api.issueRefreshToken();
    sessionStorage.setItem("patreon-gate.token.refresh", refreshToken);
    const { result } = renderAuth(api, { mode: "bearer", storage: sessionStorage });

    await waitFor(() => expect(result.current.user?.name).toBe("Ada Active"));
    expect(api.paths()).toEqual(["POST /api/auth/refresh", "GET /api/auth/me"]);
    expect(api.calls[0]!.body).toEqual({ refreshToken });
    expect(api.calls[1]!.authorization).toBe(`Bearer ${sessionStorage.getItem("patreon-gate.token")}`);
    expect(sessionStorage.getItem("patreon-gate.token.refresh")).not.toBe(refreshToken);
  });

  it("signs out on a 401 and forgets the stored token", async () => {
    const api = new FakeApi();
    sessionStorage.setItem("patreon-gate.token", api.issueBearer());
    sessionStorage.setItem("patreon-gate.token.refresh", api.issueRefreshToken());
    const { result } = renderAuth(api, { mode: "bearer", storage: sessionStorage });
    await waitFor(() => expect(result.current.isAuthenticated).toBe(true));

    // Revoked on the server (e.g. signed out in another tab).
    api.bearerTokens.clear();
    api.refreshTokens.clear();
    await act(async () => {
      await result.current.refresh();
    });
    expect(result.current).toMatchObject({ user: null, isAuthenticated: false });
    expect(sessionStorage.getItem("patreon-gate.token")).toBeNull();
    expect(sessionStorage.getItem("patreon-gate.token.refresh")).toBeNull();
  });

  it("does not let a renewal answered after sign-out bring the token back", async () => {
    const api = new FakeApi();
    sessionStorage.setItem("patreon-gate.token", api.issueBearer());
    sessionStorage.setItem("patreon-gate.token.refresh", api.issueRefreshToken());
    let releaseRefresh: (() => void) | null = null;
    const slowFetch: typeof fetch = async (input, init) => {
      const request = new Request(input, init);
      const response = await api.fetch(request);
      // The server has renewed the token; its answer reaches the page only after the sign-out.
      if (new URL(request.url).pathname === "/api/auth/refresh") {
        await new Promise<void>((resolve) => (releaseRefresh = resolve));
      }
      return response;
    };
    const { result } = renderAuth(api, { mode: "bearer", storage: sessionStorage, fetch: slowFetch });
    await waitFor(() => expect(result.current.isAuthenticated).toBe(true));

    let refreshed: Promise<unknown> = Promise.resolve();
    act(() => {
      refreshed = result.current.refresh();
    });
    await waitFor(() => expect(releaseRefresh).not.toBeNull());
    await act(() => result.current.logout());
    await act(async () => {
      releaseRefresh!();
      await refreshed;
    });
    // Nothing is sent with the late token: the sign-out was the last word.
    expect(api.calls.at(-1)?.path).toBe("/api/auth/logout");
    expect(result.current.isAuthenticated).toBe(false);
    expect(sessionStorage.getItem("patreon-gate.token")).toBeNull();
    expect(sessionStorage.getItem("patreon-gate.token.refresh")).toBeNull();
  });

  it("drops an expired stored token without calling the API", async () => {
    const api = new FakeApi();
    sessionStorage.setItem("patreon-gate.token", makeToken(60, Date.now() - 120_000));
    const { result } = renderAuth(api, { mode: "bearer", storage: sessionStorage });
    await waitFor(() => expect(result.current.isLoading).toBe(false));
    expect(result.current.user).toBeNull();
    expect(api.calls).toHaveLength(0);
    expect(sessionStorage.getItem("patreon-gate.token")).toBeNull();
  });

  it("logs out with the Bearer token and forgets it", async () => {
    const api = new FakeApi();
    const token = api.issueBearer();
    sessionStorage.setItem("patreon-gate.token", token);
    const { result } = renderAuth(api, { mode: "bearer", storage: sessionStorage });
    await waitFor(() => expect(result.current.isAuthenticated).toBe(true));

    await act(() => result.current.logout());
    expect(api.calls.at(-1)).toMatchObject({ path: "/api/auth/logout", authorization: `Bearer ${token}` });
    expect(result.current.isAuthenticated).toBe(false);
    expect(sessionStorage.getItem("patreon-gate.token")).toBeNull();
  });
});

describe("login", () => {
  it("leaves for the API's sign-in route with the current page as return_to", async () => {
    window.history.replaceState(null, "", "/posts/42?page=2");
    const navigate = vi.fn();
    const api = new FakeApi();
    const { result } = renderAuth(api, { navigate, baseUrl: "https://auth.example.com/" });
    await waitFor(() => expect(result.current.isLoading).toBe(false));

    result.current.login();
    result.current.login("/members");
    expect(navigate.mock.calls).toEqual([
      ["https://auth.example.com/api/auth/patreon/login?return_to=%2Fposts%2F42%3Fpage%3D2"],
      ["https://auth.example.com/api/auth/patreon/login?return_to=%2Fmembers"],
    ]);
  });
});
