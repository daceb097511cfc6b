// The admin dashboard. Plain JavaScript, no build step: it reads and drives /api/admin/* with the
// httpOnly auth_token cookie. Every piece of data goes into the page through textContent (the
// `el` helper below turns strings into text nodes); nothing is ever parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);

/** `el("td", { className: "x", dataset: { label: "Name" } }, "text", childNode)`. */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

// ---- talking to the API -------------------------------------------------------------------

class SignedOut extends Error {}

let signedOut = false;
let renewal = null;

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
 * fetch() for our API: same-origin cookies, `X-Requested-With` on every POST (the CSRF guard),
 * JSON bodies. On 401 it renews the sign-in once and retries; if that fails the page says the
 * sign-in ended and offers the sign-in link.
 */
async function api(path, { method = "GET", body } = {}) {
  if (signedOut) throw new SignedOut();
  const send = () => {
    const headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-Requested-With"] = "XMLHttpRequest";
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(path, {
      method,
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
  if (response.status === 403) {
    const problem = await readJson(response);
    if (problem?.error === "forbidden") {
      // The admin role was taken away while the page was open.
      showBanner("Your account is no longer an admin. Reload the page.");
      throw new SignedOut();
    }
    return withBody(response, problem);
  }
  return withBody(response, await readJson(response));
}

async function readJson(response) {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

function withBody(response, body) {
  return { status: response.status, ok: response.ok, headers: response.headers, body };
}

function problemText(result, fallback) {
  return result.body?.message || `${fallback} (HTTP ${result.status}).`;
}

function showBanner(text, ...extra) {
  const banner = $("banner");
  banner.replaceChildren(text, ...extra);
  banner.hidden = false;
}

function showSignedOut() {
  if (signedOut) return;
  signedOut = true;
  clearTimeout(sweepTimer);
  showBanner(
    "Your sign-in has ended. ",
    el("a", { href: "/api/auth/patreon/login?return_to=/admin", id: "sign-in-again" }, "Sign in with Patreon"),
  );
  $("member-dialog").close();
}

/** Runs a handler, turning failures into a banner instead of an unhandled rejection. */
function guarded(handler) {
  return async (...args) => {
    try {
      await handler(...args);
    } catch (error) {
      if (error instanceof SignedOut) return;
      showBanner(`Something went wrong: ${error?.message ?? error}`);
    }
  };
}

// ---- formatting -----------------------------------------------------------------------------

function dateTime(iso) {
  return iso ? new Date(iso).toLocaleString() : "never";
}

function ago(iso) {
  if (!iso) return "never";
  const seconds = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  const future = seconds < 0;
  const s = Math.abs(seconds);
  const text =
    s < 45 ? "just now"
    : s < 3600 ? `${Math.round(s / 60)} min`
    : s < 86400 ? `${Math.round(s / 3600)} h`
    : `${Math.round(s / 86400)} d`;
  if (text === "just now") return text;
  return future ? `in ${text}` : `${text} ago`;
}

function timeEl(iso, relative = true) {
  if (!iso) return el("span", { className: "muted" }, "never");
  return el("time", { dateTime: iso, title: dateTime(iso) }, relative ? ago(iso) : dateTime(iso));
}

/** paying / stale / not paying, as the gate answers `isPaidMember`. */
function statusOf(m) {
  if (m.isPaidMember) return { key: "paying", label: "Paying" };
  // Paying at the last check, but that check is older than STALE_AFTER_DAYS.
  if (m.membershipActive) return { key: "stale", label: "Stale" };
  return { key: "not-paying", label: "Not paying" };
}

function statusBadge(m) {
  const { key, label } = statusOf(m);
  return el("span", { className: `badge badge-${key}`, dataset: { status: key } }, label);
}

const TRIGGERS = {
  sign_in: "Sign-in",
  sweep: "Sweep",
  webhook: "Webhook",
  admin: "Admin recheck",
  member: "Member's recheck",
};

const RESULTS = {
  paying_member: "paying member",
  not_a_paying_member: "not a paying member",
  needs_relogin: "needs to sign in with Patreon again",
};

const yesNo = (value) => (value === null || value === undefined ? "?" : value ? "yes" : "no");

/** A table cell; its content is wrapped so the phone layout keeps it in one grid column. */
function cell(label, ...content) {
  return el("td", { dataset: { label } }, el("div", {}, ...content));
}

// ---- members --------------------------------------------------------------------------------

const PAGE_SIZE = 25;
const query = { search: "", status: "", sort: "last_checked_asc", offset: 0 };
let total = 0;
let membersRequest = 0;

async function loadMembers() {
  const mine = ++membersRequest;
  const params = new URLSearchParams({ sort: query.sort, limit: String(PAGE_SIZE), offset: String(query.offset) });
  if (query.search) params.set("search", query.search);
  if (query.status) params.set("status", query.status);
  const result = await api(`/api/admin/members?${params}`);
  if (mine !== membersRequest) return; // a newer search has been sent since
  const body = $("members-body");
  if (!result.ok) {
    body.replaceChildren(el("tr", {}, el("td", { colSpan: 6, className: "error" }, problemText(result, "Cannot list members"))));
    return;
  }
  total = result.body.total;
  if (result.body.members.length === 0) {
    body.replaceChildren(el("tr", {}, el("td", { colSpan: 6, className: "muted" }, "No members match.")));
  } else {
    body.replaceChildren(...result.body.members.map(memberRow));
  }
  const first = total === 0 ? 0 : query.offset + 1;
  const last = Math.min(query.offset + PAGE_SIZE, total);
  $("page-info").textContent = `${first}–${last} of ${total}`;
  $("prev").disabled = query.offset === 0;
  $("next").disabled = query.offset + PAGE_SIZE >= total;
}

function memberRow(m) {
  return el(
    "tr",
    { dataset: { memberId: String(m.id) } },
    cell(
      "Name",
      el("button", { type: "button", className: "link member-link", onclick: () => openMember(m.id) }, m.name || "(no name)"),
      m.isAdmin ? el("span", { className: "badge badge-admin" }, "admin") : null,
    ),
    cell("Patreon id", el("code", {}, m.patreonId)),
    cell("Tier", m.tier || "—"),
    cell("Status", statusBadge(m)),
    cell("Last checked", timeEl(m.lastChecked)),
    cell("Needs re-login", m.needsRelogin ? el("span", { className: "badge badge-relogin" }, "yes") : "no"),
  );
}

let searchTimer = null;

function wireFilters() {
  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(searchTimer);
    query.search = $("search").value.trim();
    query.offset = 0;
    guarded(loadMembers)();
  });
  $("search").addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      query.search = $("search").value.trim();
      query.offset = 0;
      guarded(loadMembers)();
    }, 250);
  });
  for (const id of ["status", "sort"]) {
    $(id).addEventListener("change", () => {
      query[id] = $(id).value;
      query.offset = 0;
      guarded(loadMembers)();
    });
  }
  $("prev").addEventListener("click", guarded(async () => {
    query.offset = Math.max(0, query.offset - PAGE_SIZE);
    await loadMembers();
  }));
  $("next").addEventListener("click", guarded(async () => {
    query.offset += PAGE_SIZE;
    await loadMembers();
  }));
}

