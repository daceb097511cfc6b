// Demo frontend: shows the signed-in member or a sign-in button. Uses the httpOnly cookie.
const card = document.getElementById("card");

function el(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  for (const child of children) node.append(child);
  return node;
}

function signedOut(message) {
  card.replaceChildren(
    el("p", {}, "Sign in to see your membership. It is verified with Patreon automatically."),
    message ? el("p", { className: "error" }, message) : "",
    el("a", { className: "button", href: "/api/auth/patreon/login?return_to=/", id: "sign-in" }, "Sign in with Patreon"),
  );
}

function row(label, value) {
  return [el("dt", {}, label), el("dd", {}, value)];
}

function signedIn(me) {
  const avatar = me.avatarUrl ? el("img", { src: me.avatarUrl, alt: "", onerror: (e) => e.target.remove() }) : "";
  const status = me.isPaidMember ? "Paying member" : me.membershipActive ? "Member (status being re-verified)" : "Not a paying member";
  card.replaceChildren(
    el("h2", {}, avatar, me.name || "Patreon member"),
    el("dl", { id: "profile" },
      ...row("Membership", status),
      ...row("Tier", me.membershipTier || "—"),
      ...row("Email", me.email || "—"),
      ...row("Patreon id", me.patreonId),
      ...row("Last checked", me.lastChecked ? new Date(me.lastChecked).toLocaleString() : "never"),
      ...(me.needsRelogin ? row("Action needed", "Sign in with Patreon again") : []),
    ),
    el("p", { id: "recheck-status", className: "muted" }),
    el("button", { className: "button", id: "recheck", onclick: recheck }, "Recheck my status"), " ",
    el("button", { className: "button secondary", id: "sign-out", onclick: signOut }, "Sign out"),
  );
}

async function recheck() {
  const note = document.getElementById("recheck-status");
  const response = await fetch("/api/auth/recheck", { method: "POST", credentials: "include", headers: { "X-Requested-With": "fetch" } });
  if (response.status !== 202) {
    note.textContent = (await response.json()).message;
    return;
  }
  note.textContent = "Checking with Patreon…";
  const location = response.headers.get("Location");
  for (let i = 0; i < 50; i++) {
    const job = await (await fetch(location, { credentials: "include" })).json();
    if (job.status === "succeeded" || job.status === "failed") {
      await load();
      document.getElementById("recheck-status").textContent =
        job.status === "succeeded" ? "Checked with Patreon just now." : "Patreon could not be reached; try again later.";
      return;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function signOut() {
  await fetch("/api/auth/logout", { method: "POST", credentials: "include", headers: { "X-Requested-With": "fetch" } });
  history.replaceState(null, "", "/");
  load();
}

async function fetchMe() {
  let response = await fetch("/api/auth/me", { credentials: "include" });
  if (response.status === 401) {
    // The short-lived JWT may have expired while the sign-in still lasts: renew once.
    const renewed = await fetch("/api/auth/refresh", { method: "POST", credentials: "include", headers: { "X-Requested-With": "fetch" } });
    if (!renewed.ok) return null;
    response = await fetch("/api/auth/me", { credentials: "include" });
  }
  return response.ok ? response.json() : null;
}

async function load() {
  const params = new URLSearchParams(location.search);
  const reasons = { access_denied: "You declined the Patreon consent.", patreon_unavailable: "Patreon is not answering; try again shortly.", patreon_error: "Patreon refused the sign-in." };
  const error = params.get("auth") === "error" ? reasons[params.get("reason")] || "Sign-in failed." : "";
  if (params.has("auth")) history.replaceState(null, "", location.pathname);
  const me = await fetchMe();
  if (me) signedIn(me); else signedOut(error);
}

load();
