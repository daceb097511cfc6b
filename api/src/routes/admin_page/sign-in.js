// The admin sign-in page. The server showed it because the request carried no valid auth_token
// cookie. The short-lived JWT may simply have expired while the sign-in itself still lasts, so
// try one renewal (the refresh cookie is only sent to /api/auth/*) and reload if it worked.
"use strict";

(async () => {
  const params = new URLSearchParams(location.search);
  const reasons = {
    access_denied: "You declined the Patreon consent.",
    patreon_unavailable: "Patreon is not answering; try again shortly.",
    patreon_error: "Patreon refused the sign-in.",
  };
  if (params.get("auth") === "error") {
    const note = document.getElementById("sign-in-error");
    note.textContent = reasons[params.get("reason")] || "Sign-in failed.";
    note.hidden = false;
  }
  if (params.has("auth") || params.has("handoff")) history.replaceState(null, "", location.pathname);

  // At most one attempt per tab every 30 s, so a renewal that does not help cannot loop.
  const key = "patreon-gate-admin.renewed-at";
  const last = Number(sessionStorage.getItem(key) || 0);
  if (Date.now() - last < 30_000) return;
  sessionStorage.setItem(key, String(Date.now()));
  try {
    const renewed = await fetch("/api/auth/refresh", {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-Requested-With": "XMLHttpRequest" },
    });
    if (renewed.ok) location.reload();
  } catch {
    // offline: the sign-in link is still there
  }
})();
