// End-to-end test in a real headless Chromium: the real demo binary (api + worker + Patreon mock
// on SQLite) and the example app (built by Vite, served by `vite preview`, /api proxied to the
// api). A member signs in through the mock's chooser page, sees name and tier, loses their pledge
// and rechecks, signs out; the same again in Bearer mode. Screenshots of the sign-in card go to
// e2e/artifacts/ with the servers' logs.
//
// DEMO_BIN: the demo binary (default: <repo>/target/debug/demo). CHROMIUM: the browser
// (default /usr/bin/chromium). Exits non-zero on the first failure.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";


import { launchChromium, processes } from "./lib.mjs";

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const repoRoot = resolve(packageDir, "../..");
const exampleDir = join(repoRoot, "examples/react-app");
const artifacts = join(packageDir, "e2e/artifacts");
const demoBin = resolve(repoRoot, process.env.DEMO_BIN ?? "target/debug/demo");
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const TIMEOUT = 20_000;

const { log, freePort, start, stopAll, waitForHttp, step } = processes("e2e", artifacts);
let failed = false;

/** Runs a command to completion; its output goes to artifacts/<name>.log. */
async function run(name, command, args, options) {
  const child = start(name, command, args, options);
  child.stopping = true; // exiting is what we wait for
  const { code } = await child.exited;
  if (code !== 0) throw new Error(`${name} failed (exit ${code}); see e2e/artifacts/${name}.log`);
}


async function main() {
  if (!existsSync(demoBin)) {
    throw new Error(`demo binary not found at ${demoBin}: build it with \`cargo build -p demo --locked\` or set DEMO_BIN`);
  }
  if (!existsSync(chromiumPath)) throw new Error(`Chromium not found at ${chromiumPath}: apt-get install chromium, or set CHROMIUM`);
  rmSync(artifacts, { recursive: true, force: true });
  mkdirSync(artifacts, { recursive: true });

  const [apiPort, mockPort, appPort] = [await freePort(), await freePort(), await freePort()];
  const api = `http://127.0.0.1:${apiPort}`;
  const mock = `http://127.0.0.1:${mockPort}`;
  const app = `http://127.0.0.1:${appPort}`;
  // The demo keeps SQLite and its secrets under ./data: give it a fresh directory.
  const workDir = mkdtempSync(join(tmpdir(), "patreon-gate-e2e-"));

  try {
    await step("build the example app", () =>
      run("vite-build", join(exampleDir, "node_modules/.bin/vite"), ["build"], { cwd: exampleDir }),
    );

    const demo = start("demo", demoBin, [], {
      cwd: workDir,
      env: {
        ...process.env,
        PORT: String(apiPort),
        MOCK_PORT: String(mockPort),
        // The api sends members back to the example app after signing in.
        FRONTEND_URL: `${app}/`,
        RUST_LOG: process.env.RUST_LOG ?? "info",
      },
    });
    const preview = start(
      "vite-preview",
      join(exampleDir, "node_modules/.bin/vite"),
      ["preview", "--host", "127.0.0.1", "--port", String(appPort), "--strictPort"],
      { cwd: exampleDir, env: { ...process.env, API_URL: api } },
    );
    await step(`start the demo (api ${api}, mock ${mock}) and the app (${app})`, async () => {
      await waitForHttp(`${api}/readyz`, demo, "the demo");
      await waitForHttp(`${app}/`, preview, "vite preview");
    });

    const browser = await launchChromium(chromiumPath);
    try {
      await withFailureScreenshot("cookie-mode", (current) => cookieMode(browser, current, { app, mock }));
      await withFailureScreenshot("bearer-mode", (current) => bearerMode(browser, current, { app }));
    } finally {
      await browser.close();
    }
  } finally {
    await stopAll();
    rmSync(workDir, { recursive: true, force: true });
  }
}

/** Runs a scenario; if it fails, the page it was on is saved as artifacts/failure-<name>.png. */
async function withFailureScreenshot(name, scenario) {
  const current = { page: null };
  try {
    await scenario(current);
  } catch (error) {
    await current.page?.screenshot({ path: join(artifacts, `failure-${name}.png`), fullPage: true }).catch(() => undefined);
    throw error;
  }
}