// ---- one member: facts, history, recheck ------------------------------------------------------

let openMemberId = null;
/** The member shown in the panel, once loaded: export and erase act on this one. */
let loadedMember = null;

async function openMember(id) {
  openMemberId = id;
  $("recheck-note").textContent = "";
  $("recheck-note").className = "";
  $("recheck").disabled = false;
  loadedMember = null;
  resetDataRights();
  $("member-name").textContent = "Loading…";
  $("member-facts").replaceChildren();
  $("history-body").replaceChildren();
  const dialog = $("member-dialog");
  if (!dialog.open) dialog.showModal();
  await guarded(loadMember)(id);
}

async function loadMember(id) {
  const result = await api(`/api/admin/members/${encodeURIComponent(id)}`);
  if (id !== openMemberId) return;
  if (!result.ok) {
    $("member-name").textContent = "Member";
    $("recheck-note").textContent = problemText(result, "Cannot load this member");
    $("recheck-note").className = "error";
    return;
  }
  const { member: m, checks } = result.body;
  loadedMember = m;
  $("member-name").textContent = m.name || "(no name)";
  $("erase-expected").textContent = m.patreonId;
  $("export-member").disabled = false;
  $("erase-start").disabled = false;
  updateEraseButton();
  const facts = [
    ["Status", statusBadge(m)],
    ["Patreon id", el("code", {}, m.patreonId)],
    ["Email", m.email || "—"],
    ["Tier", m.tier || "—"],
    ["Patreon status", m.patronStatus || "—"],
    ["Last charge", m.lastChargeStatus || "—"],
    ["Last checked", timeEl(m.lastChecked)],
    ["Needs re-login", m.needsRelogin ? "yes: their Patreon link is dead" : "no"],
  ];
  if (m.isAdmin) facts.push(["Role", "admin"]);
  if (m.importedAt) {
    const team = m.importedTeam ? " (a team member there; grants nothing here)" : "";
    facts.push(["Imported", el("span", {}, timeEl(m.importedAt), ` from the old app${team}`)]);
  }
  $("member-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  $("history-body").replaceChildren(
    ...(checks.length === 0
      ? [el("tr", {}, el("td", { colSpan: 5, className: "muted" }, "No checks recorded yet."))]
      : checks.map(checkRow)),
  );
}

