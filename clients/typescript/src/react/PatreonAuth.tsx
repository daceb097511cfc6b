import { useId, useState, type CSSProperties } from "react";

import type { Member } from "../client.js";
import { useAuth } from "./AuthProvider.js";

export interface PatreonAuthProps {
  /** Heading of the card when signed out. */
  title?: string;
  /** Where the member lands after signing in (default: the current page). */
  returnTo?: string;
  className?: string;
  style?: CSSProperties;
}

// Self-contained inline styles: no stylesheet to import, nothing leaks into the host app.
// Colours keep at least 4.5:1 contrast against their background.
const styles = {
  card: {
    boxSizing: "border-box",
    maxWidth: "28rem",
    padding: "1.25rem 1.5rem",
    border: "1px solid #d8dadf",
    borderRadius: "12px",
    background: "#ffffff",
    color: "#1f2328",
    fontFamily: "system-ui, -apple-system, 'Segoe UI', sans-serif",
    lineHeight: 1.5,
  },
  heading: { margin: "0 0 .5rem", fontSize: "1.25rem" },
  identity: { display: "flex", alignItems: "center", gap: ".85rem", marginBottom: ".75rem" },
  avatar: {
    width: "56px",
    height: "56px",
    flex: "none",
    borderRadius: "50%",
    objectFit: "cover",
    background: "#eceef1",
    color: "#4a4f57",
    display: "grid",
    placeItems: "center",
    fontSize: "1.4rem",
    fontWeight: 600,
  },
  details: { display: "grid", gridTemplateColumns: "auto 1fr", gap: ".25rem 1rem", margin: "0 0 1rem" },
  term: { color: "#4a4f57" },
  value: { margin: 0, fontWeight: 600 },
  muted: { color: "#4a4f57", margin: "0 0 1rem" },
  alert: { color: "#b00020", margin: "0 0 1rem" },
  actions: { display: "flex", flexWrap: "wrap", gap: ".5rem" },
  primary: {
    font: "inherit",
    fontWeight: 600,
    padding: ".6rem 1.1rem",
    border: 0,
    borderRadius: "8px",
    background: "#c62832",
    color: "#ffffff",
    cursor: "pointer",
  },
  secondary: {
    font: "inherit",
    padding: ".6rem 1.1rem",
    border: "1px solid #4a4f57",
    borderRadius: "8px",
    background: "#ffffff",
    color: "#1f2328",
    cursor: "pointer",
  },
} satisfies Record<string, CSSProperties>;

const PAID = { color: "#166534" };
const UNPAID = { color: "#92400e" };

/** How the membership reads to the member. */
export function membershipStatus(user: Member): { label: string; paid: boolean } {
  if (user.isPaidMember) return { label: "Paying member", paid: true };
  if (user.membershipActive) return { label: "Membership waiting to be re-verified", paid: false };
  return { label: "Not a paying member", paid: false };
}

function Avatar({ user }: { user: Member }) {
  const [broken, setBroken] = useState(false);
  if (user.avatarUrl && !broken) {
    return <img src={user.avatarUrl} alt="" style={styles.avatar} onError={() => setBroken(true)} />;
  }
  const initial = (user.name ?? "?").trim().charAt(0).toUpperCase() || "?";
  return (
    <span aria-hidden="true" style={styles.avatar}>
      {initial}
    </span>
  );
}

/** The sign-in card: "Sign in with Patreon", or the signed-in member with their tier and status. */
export function PatreonAuth({ title = "Sign in with Patreon", returnTo, className, style }: PatreonAuthProps) {
  const { user, isLoading, error, login, logout, recheck } = useAuth();
  const [busy, setBusy] = useState<"recheck" | "logout" | null>(null);
  const [note, setNote] = useState("");
  const headingId = useId();
  const cardStyle = { ...styles.card, ...style };

  if (isLoading) {
    return (
      <section className={className} style={cardStyle} aria-busy="true">
        <p role="status" style={{ margin: 0 }}>
          Checking your sign-in…
        </p>
      </section>
    );
  }

  if (!user) {
    return (
      <section className={className} style={cardStyle} aria-labelledby={headingId}>
        <h2 id={headingId} style={styles.heading}>
          {title}
        </h2>
        <p style={styles.muted}>
          Sign in with your Patreon account. Your membership is verified automatically.
        </p>
        {error && (
          <p role="alert" style={styles.alert}>
            {error.message}
          </p>
        )}
        <button type="button" style={styles.primary} onClick={() => login(returnTo)}>
          Sign in with Patreon
        </button>
      </section>
    );
  }

  const status = membershipStatus(user);
  const run = async (action: "recheck" | "logout") => {
    setBusy(action);
    setNote(action === "recheck" ? "Checking with Patreon…" : "");
    try {
      if (action === "recheck") setNote((await recheck()).message);
      else await logout();
    } finally {
      setBusy(null);
    }
  };

  return (
    <section className={className} style={cardStyle} aria-labelledby={headingId}>
      <div style={styles.identity}>
        <Avatar user={user} />
        <div>
          <h2 id={headingId} style={{ ...styles.heading, margin: 0 }}>
            {user.name ?? "Patreon member"}
          </h2>
          <span style={styles.term}>Signed in with Patreon</span>
        </div>
      </div>
      <dl style={styles.details}>
        <dt style={styles.term}>Tier</dt>
        <dd style={styles.value} data-testid="patreon-tier">
          {user.membershipTier ?? "No tier"}
        </dd>
        <dt style={styles.term}>Status</dt>
        <dd style={{ ...styles.value, ...(status.paid ? PAID : UNPAID) }} data-testid="patreon-status">
          {status.label}
        </dd>
        {user.lastChecked && (
          <>
            <dt style={styles.term}>Last checked</dt>
            <dd style={styles.value}>{new Date(user.lastChecked).toLocaleString()}</dd>
          </>
        )}
      </dl>
      {user.needsRelogin && (
        <p role="alert" style={styles.alert}>
          Patreon no longer lets us check your membership. Sign in with Patreon again to renew it.
        </p>
      )}
      {error && (
        <p role="alert" style={styles.alert}>
          {error.message}
        </p>
      )}
      {/* Always rendered: a live region must exist before its text changes to be announced. */}
      <p role="status" aria-live="polite" style={note ? styles.muted : { margin: 0 }}>
        {note}
      </p>
      <div style={styles.actions}>
        {user.needsRelogin ? (
          <button type="button" style={styles.primary} onClick={() => login(returnTo)}>
            Sign in with Patreon again
          </button>
        ) : (
          <button type="button" style={styles.primary} disabled={busy !== null} onClick={() => void run("recheck")}>
            Recheck my status
          </button>
        )}
        <button type="button" style={styles.secondary} disabled={busy !== null} onClick={() => void run("logout")}>
          Sign out
        </button>
      </div>
    </section>
  );
}
