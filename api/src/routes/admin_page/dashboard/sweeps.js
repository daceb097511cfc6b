// @ts-check
// The sweeps panel: schedule, recent sweeps with their progress, "Run sweep now".
import { api, guarded, isSignedOut, onSignedOut, problemText } from "./api.js";
import { $, el } from "./dom.js";
import { ago, dateTime, timeEl } from "./format.js";

/** @typedef {import("./api.js").Schemas["SweepSummary"]} SweepSummary */

/** @type {SweepSummary[]} */
let sweeps = [];
/** @type {ReturnType<typeof setTimeout> | undefined} */
let sweepTimer;
/**
 * Reloads the members list and dead jobs after a sweep; set by `wireSweeps`.
 * @type {() => Promise<unknown>}
 */
let refreshLists = () => Promise.resolve();

export async function loadSweeps() {
  const result = await api("get", "/api/admin/sweeps");
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

/** @param {SweepSummary} s */
function sweepItem(s) {
  const running = !s.finishedAt;
  const took = s.finishedAt
    ? Math.max(0, Math.round((new Date(s.finishedAt).getTime() - new Date(s.startedAt).getTime()) / 1000))
    : null;
  /** @type {[string, number][]} */
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
  if (isSignedOut() || !sweeps.some((s) => !s.finishedAt)) return;
  sweepTimer = setTimeout(guarded(async () => {
    const finished = [];
    for (const s of sweeps.filter((x) => !x.finishedAt)) {
      const result = await api("get", "/api/admin/sweeps/{id}", { params: { id: s.id } });
      if (!result.ok) continue;
      const latest = result.body;
      sweeps = sweeps.map((x) => (x.id === s.id ? latest : x));
      if (latest.finishedAt) finished.push(latest);
    }
    renderSweeps();
    if (finished.length > 0) {
      $("sweep-note").textContent = finished.map(finishedText).join(" ");
      await Promise.all([loadSweeps(), refreshLists()]);
    } else {
      followRunning();
    }
  }), 2_000);
}

/** @param {SweepSummary} s */
function finishedText(s) {
  return `Sweep #${s.id} finished: ${s.verified} verified, ${s.changed} changed, ${s.failed} failed, ${s.skipped} skipped.`;
}

async function runSweep() {
  const button = $("run-sweep", HTMLButtonElement);
  const note = $("sweep-note");
  button.disabled = true;
  try {
    const result = await api("post", "/api/admin/sweeps");
    // 409: one is running already; the answer is that sweep.
    const sweep = result.status === 202 || result.status === 409 ? result.body : null;
    if (result.status === 202) note.textContent = `Sweep #${result.body.id} started.`;
    else if (result.status === 409 && sweep) note.textContent = `Sweep #${sweep.id} is already running.`;
    else note.textContent = problemText(result, "Cannot start a sweep");
    await loadSweeps();
    // A small sweep may be over before the first progress poll.
    const done = sweep && sweeps.find((s) => s.id === sweep.id && s.finishedAt);
    if (done) {
      note.textContent = finishedText(done);
      await refreshLists();
    }
  } finally {
    button.disabled = false;
  }
}

/**
 * The panel's button, and polling that stops when the sign-in ends.
 * @param {() => Promise<unknown>} refresh reloads what a sweep changes in the other panels
 */
export function wireSweeps(refresh) {
  refreshLists = refresh;
  $("run-sweep").addEventListener("click", guarded(runSweep));
  onSignedOut(() => clearTimeout(sweepTimer));
}