/** A fresh browser profile that only reaches this machine (the mock's avatar URLs point at Patreon). */
async function newPage(browser) {
  const context = await browser.newContext({ viewport: { width: 900, height: 900 } });
  await context.route(/^https?:\/\/(?!127\.0\.0\.1[:/])/, (route) => route.abort());
  context.setDefaultTimeout(TIMEOUT);
  const page = await context.newPage();
  const consoleErrors = [];
  page.on("console", (message) => {
    if (message.type() === "error") consoleErrors.push(message.text());
  });
  page.on("pageerror", (error) => consoleErrors.push(String(error)));
  return { context, page, consoleErrors };
}

const card = (page) => page.locator("section").filter({ has: page.getByRole("button", { name: /Sign (in with Patreon|out)/ }) });

async function signIn(page, memberName) {
  await page.getByRole("button", { name: "Sign in with Patreon" }).click();
  await page.waitForURL((url) => url.pathname === "/oauth2/authorize");
  await page.getByRole("link", { name: new RegExp(`Continue as ${memberName}`) }).click();
  await page.getByRole("heading", { name: memberName }).waitFor();
}

async function expectSignedOut(page) {
  await page.getByRole("button", { name: "Sign in with Patreon" }).waitFor();
  await page.getByTestId("members-only-fallback").waitFor();
  assert.equal(await page.getByTestId("members-only-content").count(), 0, "members-only content is still shown");
}

async function cookieMode(browser, current, { app, mock }) {
  const { context, page, consoleErrors } = await newPage(browser);
  current.page = page;
  const original = await (await fetch(`${mock}/__mock/users`)).json().then((users) => users.find((u) => u.id === "100000001"));

  await step("cookie mode: a visitor sees the sign-in card and no members-only content", async () => {
    await page.goto(`${app}/`);
    await expectSignedOut(page);
    const text = await card(page).innerText();
    assert.match(text, /Your membership is verified automatically\./);
    assert.doesNotMatch(text, /must be an active paid member/i);
    await card(page).screenshot({ path: join(artifacts, "sign-in-card-signed-out.png") });
  });

  await step("cookie mode: Ada signs in through the mock and sees her name, tier and the members-only post", async () => {
    await signIn(page, "Ada Active");
    assert.equal(await page.getByTestId("patreon-tier").innerText(), "Supporter");
    assert.equal(await page.getByTestId("patreon-status").innerText(), "Paying member");
    await page.getByTestId("members-only-content").waitFor();
    const url = new URL(page.url());
    assert.equal(url.origin, app);
    assert.equal(url.search, "", "auth/handoff were not removed from the URL");
    assert.equal(await page.getByTestId("greeting").innerText(), "Welcome back, Ada Active.");
    await card(page).screenshot({ path: join(artifacts, "sign-in-card-signed-in.png") });
    await page.screenshot({ path: join(artifacts, "example-app-signed-in.png"), fullPage: true });
    const cookies = await context.cookies(app);
    assert.ok(cookies.some((c) => c.name === "auth_token" && c.httpOnly), "no httpOnly auth_token cookie");
  });

  await step("cookie mode: the sign-in survives a reload", async () => {
    await page.reload();
    await page.getByRole("heading", { name: "Ada Active" }).waitFor();
    await page.getByTestId("members-only-content").waitFor();
  });

  await step("cookie mode: Ada's pledge is cancelled at Patreon; 'Recheck my status' hides the post", async () => {
    const cancelled = {
      ...original,
      memberships: original.memberships.map((m) => ({
        ...m,
        patron_status: "former_patron",
        currently_entitled_amount_cents: 0,
        will_pay_amount_cents: 0,
        next_charge_date: null,
        tiers: [],
      })),
    };
    const put = await fetch(`${mock}/__mock/users/100000001`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(cancelled),
    });
    assert.equal(put.status, 200);
    await page.getByRole("button", { name: "Recheck my status" }).click();
    await page.getByText("Checked with Patreon just now: no paid membership found.").waitFor();
    assert.equal(await page.getByTestId("patreon-status").innerText(), "Not a paying member");
    await page.getByTestId("members-only-fallback").waitFor();
    assert.equal(await page.getByTestId("members-only-content").count(), 0);
    await card(page).screenshot({ path: join(artifacts, "sign-in-card-not-paying.png") });
    await fetch(`${mock}/__mock/users/100000001`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(original),
    });
  });

  await step("cookie mode: Fred (free tier) signs in and does not see the post", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await expectSignedOut(page);
    await signIn(page, "Fred Free");
    assert.equal(await page.getByTestId("patreon-tier").innerText(), "No tier");
    assert.equal(await page.getByTestId("patreon-status").innerText(), "Not a paying member");
    await page.getByTestId("members-only-fallback").waitFor();
    assert.equal(await page.getByTestId("members-only-content").count(), 0);
  });

  await step("cookie mode: signing out ends the session on the server", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await expectSignedOut(page);
    const cookies = await context.cookies(app);
    assert.ok(!cookies.some((c) => c.name === "auth_token"), "auth_token cookie survived sign-out");
    await page.reload();
    await expectSignedOut(page);
  });

  assert.deepEqual(consoleErrors.filter(isUnexpectedConsoleError), [], "errors in the browser console");
  await context.close();
}