function checkRow(c) {
  const active = `${yesNo(c.oldActive)} → ${yesNo(c.newActive)}`;
  const statuses =
    c.oldPatronStatus || c.newPatronStatus ? `${c.oldPatronStatus || "—"} → ${c.newPatronStatus || "—"}` : null;
  return el(
    "tr",
    { dataset: { outcome: c.outcome } },
    cell("When", timeEl(c.checkedAt, false)),
    cell("Why", TRIGGERS[c.trigger] || c.trigger),
    cell("Outcome", el("span", { className: `outcome outcome-${c.outcome}` }, c.outcome),
      c.accessReason ? el("div", { className: "muted small" }, c.accessReason) : null),
    cell("Old → new", el("div", {}, `paying: ${active}`), statuses ? el("div", { className: "muted small" }, statuses) : null),
    cell("Error", c.error ? el("span", { className: "error" }, c.error) : "—"),
  );
}

const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

async function recheck() {
  const id = openMemberId;
  const note = $("recheck-note");
  const button = $("recheck");
  const say = (text, className = "") => {
    if (id !== openMemberId) return;
    note.textContent = text;
    note.className = className;
  };
  button.disabled = true;
  try {
    const started = await api(`/api/admin/members/${encodeURIComponent(id)}/recheck`, { method: "POST" });
    if (started.status !== 202) {
      say(problemText(started, "Cannot queue the check"), "error");
      return;
    }
    say("Queued…");
    const where = started.headers.get("Location") || `/api/jobs/${encodeURIComponent(started.body.jobId)}`;
    const deadline = Date.now() + 120_000;
    let job = started.body;
    while (Date.now() < deadline) {
      await sleep(500);
      const polled = await api(where);
      if (!polled.ok) {
        say(problemText(polled, "Cannot follow the check"), "error");
        return;
      }
      job = polled.body;
      if (job.status === "succeeded" || job.status === "failed") break;
      if (job.status === "running") say("Checking with Patreon…");
      else if (job.error) say(`Patreon failed (${job.error}); retrying (attempt ${job.attempts})…`);
    }
    if (job.status === "succeeded") {
      say(`Checked with Patreon just now: ${RESULTS[job.result] || job.result || "done"}.`, "ok");
    } else if (job.status === "failed") {
      say(`The check failed: ${job.error || "unknown error"}.`, "error");
    } else {
      say("Still waiting for a worker; the result will show up in the history.", "muted");
    }
    await Promise.all([id === openMemberId ? loadMember(id) : null, loadMembers(), loadDeadJobs()]);
  } finally {
    if (id === openMemberId) button.disabled = false;
  }
}

