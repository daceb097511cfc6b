//! One batch of source rows into `users`: validated, compared with what is stored, and written
//! in one transaction (or only counted, on a dry run).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::user;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    sea_query::{Expr, OnConflict},
};

use super::profile::{self, Profile, SkipReason};
use super::report::ImportReport;
use super::source::SourceRow;
use crate::{PatreonUserId, UserId};

/// Rows per INSERT: 14 values each stays far below both databases' bound-parameter limits.
const INSERT_CHUNK: usize = 500;

/// What a valid profile comes to against the stored user.
enum Action {
    Create,
    Update(UserId),
    Unchanged,
    /// Patreon's data is stored for this member; the import leaves them alone entirely.
    AlreadyVerified,
}

/// Imports `rows` (one batch) into `target`, adding what happened to `report`.
pub async fn import_batch(
    target: &DatabaseConnection,
    rows: &[SourceRow],
    dry_run: bool,
    now: DateTime<Utc>,
    report: &mut ImportReport,
) -> Result<(), sea_orm::DbErr> {
    report.rows_read += rows.len() as u64;
    let profiles = valid_profiles(rows, report);
    if dry_run {
        let planned = plan(target, &profiles).await?;
        note_dropped_emails(report, &planned);
        for (_, action) in planned {
            count(report, &action);
        }
        return Ok(());
    }
    let txn = crate::infra::db::begin_write(target).await?;
    let planned = plan(&txn, &profiles).await?;
    note_dropped_emails(report, &planned);
    let mut creates = Vec::new();
    // Counted only once the batch is committed, so the report never claims a rolled-back write.
    let mut done = Vec::with_capacity(planned.len());
    for (profile, action) in planned {
        match action {
            Action::Create => creates.push(profile),
            Action::Update(id) if !update(&txn, id, profile, now).await? => {
                done.push(Action::AlreadyVerified)
            }
            other => done.push(other),
        }
    }
    let mut created = 0;
    for chunk in creates.chunks(INSERT_CHUNK) {
        created += insert(&txn, chunk, now).await?;
    }
    txn.commit().await?;
    report.created += created;
    // Rows a concurrent sign-in created first were left alone.
    for _ in created..creates.len() as u64 {
        report.skip(None, SkipReason::AlreadyVerified);
    }
    for action in &done {
        count(report, action);
    }
    Ok(())
}

/// Rows to be imported without their malformed email, for the report.
fn note_dropped_emails(report: &mut ImportReport, planned: &[(&Profile, Action)]) {
    for (profile, action) in planned {
        if let (Some(why), false) = (
            profile.email_dropped,
            matches!(action, Action::AlreadyVerified),
        ) {
            report.drop_email(&profile.patreon_id, why);
        }
    }
}

fn count(report: &mut ImportReport, action: &Action) {
    match action {
        Action::Create => report.created += 1,
        Action::Update(_) => report.updated += 1,
        Action::Unchanged => report.unchanged += 1,
        Action::AlreadyVerified => report.skip(None, SkipReason::AlreadyVerified),
    }
}

/// The batch's valid profiles. An id on several rows is ambiguous: all of them are skipped
/// (the source pages so that equal ids always share a batch).
fn valid_profiles(rows: &[SourceRow], report: &mut ImportReport) -> Vec<Profile> {
    let mut per_id: HashMap<&str, usize> = HashMap::new();
    for id in rows.iter().filter_map(|r| r.id.as_deref()) {
        *per_id.entry(id).or_default() += 1;
    }
    let mut profiles = Vec::with_capacity(rows.len());
    for row in rows {
        let id = row.id.as_deref();
        let parsed = match id.and_then(|id| per_id.get(id)) {
            Some(n) if *n > 1 => profile::parse(row).and(Err(SkipReason::DuplicateId)),
            _ => profile::parse(row),
        };
        // A malformed duplicate is reported for what is wrong with it first.
        match parsed {
            Ok(p) => profiles.push(p),
            Err(reason) => report.skip(id, reason),
        }
    }
    profiles
}

/// Each profile with what it comes to, from one read of the stored users.
async fn plan<'p>(
    db: &impl ConnectionTrait,
    profiles: &'p [Profile],
) -> Result<Vec<(&'p Profile, Action)>, sea_orm::DbErr> {
    let ids: HashSet<&str> = profiles.iter().map(|p| p.patreon_id.as_str()).collect();
    let stored: HashMap<PatreonUserId, user::Model> = user::Entity::find()
        .filter(user::Column::PatreonId.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|u| (u.patreon_id.clone(), u))
        .collect();
    Ok(profiles
        .iter()
        .map(|p| {
            let action = match stored.get(&p.patreon_id) {
                None => Action::Create,
                Some(u) if verified_by_patreon(u) => Action::AlreadyVerified,
                Some(u) if matches(u, p) => Action::Unchanged,
                Some(u) => Action::Update(u.id),
            };
            (p, action)
        })
        .collect())
}

/// The member signed in or was checked at least once: their row holds Patreon's data.
fn verified_by_patreon(u: &user::Model) -> bool {
    u.last_checked.is_some() || u.access_token.is_some() || u.refresh_token.is_some()
}

fn matches(u: &user::Model, p: &Profile) -> bool {
    u.email == p.email
        && u.full_name == p.name
        && u.avatar_url == p.avatar_url
        && u.tier_title == p.tier
        && u.membership_active == p.paid
        && u.imported_team == p.team
}

/// Creates the members, never verified: `last_checked` stays unset and the paid flag counts
/// from `imported_at` (see `members::is_paid_member`). Returns how many were created: a member
/// whose sign-in got there first is left as it is.
async fn insert(
    db: &impl ConnectionTrait,
    profiles: &[&Profile],
    now: DateTime<Utc>,
) -> Result<u64, sea_orm::DbErr> {
    let rows = profiles.iter().map(|p| user::ActiveModel {
        patreon_id: Set(p.patreon_id.clone()),
        email: Set(p.email.clone()),
        full_name: Set(p.name.clone()),
        avatar_url: Set(p.avatar_url.clone()),
        tier_title: Set(p.tier.clone()),
        membership_active: Set(p.paid),
        imported_team: Set(p.team),
        imported_at: Set(Some(now)),
        last_checked: Set(None),
        needs_relogin: Set(false),
        entitled_amount_cents: Set(0),
        token_version: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    });
    user::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::column(user::Column::PatreonId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await
}

/// Updates an imported, never verified member. `imported_at` is kept: importing again never
/// extends the access an import gives. `false` when a sign-in or check got there first.
async fn update(
    db: &impl ConnectionTrait,
    user_id: UserId,
    p: &Profile,
    now: DateTime<Utc>,
) -> Result<bool, sea_orm::DbErr> {
    let updated = user::Entity::update_many()
        .col_expr(user::Column::Email, Expr::value(p.email.clone()))
        .col_expr(user::Column::FullName, Expr::value(p.name.clone()))
        .col_expr(user::Column::AvatarUrl, Expr::value(p.avatar_url.clone()))
        .col_expr(user::Column::TierTitle, Expr::value(p.tier.clone()))
        .col_expr(user::Column::MembershipActive, Expr::value(p.paid))
        .col_expr(user::Column::ImportedTeam, Expr::value(p.team))
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(user_id))
        .filter(user::Column::LastChecked.is_null())
        .filter(user::Column::AccessToken.is_null())
        .filter(user::Column::RefreshToken.is_null())
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}
