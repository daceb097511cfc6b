import type { ReactNode } from "react";

import { useAuth } from "./AuthProvider.js";

export interface RequireMembershipProps {
  children?: ReactNode;
  /** Shown to visitors and members who are not paying (default: nothing). */
  fallback?: ReactNode;
  /** Shown while the sign-in is being checked (default: nothing, so paid content never flashes). */
  loading?: ReactNode;
}

/** Renders `children` only for paying members (`isPaidMember`), `fallback` otherwise. */
export function RequireMembership({ children, fallback = null, loading = null }: RequireMembershipProps) {
  const { user, isLoading } = useAuth();
  if (isLoading) return <>{loading}</>;
  return <>{user?.isPaidMember ? children : fallback}</>;
}
