// Framework-free entry point: the typed client and the sign-in state. React pieces are in
// `@patreon-gate/client/react`, so non-React apps do not need React installed.
export {
  ApiError,
  createPatreonGateClient,
  type AuthMode,
  type ClientOptions,
  type ErrorBody,
  type IssuedToken,
  type JobStatus,
  type Member,
  type PatreonGateClient,
  type RecheckRequest,
  type Renewal,
  type components,
  type paths,
} from "./client.js";
export {
  AuthStore,
  type AuthError,
  type AuthOptions,
  type AuthState,
  type RecheckOutcome,
  type TokenStorage,
} from "./auth-store.js";
export { renewalLeadTime, tokenLifetime, type TokenLifetime } from "./token.js";
