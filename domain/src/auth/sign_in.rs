//! The pieces of the OAuth dance that live on our side: the single-use `state`, the landing path
//! after sign-in, and the single-use handoff code a Bearer-mode frontend trades for a JWT.

use chrono::{DateTime, Duration, Utc};
use entity::{handoff_code, oauth_state, session, user};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use secrecy::SecretString;
use url::{Position, Url};

use crate::{Error, Result, infra::secrets};

mod complete;
pub use complete::{SignedIn, complete};

/// A sign-in must come back from Patreon within this long.
pub const STATE_TTL: Duration = Duration::minutes(10);
/// A handoff code is good for one exchange within this long.
pub const HANDOFF_TTL: Duration = Duration::seconds(60);
const MAX_RETURN_TO_LEN: usize = 1024;

/// Accepts only an absolute path on the frontend's own origin (`/account?tab=1`). Anything that
/// a browser could read as another host (`//evil`, `/\evil`, encoded variants, schemes, control
/// characters, dot segments that resolve to `//host`) is refused rather than repaired; dot
/// segments that stay on the frontend are resolved, and the resolved path is handed back.
pub fn validate_return_to(raw: Option<&str>, frontend: &Url) -> Result<String> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(frontend.path().to_owned());
    };
    let decoded = percent_decode_twice(raw);
    let suspicious = |s: &str| {
        !s.starts_with('/')
            || s.starts_with("//")
            || s.contains('\\')
            || s.chars()
                .any(|c| c.is_control() || c.is_whitespace() && c != ' ')
    };
    if raw.len() > MAX_RETURN_TO_LEN || suspicious(raw) || suspicious(&decoded) || raw.contains(' ')
    {
        return Err(Error::InvalidReturnTo);
    }
    // The join resolves dot segments (`%2e` too), so `/..//evil.com` becomes the path
    // `//evil.com`: check what the browser will be sent to, and hand back exactly that.
    let joined = frontend.join(raw).map_err(|_| Error::InvalidReturnTo)?;
    if joined.origin() != frontend.origin() || names_another_host(joined.path()) {
        return Err(Error::InvalidReturnTo);
    }
    // A frontend that decodes the path and resolves it again must not reach another host either.
    let decoded = percent_decode_twice(joined.path());
    let resolved_again = frontend
        .join(&decoded)
        .map_err(|_| Error::InvalidReturnTo)?;
    if names_another_host(&decoded)
        || resolved_again.origin() != frontend.origin()
        || names_another_host(resolved_again.path())
    {
        return Err(Error::InvalidReturnTo);
    }
    Ok(joined[Position::BeforePath..].to_owned())
}

/// A path a browser or router could read as `//host` or `\\host`.
fn names_another_host(path: &str) -> bool {
    path.starts_with("//") || path.contains('\\')
}

/// Decodes `%XX` escapes twice, so `%252F%252F` is seen as `//` too.
fn percent_decode_twice(raw: &str) -> String {
    let once = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
    percent_encoding::percent_decode_str(&once)
        .decode_utf8_lossy()
        .into_owned()
}

/// Records a pending sign-in and returns its `state` (stored only as a hash).
pub async fn begin(
    db: &impl ConnectionTrait,
    return_to: String,
    now: DateTime<Utc>,
) -> Result<String> {
    let state = secrets::random_token();
    let row = oauth_state::ActiveModel {
        state_hash: Set(secrets::hash(&state)),
        return_to: Set(return_to),
        created_at: Set(now),
        expires_at: Set(now + STATE_TTL),
    };
    oauth_state::Entity::insert(row)
        .exec_without_returning(db)
        .await?;
    Ok(state)
}

/// Consumes a `state` exactly once and returns where the member wanted to land.
pub async fn consume_state(
    db: &impl ConnectionTrait,
    state: &str,
    now: DateTime<Utc>,
) -> Result<String> {
    let hash = secrets::hash(state);
    let row = oauth_state::Entity::find_by_id(hash.clone())
        .one(db)
        .await?
        .ok_or(Error::InvalidState)?;
    // The delete is the single-use guard: of two racing callbacks only one removes the row.
    let deleted = oauth_state::Entity::delete_many()
        .filter(oauth_state::Column::StateHash.eq(hash))
        .exec(db)
        .await?;
    if deleted.rows_affected != 1 || row.expires_at <= now {
        return Err(Error::InvalidState);
    }
    Ok(row.return_to)
}

