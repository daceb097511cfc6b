// The API returns bare JWTs (`{token}`), so their lifetime is read from the standard `iat` and
// `exp` claims. The signature is not checked here: the API checks it on every request, and the
// browser only needs to know when to renew.

/** When a JWT was issued and when it expires, in milliseconds since the epoch. */
export interface TokenLifetime {
  issuedAt: number;
  expiresAt: number;
}

function decodeBase64Url(segment: string): string {
  const base64 = segment.replace(/-/g, "+").replace(/_/g, "/");
  const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
  const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/** Reads `iat` and `exp` from a JWT; throws when the token is not a JWT with a numeric `exp`. */
export function tokenLifetime(token: string): TokenLifetime {
  const payload = token.split(".")[1];
  if (!payload) throw new Error("not a JWT");
  const claims = JSON.parse(decodeBase64Url(payload)) as { iat?: unknown; exp?: unknown };
  if (typeof claims.exp !== "number") throw new Error("JWT without a numeric exp");
  const expiresAt = claims.exp * 1000;
  const issuedAt = typeof claims.iat === "number" ? claims.iat * 1000 : expiresAt;
  return { issuedAt, expiresAt };
}

/**
 * How long before expiry to renew: a quarter of the token's lifetime, at most a minute, so a
 * 15-minute token is renewed after 14 minutes and a 1-minute token after 45 seconds.
 */
export function renewalLeadTime({ issuedAt, expiresAt }: TokenLifetime): number {
  return Math.min(60_000, Math.max(0, expiresAt - issuedAt) / 4);
}
