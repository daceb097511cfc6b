//! Re-encrypting stored Patreon tokens under the current `TOKEN_ENCRYPTION_KEY_ID`, so an old key
//! can be retired once no row uses it.

use entity::user;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait},
};

use crate::Result;
use crate::UserId;
use crate::infra::crypto::{TokenCipher, token_aad};
use crate::members::users::{ACCESS_TOKEN_COLUMN, REFRESH_TOKEN_COLUMN};

const BATCH: u64 = 500;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct RotationReport {
    pub reencrypted: u64,
    /// Rows changed concurrently (a refresh wrote a new pair under the current key anyway).
    pub skipped: u64,
}

fn reencrypt(cipher: &TokenCipher, stored: &Option<String>, aad: &str) -> Result<Option<String>> {
    match stored {
        Some(s) if cipher.needs_reencryption(s) => {
            Ok(Some(cipher.encrypt(&cipher.decrypt(s, aad)?, aad)?))
        }
        other => Ok(other.clone()),
    }
}

/// Walks every user with tokens in id order, in batches; each row is rewritten with a
/// compare-and-swap on `token_version`, so a concurrent refresh is never overwritten.
pub async fn reencrypt_all(
    db: &impl ConnectionTrait,
    cipher: &TokenCipher,
) -> Result<RotationReport> {
    let mut report = RotationReport::default();
    let mut after_id = UserId(0);
    loop {
        let batch = user::Entity::find()
            .filter(user::Column::Id.gt(after_id))
            .filter(
                user::Column::AccessToken
                    .is_not_null()
                    .or(user::Column::RefreshToken.is_not_null()),
            )
            .order_by_asc(user::Column::Id)
            .limit(BATCH)
            .all(db)
            .await?;
        let Some(last) = batch.last() else { break };
        after_id = last.id;
        for u in batch {
            let stale =
                |t: &Option<String>| t.as_deref().is_some_and(|s| cipher.needs_reencryption(s));
            if !stale(&u.access_token) && !stale(&u.refresh_token) {
                continue;
            }
            let access = reencrypt(
                cipher,
                &u.access_token,
                &token_aad(&u.patreon_id, ACCESS_TOKEN_COLUMN),
            )?;
            let refresh = reencrypt(
                cipher,
                &u.refresh_token,
                &token_aad(&u.patreon_id, REFRESH_TOKEN_COLUMN),
            )?;
            let updated = user::Entity::update_many()
                .col_expr(user::Column::AccessToken, Expr::value(access))
                .col_expr(user::Column::RefreshToken, Expr::value(refresh))
                .filter(user::Column::Id.eq(u.id))
                .filter(user::Column::TokenVersion.eq(u.token_version))
                .exec(db)
                .await?;
            if updated.rows_affected == 1 {
                report.reencrypted += 1;
            } else {
                report.skipped += 1;
            }
        }
    }
    Ok(report)
}