async function bearerMode(browser, current, { app }) {
  const { context, page, consoleErrors } = await newPage(browser);
  current.page = page;
  const apiCalls = [];
  page.on("request", (request) => {
    if (new URL(request.url()).pathname.startsWith("/api/auth/") && request.resourceType() === "fetch") {
      apiCalls.push({ path: new URL(request.url()).pathname, headers: request.headers() });
    }
  });

  await step("Bearer mode: Ada signs in; the handoff code is exchanged and removed from the URL", async () => {
    await page.goto(`${app}/?mode=bearer`);
    await expectSignedOut(page);
    await signIn(page, "Ada Active");
    assert.equal(await page.getByTestId("patreon-tier").innerText(), "Supporter");
    await page.getByTestId("members-only-content").waitFor();
    assert.equal(new URL(page.url()).search, "?mode=bearer");
    assert.ok(apiCalls.some((c) => c.path === "/api/auth/token"), "no handoff exchange");
    const me = apiCalls.find((c) => c.path === "/api/auth/me" && c.headers.authorization);
    assert.match(me?.headers.authorization ?? "", /^Bearer ey/, "GET /api/auth/me without the Bearer token");
    assert.equal(me.headers.cookie, undefined, "Bearer mode sent cookies");
  });

  await step("Bearer mode: the token kept in sessionStorage survives a reload; sign out", async () => {
    await page.reload();
    await page.getByRole("heading", { name: "Ada Active" }).waitFor();
    await page.getByRole("button", { name: "Sign out" }).click();
    await expectSignedOut(page);
    assert.equal(await page.evaluate(() => sessionStorage.getItem("patreon-gate.token")), null);
  });

  assert.deepEqual(consoleErrors.filter(isUnexpectedConsoleError), [], "errors in the browser console");
  await context.close();
}

/**
 * The browser logs every non-2xx fetch as a console error: the 401s of a signed-out visitor are
 * expected, and so are the aborted avatar requests (this test keeps the browser off the internet).
 */
function isUnexpectedConsoleError(text) {
  return !/status of 401|net::ERR_FAILED|net::ERR_BLOCKED/.test(text);
}

main().then(
  () => log("all end-to-end checks passed; screenshots in clients/typescript/e2e/artifacts/"),
  async (error) => {
    failed = true;
    console.error(`[e2e] FAILED: ${error?.stack ?? error}`);
    await stopAll();
    process.exitCode = 1;
  },
);
process.on("SIGINT", () => void stopAll().then(() => process.exit(130)));
process.on("exit", () => {
  if (failed) console.error("[e2e] logs: clients/typescript/e2e/artifacts/*.log");
});
