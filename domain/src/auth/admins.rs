//! The admin role. A member is an admin when the database says so (`users.is_admin`, granted
//! and revoked by operators with `worker admins grant|revoke`) or when their Patreon id is in
//! `ADMIN_PATREON_IDS`, the bootstrap for the first admin. Every admin check goes through
//! [`is_admin`].

use std::collections::{HashMap, HashSet};

use entity::user;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait, QueryFilter, sea_query::Expr};

use crate::auth::auth_events::{self, AuthEvent};
use crate::{Error, PatreonUserId, Result, UserId};

/// Whether `u` has the admin role; `bootstrap` is `ADMIN_PATREON_IDS`.
pub fn is_admin(u: &user::Model, bootstrap: &HashSet<String>) -> bool {
    u.is_admin || bootstrap.contains(u.patreon_id.as_str())
}

/// Grants the role in the database. `Ok(false)` when the member already had it there.
pub async fn grant(db: &impl ConnectionTrait, u: &user::Model) -> Result<bool> {
    set_role(db, u.id, true).await
}

/// Revokes the database role. `Ok(false)` when the member did not have it there. A member listed
/// in `bootstrap` is refused with [`Error::AdminByConfig`] and nothing changes: the list would
/// keep granting the role.
pub async fn revoke(
    db: &impl ConnectionTrait,
    u: &user::Model,
    bootstrap: &HashSet<String>,
) -> Result<bool> {
    if bootstrap.contains(u.patreon_id.as_str()) {
        return Err(Error::AdminByConfig(u.patreon_id.to_string()));
    }
    set_role(db, u.id, false).await
}

async fn set_role(db: &impl ConnectionTrait, user_id: UserId, admin: bool) -> Result<bool> {
    let updated = user::Entity::update_many()
        .col_expr(user::Column::IsAdmin, Expr::value(admin))
        .filter(user::Column::Id.eq(user_id))
        .filter(user::Column::IsAdmin.ne(admin))
        .exec(db)
        .await?;
    if updated.rows_affected == 0 {
        return Ok(false);
    }
    // Cached sessions carry the user row: drop them so the next request sees the new role.
    auth_events::publish(db, AuthEvent::User(user_id)).await?;
    tracing::info!(user_id = i64::from(user_id), admin, "admin role changed");
    Ok(true)
}

/// One admin and where their role comes from.
#[derive(Clone, Debug)]
pub struct Admin {
    pub patreon_id: PatreonUserId,
    /// `None` for a listed Patreon id that has not signed in yet.
    pub user: Option<user::Model>,
    pub in_database: bool,
    pub in_config: bool,
}

/// Every admin, from the database and from `bootstrap`, ordered by Patreon id.
pub async fn list(db: &impl ConnectionTrait, bootstrap: &HashSet<String>) -> Result<Vec<Admin>> {
    let rows = user::Entity::find()
        .filter(
            user::Column::IsAdmin
                .eq(true)
                .or(user::Column::PatreonId.is_in(bootstrap.iter().cloned())),
        )
        .all(db)
        .await?;
    let mut admins: HashMap<PatreonUserId, Admin> = bootstrap
        .iter()
        .map(|id| {
            let admin = Admin {
                patreon_id: PatreonUserId::from(id.as_str()),
                user: None,
                in_database: false,
                in_config: true,
            };
            (admin.patreon_id.clone(), admin)
        })
        .collect();
    for u in rows {
        let entry = admins.entry(u.patreon_id.clone()).or_insert_with(|| Admin {
            patreon_id: u.patreon_id.clone(),
            user: None,
            in_database: false,
            in_config: false,
        });
        entry.in_database = u.is_admin;
        entry.user = Some(u);
    }
    // Patreon ids are numeric: order them as numbers (shorter first), not as text.
    let mut admins: Vec<Admin> = admins.into_values().collect();
    admins.sort_by(|a, b| {
        (a.patreon_id.len(), &a.patreon_id).cmp(&(b.patreon_id.len(), &b.patreon_id))
    });
    Ok(admins)
}
