import { AuthProvider, PatreonAuth, RequireMembership, useAuth } from "@patreon-gate/client/react";
import type { CSSProperties } from "react";

// Cookie mode is the default. Open the app with ?mode=bearer to try Bearer mode: the handoff code
// is exchanged for a JWT kept in sessionStorage. (A real app picks one mode, not a query flag.)
const mode = new URLSearchParams(window.location.search).get("mode") === "bearer" ? "bearer" : "cookie";
// Empty: the API is on this origin (proxied by Vite). Set VITE_API_URL to call it directly.
const apiUrl = import.meta.env.VITE_API_URL as string | undefined;

const page: CSSProperties = {
  maxWidth: "44rem",
  margin: "2rem auto",
  padding: "0 1rem",
  fontFamily: "system-ui, -apple-system, 'Segoe UI', sans-serif",
  color: "#1f2328",
  lineHeight: 1.5,
};
const panel: CSSProperties = { border: "1px solid #d8dadf", borderRadius: "12px", padding: "1.25rem 1.5rem", marginTop: "1.5rem" };

/** Any component can read the shared sign-in state. */
function Greeting() {
  const { user, isLoading } = useAuth();
  if (isLoading) return null;
  return <p data-testid="greeting">{user ? `Welcome back, ${user.name ?? "member"}.` : "Welcome, visitor."}</p>;
}

function BecomeAPatron() {
  const { isAuthenticated } = useAuth();
  return (
    <p data-testid="members-only-fallback">
      {isAuthenticated
        ? "This post is for paying members. Join a paid tier on Patreon, then press “Recheck my status”."
        : "This post is for paying members. Sign in with Patreon to read it."}
    </p>
  );
}

export function App() {
  return (
    <AuthProvider
      mode={mode}
      baseUrl={apiUrl}
      storage={mode === "bearer" ? window.sessionStorage : undefined}
    >
      <main style={page}>
        <h1 style={{ marginBottom: ".25rem" }}>Creator's corner</h1>
        <p style={{ marginTop: 0, color: "#4a4f57" }}>
          An example app for patreon-gate ({mode === "bearer" ? "Bearer" : "cookie"} mode).
        </p>
        <Greeting />
        <PatreonAuth title="Members sign in" />
        <section style={panel} aria-labelledby="post-title">
          <h2 id="post-title" style={{ marginTop: 0 }}>
            Behind the scenes: episode 12
          </h2>
          <RequireMembership fallback={<BecomeAPatron />} loading={<p role="status">Checking your membership…</p>}>
            <article data-testid="members-only-content">
              <p>
                Thanks for supporting the work! Here are the storyboards, the rough cut and the notes from the
                recording session.
              </p>
            </article>
          </RequireMembership>
        </section>
      </main>
    </AuthProvider>
  );
}