// ---- one member: export and erase (data rights) ------------------------------------------------

let erasing = false;

function sayData(text, className = "") {
  $("data-note").textContent = text;
  $("data-note").className = className;
}

function resetDataRights() {
  $("export-member").disabled = true;
  $("erase-start").disabled = true;
  $("erase-expected").textContent = "";
  showEraseForm(false, false);
  sayData("");
}

/** Opens or closes the typed confirmation; `moveFocus` puts the keyboard where the eye goes. */
function showEraseForm(open, moveFocus = true) {
  $("erase-form").hidden = !open;
  $("erase-start").setAttribute("aria-expanded", String(open));
  $("erase-confirm").value = "";
  updateEraseButton();
  if (moveFocus) (open ? $("erase-confirm") : $("erase-start")).focus();
}

/** "Erase permanently" is enabled only once the member's Patreon id has been typed exactly. */
function updateEraseButton() {
  const typed = $("erase-confirm").value.trim();
  $("erase-member").disabled = erasing || !loadedMember || typed !== loadedMember.patreonId;
}

/** A file name made only of safe characters, whatever the id holds. */
function exportFileName(patreonId) {
  return `member-${String(patreonId).replace(/[^A-Za-z0-9_-]/g, "_")}.json`;
}

/**
 * Fetches the export with the dashboard's own credentials (a plain link could not renew an
 * expired sign-in) and saves it through a Blob URL. The link lives inside the dialog: while the
 * dialog is modal the rest of the page is inert.
 */
async function exportMember() {
  const m = loadedMember;
  if (!m) return;
  const button = $("export-member");
  button.disabled = true;
  sayData("Preparing the export…");
  try {
    const result = await api(`/api/admin/members/${encodeURIComponent(m.id)}/export`);
    if (m !== loadedMember) return;
    if (!result.ok || result.body === null) {
      sayData(problemText(result, "Cannot export this member"), "error");
      return;
    }
    const name = exportFileName(m.patreonId);
    const blob = new Blob([`${JSON.stringify(result.body, null, 2)}\n`], { type: "application/json" });
    const url = URL.createObjectURL(blob);
    const link = el("a", { href: url, download: name, hidden: true });
    $("member-dialog").append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    sayData(`Saved ${name}.`, "ok");
  } finally {
    if (m === loadedMember) button.disabled = false;
  }
}

const ERASED = {
  users: "member",
  sessions: "sign-ins",
  handoffCodes: "handoff codes",
  membershipChecks: "checks",
  jobRequests: "rechecks",
  sweepItems: "sweep items",
  webhookEvents: "webhook deliveries",
  requestsForOthersUnlinked: "rechecks of others unlinked",
};

/** "member 1, sign-ins 2, …" in the order above, then any count this page does not know yet. */
function erasedCounts(report) {
  const body = report ?? {};
  const keys = [...Object.keys(ERASED).filter((key) => key in body), ...Object.keys(body).filter((key) => !(key in ERASED))];
  return keys.map((key) => `${ERASED[key] || key} ${body[key]}`).join(", ");
}

let noticeTimer = null;

/** A short-lived success message above the page, read out by screen readers. */
function showNotice(text) {
  const notice = $("notice");
  notice.textContent = text;
  notice.hidden = false;
  notice.focus();
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => (notice.hidden = true), 15_000);
}

