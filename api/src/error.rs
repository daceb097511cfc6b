//! The one place where failures become HTTP: `{"error": "<stable code>", "message": "<text>"}`.
//! 5xx bodies are opaque; the cause chain goes to the log with the request id.

use domain::{Error as DomainError, patreon::PatreonError};
use poem::{Response, http::StatusCode};
use poem_openapi::Object;

/// Body of every error response.
#[derive(Debug, Clone, Object)]
pub struct ErrorBody {
    /// Stable, machine-readable code.
    pub error: String,
    /// Human-readable explanation; never contains secrets or echoes input.
    pub message: String,
}

/// A classified failure: status, stable code and message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Sign in to continue.",
        )
    }

    pub fn forbidden_origin() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "csrf_rejected",
            "Cookie-authenticated requests need an allowed Origin and the X-Requested-With header.",
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Something went wrong on our side.",
        )
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: self.code.to_owned(),
            message: self.message.clone(),
        }
    }

    pub fn to_response(&self) -> Response {
        let body = serde_json::json!({ "error": self.code, "message": self.message });
        let mut response = Response::builder()
            .status(self.status)
            .content_type("application/json; charset=utf-8")
            .body(body.to_string());
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                "WWW-Authenticate",
                poem::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl poem::error::ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        self.status
    }

    fn as_response(&self) -> Response {
        self.to_response()
    }
}

impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> Self {
        use StatusCode as S;
        match err {
            DomainError::InvalidState => Self::new(
                S::BAD_REQUEST,
                "invalid_state",
                "This sign-in link is invalid, expired or was already used. Start the sign-in again.",
            ),
            DomainError::InvalidHandoff => Self::new(
                S::BAD_REQUEST,
                "invalid_handoff",
                "The handoff code is invalid, expired or already used.",
            ),
            DomainError::InvalidReturnTo => Self::new(
                S::BAD_REQUEST,
                "invalid_return_to",
                "return_to must be a relative path on the frontend.",
            ),
            DomainError::SessionEnded | DomainError::InvalidRefreshToken => Self::unauthorized(),
            DomainError::NeedsRelogin => Self::new(
                S::UNAUTHORIZED,
                "needs_relogin",
                "Your Patreon authorization has ended. Sign in with Patreon again.",
            ),
            DomainError::Patreon(e) => patreon_error(&e),
            other => {
                tracing::error!(error.cause_chain = ?other, error = %other, "request failed");
                Self::internal()
            }
        }
    }
}

fn patreon_error(err: &PatreonError) -> ApiError {
    tracing::warn!(reason = err.kind(), error = %err, "Patreon call failed");
    if err.is_transient() {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "patreon_unavailable",
            "Patreon is not answering right now. Try again shortly.",
        )
    } else {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "patreon_error",
            "Patreon refused the request.",
        )
    }
}

/// Declares an operation's error response with exactly the statuses it can return (plus 500).
macro_rules! operation_errors {
    ($(#[$meta:meta])* $name:ident { $($status:literal => $variant:ident: $doc:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, poem_openapi::ApiResponse)]
        pub enum $name {
            $(
                #[doc = $doc]
                #[oai(status = $status)]
                $variant(poem_openapi::payload::Json<$crate::error::ErrorBody>),
            )*
            /// Unexpected failure; details are in the server log.
            #[oai(status = 500)]
            Internal(poem_openapi::payload::Json<$crate::error::ErrorBody>),
        }

        impl From<$crate::error::ApiError> for $name {
            fn from(err: $crate::error::ApiError) -> Self {
                match err.status.as_u16() {
                    $($status => Self::$variant(poem_openapi::payload::Json(err.body())),)*
                    _ => Self::Internal(poem_openapi::payload::Json($crate::error::ApiError::internal().body())),
                }
            }
        }

        impl From<domain::Error> for $name {
            fn from(err: domain::Error) -> Self {
                $crate::error::ApiError::from(err).into()
            }
        }
    };
}
pub(crate) use operation_errors;
