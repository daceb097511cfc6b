// @ts-check
// The admin dashboard's entry point (dashboard.html loads it as a module). Plain JavaScript, no
// build step: the browser loads these modules as written, and tsc only checks them.
import { api, guarded } from "./api.js";
import { wireDataRights } from "./data-rights.js";
import { loadDeadJobs } from "./dead-jobs.js";
import { $ } from "./dom.js";
import { wireMemberPanel } from "./member-panel.js";
import { loadMembers, wireFilters } from "./members.js";
import { loadSweeps, wireSweeps } from "./sweeps.js";

async function whoami() {
  const me = await api("get", "/api/auth/me");
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

/** What a recheck, an erase or a finished sweep may have changed outside its own panel. */
const refreshLists = () => Promise.all([loadMembers(), loadDeadJobs()]);

function start() {
  // Landing here from the sign-in redirect: the handoff code is for Bearer frontends; drop it.
  const params = new URLSearchParams(location.search);
  if (params.has("auth") || params.has("handoff")) history.replaceState(null, "", location.pathname);

  wireFilters();
  wireMemberPanel(refreshLists);
  wireDataRights(refreshLists);
  wireSweeps(refreshLists);
  $("sign-out").addEventListener("click", signOut);
  for (const load of [whoami, loadMembers, loadSweeps, loadDeadJobs]) guarded(load)();
}

start();
