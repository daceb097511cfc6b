// End-to-end test of the admin dashboard (/admin, served by the api) in a real headless Chromium
// against the real demo binary (api + worker + Patreon mock on SQLite, in a fresh directory).
// Ada signs in once so she exists; a non-admin gets the 403 page; the admin (the mock's creator,
// Cora) signs in from /admin, finds Ada, cancels her pledge at the mock, presses "Recheck now"
// and sees her status change; runs a sweep and watches it finish; the dashboard is checked on a
// 375 px phone, where the sign-in then ends under the page. Screenshots and the demo's log go to
// e2e/artifacts/admin-*.
//
// DEMO_BIN: the demo binary (default: <repo>/target/debug/demo). CHROMIUM: the browser
// (default /usr/bin/chromium). Exits non-zero on the first failure.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";


import { launchChromium, processes } from "./lib.mjs";

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const repoRoot = resolve(packageDir, "../..");
const artifacts = join(packageDir, "e2e/artifacts");
const demoBin = resolve(repoRoot, process.env.DEMO_BIN ?? "target/debug/demo");
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const TIMEOUT = 20_000;
const ADA = "100000001";
const FRAN = "100000003"; // signs in late and is erased: no other step needs her

const { log, freePort, start, stopAll, waitForHttp, step } = processes("e2e admin", artifacts);

async function main() {
  if (!existsSync(demoBin)) {
    throw new Error(`demo binary not found at ${demoBin}: build it with \`cargo build -p demo --locked\` or set DEMO_BIN`);
  }
  if (!existsSync(chromiumPath)) throw new Error(`Chromium not found at ${chromiumPath}: apt-get install chromium, or set CHROMIUM`);
  // Share the directory with run.mjs's artifacts: replace only our own files.
  mkdirSync(artifacts, { recursive: true });
  for (const file of readdirSync(artifacts)) {
    if (file.startsWith("admin-") || file.startsWith("failure-admin")) rmSync(join(artifacts, file));
  }

  const [apiPort, mockPort] = [await freePort(), await freePort()];
  const api = `http://127.0.0.1:${apiPort}`;
  const mock = `http://127.0.0.1:${mockPort}`;
  const workDir = mkdtempSync(join(tmpdir(), "patreon-gate-e2e-admin-"));
  // The demo's own defaults: SQLite under workDir, FRONTEND_URL = the api (so /admin is ours),
  // the mock's creator as the one admin. Nothing from the caller's environment overrides them.
  const env = { ...process.env, PORT: String(apiPort), MOCK_PORT: String(mockPort), RUST_LOG: process.env.RUST_LOG ?? "info" };
  for (const name of ["FRONTEND_URL", "ADMIN_PATREON_IDS", "DATABASE_URL", "REDIS_URL", "QUEUE_SQLITE_URL", "CORS_ALLOWED_ORIGINS"]) {
    delete env[name];
  }

  try {
    const demo = start("admin-demo", demoBin, [], { cwd: workDir, env });
    await step(`start the demo (api ${api}, mock ${mock})`, () => waitForHttp(`${api}/readyz`, demo, "the demo"));
    const browser = await launchChromium(chromiumPath);
    try {
      await scenario(browser, { api, mock });
    } catch (error) {
      await currentPage?.screenshot({ path: join(artifacts, "failure-admin.png"), fullPage: true }).catch(() => undefined);
      throw error;
    } finally {
      await browser.close();
    }
  } finally {
    await stopAll();
    rmSync(workDir, { recursive: true, force: true });
  }
}

/** A fresh browser profile that only reaches this machine. */
async function newPage(browser, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...options });
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

/**
 * Expected console noise: the sign-in page's one renewal attempt answers 401, the non-admin's
 * page is a 403, and avatar requests to the internet are blocked on purpose.
 */
function unexpected(errors) {
  return errors.filter((text) => !/status of 40[13]|net::ERR_FAILED|net::ERR_BLOCKED/.test(text));
}

