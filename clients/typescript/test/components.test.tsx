import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import type { ReactNode } from "react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { AuthProvider, PatreonAuth, RequireMembership } from "../src/react/index.js";
import { ADA, FakeApi, FRED } from "./fake-api.js";

function renderWith(api: FakeApi, ui: ReactNode, navigate = vi.fn()) {
  render(
    <AuthProvider fetch={api.fetch} recheckPollMs={5} navigate={navigate}>
      {ui}
    </AuthProvider>,
  );
  return navigate;
}

beforeEach(() => window.history.replaceState(null, "", "/"));
afterEach(cleanup);

describe("<PatreonAuth />", () => {
  it("invites to sign in, saying membership is verified automatically", async () => {
    const navigate = renderWith(new FakeApi(), <PatreonAuth />);
    expect(screen.getByRole("status").textContent).toMatch(/Checking your sign-in/);

    const button = await screen.findByRole("button", { name: "Sign in with Patreon" });
    const card = screen.getByRole("region", { name: "Sign in with Patreon" });
    expect(card.textContent).toMatch(/Your membership is verified automatically\./);
    expect(card.textContent).not.toMatch(/must be an active paid member/i);

    fireEvent.click(button);
    expect(navigate).toHaveBeenCalledWith("http://localhost:3000/api/auth/patreon/login?return_to=%2F");
  });

  it("shows the signed-in member's name, tier and status, and signs out", async () => {
    const api = new FakeApi({ cookieToken: true });
    renderWith(api, <PatreonAuth />);

    const card = await screen.findByRole("region", { name: "Ada Active" });
    expect(screen.getByTestId("patreon-tier").textContent).toBe("Supporter");
    expect(screen.getByTestId("patreon-status").textContent).toBe("Paying member");
    expect(card.querySelector("img")?.getAttribute("src")).toBe(ADA.avatarUrl);

    fireEvent.click(screen.getByRole("button", { name: "Sign out" }));
    await screen.findByRole("button", { name: "Sign in with Patreon" });
    expect(api.paths()).toContain("POST /api/auth/logout");
  });

  it("rechecks the status and announces the result", async () => {
    const api = new FakeApi({ cookieToken: true, member: FRED, jobResult: { ...FRED, isPaidMember: true, membershipActive: true, membershipTier: "Supporter" } });
    renderWith(api, <PatreonAuth />);
    expect((await screen.findByTestId("patreon-status")).textContent).toBe("Not a paying member");

    fireEvent.click(screen.getByRole("button", { name: "Recheck my status" }));
    await waitFor(() =>
      expect(screen.getByRole("status").textContent).toBe("Checked with Patreon just now: you are a paying member."),
    );
    expect(screen.getByTestId("patreon-status").textContent).toBe("Paying member");
    expect(screen.getByTestId("patreon-tier").textContent).toBe("Supporter");
  });

  it("asks a member whose Patreon authorization ended to sign in again", async () => {
    renderWith(new FakeApi({ cookieToken: true, member: { ...ADA, needsRelogin: true } }), <PatreonAuth />);
    expect((await screen.findByRole("alert")).textContent).toMatch(/Sign in with Patreon again/);
    expect(screen.getByRole("button", { name: "Sign in with Patreon again" })).toBeTruthy();
    expect(screen.queryByRole("button", { name: "Recheck my status" })).toBeNull();
  });
});

describe("<RequireMembership>", () => {
  const gated = (
    <RequireMembership fallback={<p>Become a patron to read this.</p>} loading={<p>Loading…</p>}>
      <p>Paid post</p>
    </RequireMembership>
  );

  it("shows the loading placeholder, then the children to a paying member", async () => {
    renderWith(new FakeApi({ cookieToken: true }), gated);
    expect(screen.getByText("Loading…")).toBeTruthy();
    expect(await screen.findByText("Paid post")).toBeTruthy();
    expect(screen.queryByText("Become a patron to read this.")).toBeNull();
  });

  it("shows the fallback to a free member", async () => {
    renderWith(new FakeApi({ cookieToken: true, member: FRED }), gated);
    expect(await screen.findByText("Become a patron to read this.")).toBeTruthy();
    expect(screen.queryByText("Paid post")).toBeNull();
  });

  it("shows the fallback to a visitor, and hides the children once the member signs out", async () => {
    const api = new FakeApi({ cookieToken: true });
    renderWith(
      api,
      <>
        <PatreonAuth />
        {gated}
      </>,
    );
    expect(await screen.findByText("Paid post")).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Sign out" }));
    expect(await screen.findByText("Become a patron to read this.")).toBeTruthy();
    expect(screen.queryByText("Paid post")).toBeNull();
  });
});
