use std::time::Duration;

/// What went wrong talking to Patreon, split by what the caller should do about it.
#[derive(Debug, thiserror::Error)]
pub enum PatreonError {
    /// The API refused the access token (401): refresh once, then the link is dead.
    #[error("Patreon rejected the access token")]
    Unauthorized,
    /// The token endpoint refused the code or refresh token: the user must sign in again.
    #[error("Patreon refused the grant ({code})")]
    InvalidGrant { code: String },
    #[error("Patreon is rate limiting us")]
    RateLimited { retry_after: Option<Duration> },
    #[error("Patreon is unavailable (HTTP {status})")]
    Unavailable { status: u16 },
    #[error("Patreon did not answer in time")]
    Timeout,
    #[error("could not reach Patreon")]
    Network(#[source] reqwest::Error),
    /// A 4xx that says our request was wrong (bad client credentials, missing parameter, 403).
    #[error("Patreon rejected the request (HTTP {status})")]
    Rejected { status: u16 },
    #[error("unexpected response from Patreon: {0}")]
    BadResponse(String),
    /// The call needs `PATREON_CREATOR_ACCESS_TOKEN`, which is not configured.
    #[error("PATREON_CREATOR_ACCESS_TOKEN is not configured")]
    NoCreatorToken,
}

impl PatreonError {
    /// Worth retrying later; never a reason to take access away.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. } | Self::Unavailable { .. } | Self::Timeout | Self::Network(_)
        )
    }

    /// The member's Patreon link is dead: only a fresh sign-in can restore it.
    pub fn is_dead_link(&self) -> bool {
        matches!(self, Self::Unauthorized | Self::InvalidGrant { .. })
    }

    /// A stable, non-secret label for logs, metrics and error redirects.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::InvalidGrant { .. } => "invalid_grant",
            Self::RateLimited { .. } => "rate_limited",
            Self::Unavailable { .. } => "unavailable",
            Self::Timeout => "timeout",
            Self::Network(_) => "network",
            Self::Rejected { .. } => "rejected",
            Self::BadResponse(_) => "bad_response",
            Self::NoCreatorToken => "no_creator_token",
        }
    }

    pub(crate) fn from_transport(err: reqwest::Error) -> Self {
        if err.is_timeout() {
            Self::Timeout
        } else if err.is_decode() {
            Self::BadResponse("body is not the expected JSON".into())
        } else {
            Self::Network(err.without_url())
        }
    }
}