pub async fn issue_handoff(
    db: &impl ConnectionTrait,
    session_id: &str,
    now: DateTime<Utc>,
) -> Result<String> {
    let code = secrets::random_token();
    let row = handoff_code::ActiveModel {
        code_hash: Set(secrets::hash(&code)),
        session_id: Set(session_id.to_owned()),
        expires_at: Set(now + HANDOFF_TTL),
    };
    handoff_code::Entity::insert(row)
        .exec_without_returning(db)
        .await?;
    Ok(code)
}

/// A redeemed handoff: the live session, its member, and the refresh token now handed to the
/// Bearer client (the session's refresh chain moves to it).
pub struct Redeemed {
    pub session: session::Model,
    pub user: user::Model,
    pub refresh_token: SecretString,
}

/// Redeems a handoff code once; the session must still be live.
pub async fn redeem_handoff(
    db: &impl ConnectionTrait,
    code: &str,
    now: DateTime<Utc>,
) -> Result<Redeemed> {
    if code.len() > 128 {
        return Err(Error::InvalidHandoff);
    }
    let hash = secrets::hash(code);
    let row = handoff_code::Entity::find_by_id(hash.clone())
        .one(db)
        .await?
        .ok_or(Error::InvalidHandoff)?;
    let deleted = handoff_code::Entity::delete_many()
        .filter(handoff_code::Column::CodeHash.eq(hash))
        .exec(db)
        .await?;
    if deleted.rows_affected != 1 || row.expires_at <= now {
        return Err(Error::InvalidHandoff);
    }
    let found = session::Entity::find_by_id(row.session_id)
        .find_also_related(user::Entity)
        .one(db)
        .await?;
    let Some((session, Some(user))) = found.filter(|(s, _)| crate::auth::sessions::is_live(s, now))
    else {
        return Err(Error::SessionEnded);
    };
    let refresh_token = crate::auth::sessions::restart_refresh_chain(db, &session.id).await?;
    Ok(Redeemed {
        session,
        user,
        refresh_token,
    })
}

/// Drops expired states and handoff codes; called periodically.
pub async fn purge_expired(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64> {
    let states = oauth_state::Entity::delete_many()
        .filter(oauth_state::Column::ExpiresAt.lt(now))
        .exec(db)
        .await?;
    let codes = handoff_code::Entity::delete_many()
        .filter(handoff_code::Column::ExpiresAt.lt(now))
        .exec(db)
        .await?;
    Ok(states.rows_affected + codes.rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frontend() -> Url {
        Url::parse("https://app.example.com/").unwrap()
    }

    #[test]
    fn relative_paths_on_the_frontend_are_kept() {
        for ok in ["/", "/account", "/posts/42?tab=comments#top", "/a/b%20c"] {
            assert_eq!(validate_return_to(Some(ok), &frontend()).unwrap(), ok);
        }
        assert_eq!(validate_return_to(None, &frontend()).unwrap(), "/");
    }

    #[test]
    fn anything_that_could_leave_the_frontend_is_refused() {
        for bad in [
            "https://evil.com",
            "//evil.com",
            "/\\evil.com",
            "\\\\evil.com",
            "/%2F%2Fevil.com",
            "%2F%2Fevil.com",
            "/%5Cevil.com",
            "/%252F%252Fevil.com",
            "javascript:alert(1)",
            "https://app.example.com.evil.com",
            "https://evil.com#@app.example.com",
            "/\tevil",
            "/\r\nSet-Cookie: x=1",
            "evil.com",
            " /x",
            // Dot segments that the join resolves to `//host` on our origin.
            "/..//evil.com",
            "/x/../../..//example.com",
            "/.%2e/%2e%2e//example.com",
            "/%2e%2E//evil.com",
            "/a/..//evil.com?x=1",
            "/x/..%2F%2Fevil.com",
            "/x/..%5Cevil.com",
            "/x/%2e%2e%252F%252Fevil.com",
        ] {
            assert!(
                validate_return_to(Some(bad), &frontend()).is_err(),
                "{bad:?} was accepted"
            );
        }
        assert!(validate_return_to(Some(&format!("/{}", "a".repeat(2000))), &frontend()).is_err());
    }

    #[test]
    fn dot_segments_are_resolved_and_the_resolved_path_is_handed_back() {
        for (raw, resolved) in [
            ("/a/./b", "/a/b"),
            ("/a/../b", "/b"),
            ("/a/%2e%2e/b?x=1#top", "/b?x=1#top"),
            ("/..", "/"),
            ("/../b", "/b"),
            ("/https://evil.com", "/https://evil.com"),
        ] {
            assert_eq!(
                validate_return_to(Some(raw), &frontend()).unwrap(),
                resolved,
                "{raw:?}"
            );
        }
    }
}
