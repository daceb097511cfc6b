import {
  createContext,
  useContext,
  useEffect,
  useMemo,
  useState,
  useSyncExternalStore,
  type ReactNode,
} from "react";

import { AuthStore, type AuthOptions, type AuthState, type RecheckOutcome } from "../auth-store.js";
import type { Member } from "../client.js";

const AuthContext = createContext<AuthStore | null>(null);

export type AuthProviderProps = AuthOptions & {
  children?: ReactNode;
  /** A store created elsewhere (e.g. to share it with non-React code); `options` are then ignored. */
  store?: AuthStore;
};

/**
 * Holds one sign-in state for everything below it, so every `useAuth()`, `<PatreonAuth />` and
 * `<RequireMembership>` agree. Options are read once, when it mounts.
 */
export function AuthProvider({ children, store, ...options }: AuthProviderProps) {
  const [shared] = useState(() => store ?? new AuthStore(options));
  useEffect(() => {
    shared.start();
    return () => shared.stop();
  }, [shared]);
  return <AuthContext.Provider value={shared}>{children}</AuthContext.Provider>;
}

export interface UseAuthResult extends AuthState {
  isAuthenticated: boolean;
  /** Leaves for Patreon; the member comes back to `returnTo` (default: the current page). */
  login: (returnTo?: string) => void;
  logout: () => Promise<void>;
  /** Renews the JWT and reads the member again. */
  refresh: () => Promise<Member | null>;
  /** Has the membership checked with Patreon now and waits for the answer. */
  recheck: () => Promise<RecheckOutcome>;
}

/**
 * The sign-in state. Inside an `<AuthProvider>` it reads the provider's shared state (and
 * `options` are ignored); outside one, this component gets a state of its own built from `options`.
 */
export function useAuth(options?: AuthOptions): UseAuthResult {
  const shared = useContext(AuthContext);
  const [own] = useState(() => (shared ? null : new AuthStore(options)));
  useEffect(() => {
    if (!own) return;
    own.start();
    return () => own.stop();
  }, [own]);
  const store = (shared ?? own) as AuthStore;
  const state = useSyncExternalStore(store.subscribe, store.getState, store.getState);
  return useMemo(
    () => ({
      ...state,
      isAuthenticated: state.user !== null,
      login: store.login,
      logout: store.logout,
      refresh: store.refresh,
      recheck: store.recheck,
    }),
    [state, store],
  );
}
