use poem_openapi::Tags;

#[derive(Tags)]
pub enum ApiTags {
    /// Signing in with Patreon.
    SignIn,
    /// The signed-in member and their session.
    Session,
    /// Liveness and readiness probes.
    Health,
    /// For members with the admin role.
    Admin,
}
