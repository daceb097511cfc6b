use crate::{infra::crypto::CryptoError, patreon::PatreonError};

/// What a use case can fail with. The api maps each variant to an HTTP status in one place.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Shows the cause, so a log line says which (no source: chain printers would repeat it).
    #[error("database error: {0}")]
    Database(sea_orm::DbErr),
    #[error("Patreon request failed: {0}")]
    Patreon(#[from] PatreonError),
    #[error("stored token could not be decrypted")]
    Crypto(#[from] CryptoError),
    #[error("the sign-in state is missing, expired or already used")]
    InvalidState,
    #[error("the handoff code is invalid, expired or already used")]
    InvalidHandoff,
    #[error("the session has ended")]
    SessionEnded,
    #[error("the refresh token is invalid")]
    InvalidRefreshToken,
    #[error("the member's Patreon link is dead; a fresh sign-in is needed")]
    NeedsRelogin,
    #[error("the return path is not a relative path on the frontend")]
    InvalidReturnTo,
    #[error(
        "Patreon user {0} is an admin through ADMIN_PATREON_IDS, which grants the role whatever \
         the database says: remove them from that list (and restart the api) instead"
    )]
    AdminByConfig(String),
    #[error("no such user")]
    UnknownUser,
    #[error("a check of this member is under way; try again in a few seconds")]
    MemberBusy,
    #[error("the job queue refused the job: {0}")]
    Queue(String),
}

/// A push the queue refused: the same [`Error::Queue`] wherever it happens.
impl From<crate::work::jobs::QueueError> for Error {
    fn from(e: crate::work::jobs::QueueError) -> Self {
        Error::Queue(e.to_string())
    }
}

impl From<sea_orm::DbErr> for Error {
    fn from(e: sea_orm::DbErr) -> Self {
        Error::Database(e)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
