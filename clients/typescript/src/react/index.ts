// React entry point (`@patreon-gate/client/react`): React is a peer dependency.
export { AuthProvider, useAuth, type AuthProviderProps, type UseAuthResult } from "./AuthProvider.js";
export { PatreonAuth, membershipStatus, type PatreonAuthProps } from "./PatreonAuth.js";
export { RequireMembership, type RequireMembershipProps } from "./RequireMembership.js";
export type { AuthError, AuthOptions, AuthState, RecheckOutcome, TokenStorage } from "../auth-store.js";
export type { Member } from "../client.js";