async function choosePersona(page, name) {
  await page.waitForURL((url) => url.pathname === "/oauth2/authorize");
  await page.getByRole("link", { name: new RegExp(`Continue as ${name}`) }).click();
}

const memberRow = (page, name) => page.locator("#members-body tr").filter({ hasText: name });

let currentPage = null;

async function scenario(browser, { api, mock }) {
  const ada = await newPage(browser);
  currentPage = ada.page;

  await step("Ada signs in on the demo page once, so the gate knows her", async () => {
    await ada.page.goto(`${api}/`);
    await ada.page.getByRole("link", { name: "Sign in with Patreon" }).click();
    await choosePersona(ada.page, "Ada Active");
    await ada.page.getByRole("heading", { name: "Ada Active" }).waitFor();
  });

  await step("Ada is not an admin: /admin answers 403 with a page saying so", async () => {
    const response = await ada.page.goto(`${api}/admin`);
    assert.equal(response.status(), 403);
    await ada.page.getByRole("heading", { name: "Admins only" }).waitFor();
    assert.match(await ada.page.locator("main").innerText(), /not one of this site's admins/);
    assert.equal(await ada.page.locator("#members-table").count(), 0);
    await ada.page.screenshot({ path: join(artifacts, "admin-forbidden.png") });
  });
  assert.deepEqual(unexpected(ada.consoleErrors), [], "errors in Ada's browser console");
  await ada.context.close();

  const admin = await newPage(browser);
  const page = admin.page;
  currentPage = page;

  await step("signed out, /admin is the sign-in page; the admin signs in from it and lands on the dashboard", async () => {
    const response = await page.goto(`${api}/admin`);
    assert.equal(response.status(), 200);
    const signIn = page.getByRole("link", { name: "Sign in with Patreon" });
    await signIn.waitFor();
    assert.equal(await signIn.getAttribute("href"), "/api/auth/patreon/login?return_to=/admin");
    await page.screenshot({ path: join(artifacts, "admin-sign-in.png") });
    await signIn.click();
    await choosePersona(page, "Cora Creator");
    await page.waitForURL((url) => url.pathname === "/admin");
    await page.locator("#members-body tr[data-member-id]").first().waitFor();
    assert.equal(new URL(page.url()).search, "", "auth/handoff were not removed from the URL");
    await page.getByText("Signed in as Cora Creator").waitFor();
  });

  await step("the admin finds Ada by searching; she is paying", async () => {
    await page.getByLabel("Search").fill("ada");
    await page.waitForFunction(() => {
      const rows = document.querySelectorAll("#members-body tr[data-member-id]");
      return rows.length === 1 && rows[0].textContent.includes("Ada Active");
    });
    const row = memberRow(page, "Ada Active");
    assert.equal(await row.locator("[data-status]").innerText(), "Paying");
    assert.match(await row.innerText(), new RegExp(ADA));
    assert.match(await row.innerText(), /Supporter/);
    assert.equal(await page.locator("#page-info").innerText(), "1–1 of 1");
  });

  await step("the status filter narrows the list, and clearing the search shows everyone", async () => {
    await page.getByLabel("Search").fill("");
    await page.getByLabel("Status").selectOption("not_paying");
    await page.waitForFunction(() => !document.querySelector("#members-body")?.textContent.includes("Ada Active"));
    await page.getByLabel("Status").selectOption("");
    await memberRow(page, "Ada Active").waitFor();
    await memberRow(page, "Cora Creator").waitFor();
    await page.screenshot({ path: join(artifacts, "admin-dashboard-desktop.png"), fullPage: true });
  });

  await step("Ada's pledge is cancelled at Patreon; 'Recheck now' shows her as not paying", async () => {
    const users = await (await fetch(`${mock}/__mock/users`)).json();
    const original = users.find((u) => u.id === ADA);
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
    const put = await fetch(`${mock}/__mock/users/${ADA}`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(cancelled),
    });
    assert.equal(put.status, 200);

    const posts = [];
    page.on("request", (request) => {
      if (request.method() === "POST") posts.push(request);
    });
    await memberRow(page, "Ada Active").getByRole("button", { name: "Ada Active" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByRole("heading", { name: "Ada Active" }).waitFor();
    await dialog.locator("#history-body tr[data-outcome]").first().waitFor();
    await dialog.getByRole("button", { name: "Recheck now" }).click();
    await dialog.getByText("Checked with Patreon just now: not a paying member.").waitFor();
    await dialog.locator('#member-facts [data-status="not-paying"]').waitFor();
    // The demo's mock also sends Patreon's webhook for the change, so the change itself may be
    // recorded by the webhook just before the admin's recheck confirms it.
    // The webhook's own recheck may land after the admin's, so look for the admin's row. When
    // the webhook's recheck is still open as the admin clicks, that open check answers the click
    // (one open check per member, whoever asked), and its row says "Webhook".
    const adminRow = dialog
      .locator("#history-body tr")
      .filter({ hasText: /Admin recheck|Webhook/ })
      .first();
    await adminRow.waitFor();
    assert.match(await adminRow.getAttribute("data-outcome"), /^(changed|verified)$/);
    const change = dialog
      .locator("#history-body tr")
      .filter({ hasText: "paying: yes → no" })
      .filter({ hasText: "active_patron → former_patron" });
    await change.first().waitFor();
    await page.screenshot({ path: join(artifacts, "admin-member-desktop.png") });

    const recheck = posts.find((r) => new URL(r.url()).pathname.endsWith("/recheck"));
    assert.ok(recheck, "no recheck POST");
    assert.equal(recheck.headers()["x-requested-with"], "XMLHttpRequest");

    await dialog.getByRole("button", { name: "Close" }).click();
    await memberRow(page, "Ada Active").locator('[data-status="not-paying"]').waitFor();
    assert.equal(await memberRow(page, "Ada Active").locator("[data-status]").innerText(), "Not paying");
  });

  await step("a recheck that gives up (Patreon keeps answering 503) is listed under dead jobs; Retry queues it again", async () => {
    // A 503 spends an attempt; a 429 would not (the check just waits for Patreon's Retry-After).
    const fault = { fail_next: 50, status: 503 };
    const setFaults = (faults) =>
      fetch(`${mock}/__mock/faults`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(faults) });
    assert.equal((await setFaults({ identity: fault, members: fault, token: fault })).status, 200);
    try {
      await memberRow(page, "Ada Active").getByRole("button", { name: "Ada Active" }).click();
      const dialog = page.getByRole("dialog");
      await dialog.getByRole("button", { name: "Recheck now" }).click();
      await dialog.getByText("The check failed: unavailable.").waitFor({ timeout: 60_000 });
      await dialog.getByRole("button", { name: "Close" }).click();
    } finally {
      assert.equal((await setFaults({})).status, 200);
    }
    const dead = page.locator("#dead-list li").filter({ hasText: "Recheck" });
    await dead.waitFor();
    assert.match(await dead.innerText(), new RegExp(`member ${ADA}`));
    assert.match(await dead.innerText(), /unavailable after 5 attempts/);
    await page.screenshot({ path: join(artifacts, "admin-dead-job-desktop.png"), fullPage: true });
    await dead.getByRole("button", { name: "Retry" }).click();
    await page.locator("#dead-note").getByText(`Recheck for member ${ADA} queued again.`).waitFor();
    await page.locator("#dead-list").getByText("No dead jobs.").waitFor();
  });

  await step("'Run sweep now' starts a sweep; its progress is followed until it finishes", async () => {
    await page.getByRole("button", { name: "Run sweep now" }).click();
    await page.locator("#sweep-note").getByText(/Sweep #\d+ finished: \d+ verified/).waitFor({ timeout: 30_000 });
    const run = page.locator("#sweep-list li[data-sweep-id]").first();
    assert.match(await run.innerText(), /admin/);
    assert.match(await run.innerText(), /done in \d+ s/);
    assert.match(await run.innerText(), /\b(\d+)\/\1 checked/);
    assert.match(await page.locator("#schedule").innerText(), /\S/);
    await page.locator("#dead-list").getByText("No dead jobs.").waitFor();
    await page.screenshot({ path: join(artifacts, "admin-dashboard-desktop-after.png"), fullPage: true });
  });
  const fran = await newPage(browser);
  await step("Fran signs in on the demo page, so there is a member to export and erase", async () => {
    await fran.page.goto(`${api}/`);
    await fran.page.getByRole("link", { name: "Sign in with Patreon" }).click();
    await choosePersona(fran.page, "Fran Former");
    await fran.page.getByRole("heading", { name: "Fran Former" }).waitFor();
    assert.equal((await fran.page.request.get(`${api}/api/auth/me`)).status(), 200);
  });

  let franId = null;
  await step("'Export data (JSON)' downloads everything stored about Fran as member-<patreon id>.json", async () => {
    await page.getByLabel("Search").fill("fran");
    const row = memberRow(page, "Fran Former");
    await row.waitFor();
    franId = await row.getAttribute("data-member-id");
    await row.getByRole("button", { name: "Fran Former" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByRole("heading", { name: "Fran Former" }).waitFor();
    const exportButton = dialog.getByRole("button", { name: "Export data (JSON)" });
    await page.waitForFunction(() => !document.getElementById("export-member").disabled);
    const [download] = await Promise.all([page.waitForEvent("download"), exportButton.click()]);
    assert.equal(download.suggestedFilename(), `member-${FRAN}.json`);
    assert.equal(await download.failure(), null, "the download failed (CSP?)");
    const exported = JSON.parse(readFileSync(await download.path(), "utf8"));
    assert.equal(exported.format_version, 1);
    assert.equal(exported.member.patreon_id, FRAN);
    assert.ok(Array.isArray(exported.sessions) && exported.sessions.length >= 1, "Fran's sign-in is in the export");
    await dialog.locator("#data-note").getByText(`Saved member-${FRAN}.json.`).waitFor();
  });

  await step("'Erase member…' needs Fran's Patreon id typed before it erases; then she is gone", async () => {
    const dialog = page.getByRole("dialog");
    await dialog.getByRole("button", { name: "Erase member…" }).click();
    const confirm = dialog.getByLabel(/type the Patreon id/);
    assert.equal(await page.evaluate(() => document.activeElement?.id), "erase-confirm", "focus moves to the confirmation");
    const erase = dialog.getByRole("button", { name: "Erase permanently" });
    assert.equal(await erase.isDisabled(), true, "enabled before the id was typed");
    await confirm.fill(ADA);
    assert.equal(await erase.isDisabled(), true, "enabled by another member's id");
    await confirm.fill(FRAN.slice(0, -1));
    assert.equal(await erase.isDisabled(), true, "enabled by part of the id");
    // Cancel closes the confirmation and forgets what was typed.
    await dialog.getByRole("button", { name: "Cancel" }).click();
    assert.equal(await dialog.locator("#erase-form").isHidden(), true);
    await dialog.getByRole("button", { name: "Erase member…" }).click();
    assert.equal(await confirm.inputValue(), "");
    await confirm.fill(FRAN);
    assert.equal(await erase.isEnabled(), true);
    await page.screenshot({ path: join(artifacts, "admin-erase-desktop.png") });

    const deletes = [];
    page.on("request", (request) => {
      if (request.method() === "DELETE") deletes.push(request);
    });
    await erase.click();
    const notice = page.locator("#notice");
    await notice.waitFor();
    assert.match(await notice.innerText(), new RegExp(`^Erased Fran Former \\(Patreon id ${FRAN}\\): member 1, sign-ins [1-9]`));
    assert.equal(await page.getByRole("dialog").count(), 0, "the member panel stays open");
    await page.locator("#members-body").getByText("No members match.").waitFor();
    await page.getByLabel("Search").fill("");
    await memberRow(page, "Ada Active").waitFor();
    assert.equal(await memberRow(page, "Fran Former").count(), 0, "Fran is still listed");
    await page.screenshot({ path: join(artifacts, "admin-erased-desktop.png") });

    assert.equal(deletes.length, 1);
    assert.equal(deletes[0].headers()["x-requested-with"], "XMLHttpRequest");
    assert.equal((await page.request.get(`${api}/api/admin/members/${franId}`)).status(), 404);
    // Her sessions ended with her.
    assert.equal((await fran.page.request.get(`${api}/api/auth/me`)).status(), 401);
  });
  await fran.context.close();
  assert.deepEqual(unexpected(admin.consoleErrors), [], "errors in the admin's browser console");

  const phone = await newPage(browser, {
    viewport: { width: 375, height: 812 },
    isMobile: true,
    hasTouch: true,
    storageState: await admin.context.storageState(),
  });
  currentPage = phone.page;
  await step("on a 375 px phone the dashboard fits the width: rows are cards, the member fills the screen", async () => {
    await phone.page.goto(`${api}/admin`);
    await memberRow(phone.page, "Ada Active").waitFor();
    const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow} px`);
    const header = await phone.page.locator("#members-table thead").isVisible();
    assert.equal(header, false, "the table header should give way to labelled cards");
    await phone.page.screenshot({ path: join(artifacts, "admin-dashboard-phone.png") });
    await phone.page.screenshot({ path: join(artifacts, "admin-dashboard-phone-full.png"), fullPage: true });
    await memberRow(phone.page, "Ada Active").getByRole("button", { name: "Ada Active" }).click();
    await phone.page.getByRole("dialog").locator("#history-body tr[data-outcome]").first().waitFor();
    await phone.page.screenshot({ path: join(artifacts, "admin-member-phone.png") });
    // The erase confirmation fits too (and is only cancelled here).
    const dialog = phone.page.getByRole("dialog");
    await dialog.getByRole("button", { name: "Erase member…" }).click();
    await dialog.getByLabel(/type the Patreon id/).fill(ADA);
    const wide = await phone.page.evaluate(() => {
      const d = document.getElementById("member-dialog");
      return d.scrollWidth - d.clientWidth;
    });
    assert.ok(wide <= 0, `the member panel scrolls sideways by ${wide} px`);
    await dialog.getByRole("button", { name: "Erase permanently" }).scrollIntoViewIfNeeded();
    await phone.page.screenshot({ path: join(artifacts, "admin-erase-phone.png") });
    await dialog.getByRole("button", { name: "Cancel" }).click();
  });
  await step("when the sign-in ends, the next action closes the member panel and offers to sign in again", async () => {
    // Sign out behind the page's back (as another tab would): the renewal cannot help then.
    await phone.page.evaluate(() =>
      fetch("/api/auth/logout", { method: "POST", headers: { "X-Requested-With": "XMLHttpRequest" } }),
    );
    await phone.page.getByRole("dialog").getByRole("button", { name: "Recheck now" }).click();
    const again = phone.page.locator("#banner").getByRole("link", { name: "Sign in with Patreon" });
    await again.waitFor();
    assert.equal(await again.getAttribute("href"), "/api/auth/patreon/login?return_to=/admin");
    assert.match(await phone.page.locator("#banner").innerText(), /Your sign-in has ended/);
    assert.equal(await phone.page.getByRole("dialog").count(), 0, "the member panel stays open");
  });
  assert.deepEqual(unexpected(phone.consoleErrors), [], "errors in the phone's browser console");
  await phone.context.close();
  await admin.context.close();
}

main().then(
  () => log("all admin dashboard checks passed; screenshots in clients/typescript/e2e/artifacts/admin-*.png"),
  async (error) => {
    console.error(`[e2e admin] FAILED: ${error?.stack ?? error}`);
    await stopAll();
    console.error("[e2e admin] logs: clients/typescript/e2e/artifacts/admin-demo.log");
    process.exitCode = 1;
  },
);
process.on("SIGINT", () => void stopAll().then(() => process.exit(130)));