async function eraseMember(event) {
  event.preventDefault();
  const m = loadedMember;
  if (!m || erasing || $("erase-confirm").value.trim() !== m.patreonId) return;
  erasing = true;
  updateEraseButton();
  sayData("Erasing…");
  try {
    const result = await api(`/api/admin/members/${encodeURIComponent(m.id)}`, { method: "DELETE" });
    if (result.ok) {
      if (m === loadedMember) $("member-dialog").close();
      showNotice(`Erased ${m.name || "the member"} (Patreon id ${m.patreonId}): ${erasedCounts(result.body)}.`);
      await Promise.all([loadMembers(), loadDeadJobs()]);
      return;
    }
    if (m !== loadedMember) return;
    if (result.status === 409) sayData("A check is running, try again in a few seconds.", "error");
    else sayData(problemText(result, "Cannot erase this member"), "error");
  } finally {
    erasing = false;
    updateEraseButton();
  }
}

// ---- sweeps ---------------------------------------------------------------------------------

let sweeps = [];
let sweepTimer = null;

async function loadSweeps() {
  const result = await api("/api/admin/sweeps");
  if (!result.ok) {
    $("sweep-note").textContent = problemText(result, "Cannot read sweeps");
    return;
  }
  const overview = result.body;
  $("schedule").textContent = overview.schedule;
  $("next-run").replaceChildren(
    overview.nextRunAt
      ? el("time", { dateTime: overview.nextRunAt, title: overview.nextRunAt }, `${dateTime(overview.nextRunAt)} (${ago(overview.nextRunAt)})`)
      : "not scheduled",
  );
  sweeps = overview.sweeps;
  renderSweeps();
  followRunning();
}

function renderSweeps() {
  const list = $("sweep-list");
  if (sweeps.length === 0) {
    list.replaceChildren(el("li", { className: "muted" }, "No sweeps yet."));
    return;
  }
  list.replaceChildren(...sweeps.slice(0, 10).map(sweepItem));
}

function sweepItem(s) {
  const running = !s.finishedAt;
  const took = running ? null : Math.max(0, Math.round((new Date(s.finishedAt) - new Date(s.startedAt)) / 1000));
  const counts = [
    ["verified", s.verified],
    ["changed", s.changed],
    ["failed", s.failed],
    ["skipped", s.skipped],
  ];
  return el(
    "li",
    { className: running ? "run running" : "run", dataset: { sweepId: String(s.id) } },
    el(
      "div",
      { className: "run-head" },
      el("strong", {}, `#${s.id}`),
      ` ${s.trigger} · `,
      timeEl(s.startedAt),
      el("span", { className: running ? "badge badge-running" : "badge" }, running ? "running" : `done in ${took} s`),
    ),
    el("progress", { max: Math.max(s.total, 1), value: s.done, title: `${s.done} of ${s.total}` }),
    el(
      "div",
      { className: "counts" },
      el("span", {}, `${s.done}/${s.total} checked`),
      ...counts.map(([label, n]) => el("span", { className: n > 0 && (label === "failed" || label === "changed") ? `count-${label}` : "" }, `${n} ${label}`)),
    ),
  );
}

/** While a sweep runs, re-read it every 2 s; when it ends, refresh everything it touched. */
function followRunning() {
  clearTimeout(sweepTimer);
  if (signedOut || !sweeps.some((s) => !s.finishedAt)) return;
  sweepTimer = setTimeout(guarded(async () => {
    const finished = [];
    for (const s of sweeps.filter((x) => !x.finishedAt)) {
      const result = await api(`/api/admin/sweeps/${encodeURIComponent(s.id)}`);
      if (!result.ok) continue;
      sweeps = sweeps.map((x) => (x.id === s.id ? result.body : x));
      if (result.body.finishedAt) finished.push(result.body);
    }
    renderSweeps();
    if (finished.length > 0) {
      $("sweep-note").textContent = finished.map(finishedText).join(" ");
      await Promise.all([loadSweeps(), loadMembers(), loadDeadJobs()]);
    } else {
      followRunning();
    }
  }), 2_000);
}

function finishedText(s) {
  return `Sweep #${s.id} finished: ${s.verified} verified, ${s.changed} changed, ${s.failed} failed, ${s.skipped} skipped.`;
}

