// @ts-check
// One member in a dialog: facts, check history and "Recheck now" (followed until it ends).
import { api, guarded, onSignedOut, problemText } from "./api.js";
import { forgetMember, resetDataRights, showDataRights } from "./data-rights.js";
import { $, cell, el } from "./dom.js";
import { statusBadge, timeEl, yesNo } from "./format.js";

/** @typedef {import("./api.js").Schemas["CheckEntry"]} CheckEntry */
/** @typedef {import("./api.js").Schemas["JobStatus"]} JobStatus */

/** @type {Record<string, string>} */
const TRIGGERS = {
  sign_in: "Sign-in",
  sweep: "Sweep",
  webhook: "Webhook",
  admin: "Admin recheck",
  member: "Member's recheck",
};

/** @type {Record<string, string>} */
const RESULTS = {
  paying_member: "paying member",
  not_a_paying_member: "not a paying member",
  needs_relogin: "needs to sign in with Patreon again",
};

/** @type {number | null} */
let openMemberId = null;
/**
 * Reloads the members list and dead jobs after a check; set by `wireMemberPanel`.
 * @type {() => Promise<unknown>}
 */
let refreshLists = () => Promise.resolve();

const dialog = () => $("member-dialog", HTMLDialogElement);
const recheckButton = () => $("recheck", HTMLButtonElement);

/** @param {number} id */
export async function openMember(id) {
  openMemberId = id;
  $("recheck-note").textContent = "";
  $("recheck-note").className = "";
  recheckButton().disabled = false;
  resetDataRights();
  $("member-name").textContent = "Loading…";
  $("member-facts").replaceChildren();
  $("history-body").replaceChildren();
  if (!dialog().open) dialog().showModal();
  await guarded(loadMember)(id);
}

/** @param {number} id */
async function loadMember(id) {
  const result = await api("get", "/api/admin/members/{id}", { params: { id } });
  if (id !== openMemberId) return;
  if (!result.ok) {
    $("member-name").textContent = "Member";
    $("recheck-note").textContent = problemText(result, "Cannot load this member");
    $("recheck-note").className = "error";
    return;
  }
  const { member: m, checks } = result.body;
  $("member-name").textContent = m.name || "(no name)";
  showDataRights(m);
  /** @type {[string, Node | string][]} */
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

/** @param {CheckEntry} c */
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

/** @param {number} ms */
const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

async function recheck() {
  const id = openMemberId;
  if (id === null) return;
  const note = $("recheck-note");
  const button = recheckButton();
  /** @param {string} text */
  const say = (text, className = "") => {
    if (id !== openMemberId) return;
    note.textContent = text;
    note.className = className;
  };
  button.disabled = true;
  try {
    const started = await api("post", "/api/admin/members/{id}/recheck", { params: { id } });
    if (started.status !== 202) {
      say(problemText(started, "Cannot queue the check"), "error");
      return;
    }
    say("Queued…");
    // The server says where to follow the job; the spec's path is the fallback.
    const follow = started.headers.get("Location") || undefined;
    const deadline = Date.now() + 120_000;
    /** @type {Pick<JobStatus, "status" | "result" | "error">} */
    let job = started.body;
    while (Date.now() < deadline) {
      await sleep(500);
      const polled = await api("get", "/api/jobs/{id}", { params: { id: started.body.jobId }, follow });
      if (!polled.ok) {
        say(problemText(polled, "Cannot follow the check"), "error");
        return;
      }
      const latest = polled.body;
      job = latest;
      if (latest.status === "succeeded" || latest.status === "failed") break;
      if (latest.status === "running") say("Checking with Patreon…");
      else if (latest.error) say(`Patreon failed (${latest.error}); retrying (attempt ${latest.attempts})…`);
    }
    if (job.status === "succeeded") {
      const found = job.result;
      say(`Checked with Patreon just now: ${(found && RESULTS[found]) || found || "done"}.`, "ok");
    } else if (job.status === "failed") {
      say(`The check failed: ${job.error || "unknown error"}.`, "error");
    } else {
      say("Still waiting for a worker; the result will show up in the history.", "muted");
    }
    await Promise.all([id === openMemberId ? loadMember(id) : null, refreshLists()]);
  } finally {
    if (id === openMemberId) button.disabled = false;
  }
}

/**
 * The dialog's own controls.
 * @param {() => Promise<unknown>} refresh reloads what a check may change outside the dialog
 */
export function wireMemberPanel(refresh) {
  refreshLists = refresh;
  $("recheck").addEventListener("click", guarded(recheck));
  $("close-member").addEventListener("click", () => dialog().close());
  dialog().addEventListener("close", () => {
    openMemberId = null;
    forgetMember();
  });
  onSignedOut(() => dialog().close());
}
