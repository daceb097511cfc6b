// @ts-check
// Dead jobs: checks that gave up after their retries, each with a "Retry" button.
import { api, guarded, problemText } from "./api.js";
import { $, el } from "./dom.js";
import { timeEl } from "./format.js";
import { openMember } from "./member-panel.js";

/** @typedef {import("./api.js").Schemas["DeadJob"]} DeadJob */

export async function loadDeadJobs() {
  const result = await api("get", "/api/admin/dead-jobs");
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

/** @param {DeadJob} d */
function deadItem(d) {
  const what = d.job.kind === "sweep" ? `Sweep #${d.job.sweepId} check` : "Recheck";
  const retry = el("button", { type: "button", className: "button small" }, "Retry");
  retry.addEventListener("click", guarded(async () => {
    retry.disabled = true;
    const result = await api("post", "/api/admin/dead-jobs/retry", { body: d.job });
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