async function runSweep() {
  const button = $("run-sweep");
  const note = $("sweep-note");
  button.disabled = true;
  try {
    const result = await api("/api/admin/sweeps", { method: "POST" });
    if (result.status === 202) note.textContent = `Sweep #${result.body.id} started.`;
    else if (result.status === 409) note.textContent = `Sweep #${result.body.id} is already running.`;
    else note.textContent = problemText(result, "Cannot start a sweep");
    await loadSweeps();
    // A small sweep may be over before the first progress poll.
    const done = result.body?.id && sweeps.find((s) => s.id === result.body.id && s.finishedAt);
    if (done) {
      note.textContent = finishedText(done);
      await Promise.all([loadMembers(), loadDeadJobs()]);
    }
  } finally {
    button.disabled = false;
  }
}

// ---- dead jobs ------------------------------------------------------------------------------

async function loadDeadJobs() {
  const result = await api("/api/admin/dead-jobs");
  const list = $("dead-list");
  if (!result.ok) {
    list.replaceChildren(el("li", { className: "error" }, problemText(result, "Cannot list dead jobs")));
    return;
  }
  if (result.body.length === 0) {
    list.replaceChildren(el("li", { className: "muted" }, "No dead jobs."));
    return;
  }
  list.replaceChildren(...result.body.map(deadItem));
}

function deadItem(d) {
  const what = d.job.kind === "sweep" ? `Sweep #${d.job.sweepId} check` : "Recheck";
  const retry = el("button", { type: "button", className: "button small" }, "Retry");
  retry.addEventListener("click", guarded(async () => {
    retry.disabled = true;
    const result = await api("/api/admin/dead-jobs/retry", { method: "POST", body: d.job });
    if (result.status === 202) $("dead-note").textContent = `${what} for member ${d.patreonId ?? d.userId} queued again.`;
    else $("dead-note").textContent = problemText(result, "Cannot retry");
    await loadDeadJobs();
  }));
  return el(
    "li",
    {},
    el(
      "div",
      { className: "run-head" },
      el("strong", {}, what),
      " · ",
      el("button", { type: "button", className: "link", onclick: () => openMember(d.userId) }, `member ${d.patreonId ?? `#${d.userId}`}`),
    ),
    el("div", { className: "small" }, el("span", { className: "error" }, d.error || "unknown error"), ` after ${d.attempts} attempts, `, timeEl(d.failedAt)),
    retry,
  );
}

// ---- start ----------------------------------------------------------------------------------

async function whoami() {
  const me = await api("/api/auth/me");
  if (me.ok) $("whoami").textContent = `Signed in as ${me.body.name || me.body.patreonId}`;
}

async function signOut() {
  await fetch("/api/auth/logout", {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-Requested-With": "XMLHttpRequest" },
  }).catch(() => undefined);
  location.assign("/admin");
}

function start() {
  // Landing here from the sign-in redirect: the handoff code is for Bearer frontends; drop it.
  const params = new URLSearchParams(location.search);
  if (params.has("auth") || params.has("handoff")) history.replaceState(null, "", location.pathname);

  wireFilters();
  $("recheck").addEventListener("click", guarded(recheck));
  $("export-member").addEventListener("click", guarded(exportMember));
  $("erase-start").addEventListener("click", () => showEraseForm($("erase-form").hidden));
  $("erase-cancel").addEventListener("click", () => showEraseForm(false));
  $("erase-confirm").addEventListener("input", updateEraseButton);
  $("erase-form").addEventListener("submit", guarded(eraseMember));
  $("close-member").addEventListener("click", () => $("member-dialog").close());
  $("member-dialog").addEventListener("close", () => {
    openMemberId = null;
    loadedMember = null;
  });
  $("run-sweep").addEventListener("click", guarded(runSweep));
  $("sign-out").addEventListener("click", signOut);
  for (const load of [whoami, loadMembers, loadSweeps, loadDeadJobs]) guarded(load)();
}

start();
