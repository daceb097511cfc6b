//! Short leases on named work, held in the database so every process sees them: the guard that
//! keeps one member's check from running twice at once when the queue delivers a job twice (a
//! worker killed mid-job, a slow SIGTERM drain, a reconciler re-push; job-queue.md 3.4, 3.5).

use chrono::{Duration, Utc};
use entity::job_lease;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    sea_query::{Expr, OnConflict},
};

use crate::{Result, secrets};

/// The lease every change to one member's membership runs under (checks, webhook deliveries,
/// erasure).
pub fn member_key(user_id: i64) -> String {
    format!("verify:{user_id}")
}

/// A lease this process holds. Let go with [`release`]; if the process dies it simply expires.
#[derive(Debug)]
pub struct Lease {
    key: String,
    holder: String,
}

/// Takes the lease on `key` for `ttl` unless someone else holds an unexpired one.
pub async fn try_acquire(
    db: &impl ConnectionTrait,
    key: &str,
    ttl: Duration,
) -> Result<Option<Lease>> {
    let holder = secrets::random_id();
    let now = Utc::now();
    let row = job_lease::ActiveModel {
        key: Set(key.to_owned()),
        holder: Set(holder.clone()),
        expires_at: Set(now + ttl),
    };
    let inserted = job_lease::Entity::insert(row)
        .on_conflict(
            OnConflict::column(job_lease::Column::Key)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    if inserted == 0 {
        // Someone had it: take it over only if their lease ran out.
        let taken = job_lease::Entity::update_many()
            .col_expr(job_lease::Column::Holder, Expr::value(holder.clone()))
            .col_expr(job_lease::Column::ExpiresAt, Expr::value(now + ttl))
            .filter(job_lease::Column::Key.eq(key))
            .filter(job_lease::Column::ExpiresAt.lt(now))
            .exec(db)
            .await?;
        if taken.rows_affected == 0 {
            return Ok(None);
        }
    }
    Ok(Some(Lease {
        key: key.to_owned(),
        holder,
    }))
}

/// Runs `work` while holding `lease`, renewing it every third of `ttl`, then lets go. If `work`
/// is cancelled (its worker stopped mid-job), the lease is let go in the background; if the
/// process dies, it expires within `ttl`.
pub async fn while_held<T>(
    db: &DatabaseConnection,
    lease: Lease,
    ttl: Duration,
    work: impl Future<Output = T>,
) -> Result<T> {
    let guard = ReleaseOnDrop {
        db: db.clone(),
        lease: Some(lease),
    };
    let renewing = async {
        let every = (ttl / 3)
            .to_std()
            .unwrap_or(std::time::Duration::from_secs(1));
        loop {
            tokio::time::sleep(every).await;
            if let Some(lease) = &guard.lease
                && let Err(e) = renew(db, lease, ttl).await
            {
                tracing::warn!(key = %lease.key, error = %e, "cannot renew a lease");
            }
        }
    };
    let out = tokio::select! {
        out = work => out,
        never = renewing => never,
    };
    guard.release().await?;
    Ok(out)
}

async fn renew(db: &impl ConnectionTrait, lease: &Lease, ttl: Duration) -> Result<()> {
    job_lease::Entity::update_many()
        .col_expr(job_lease::Column::ExpiresAt, Expr::value(Utc::now() + ttl))
        .filter(job_lease::Column::Key.eq(&lease.key))
        .filter(job_lease::Column::Holder.eq(&lease.holder))
        .exec(db)
        .await?;
    Ok(())
}

struct ReleaseOnDrop {
    db: DatabaseConnection,
    lease: Option<Lease>,
}

impl ReleaseOnDrop {
    async fn release(mut self) -> Result<()> {
        match self.lease.take() {
            Some(lease) => release(&self.db, lease).await,
            None => Ok(()),
        }
    }
}

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let db = self.db.clone();
            runtime.spawn(async move { release(&db, lease).await });
        }
    }
}

/// Lets go of `lease`, unless it expired and someone else took it meanwhile.
pub async fn release(db: &impl ConnectionTrait, lease: Lease) -> Result<()> {
    job_lease::Entity::delete_many()
        .filter(job_lease::Column::Key.eq(lease.key))
        .filter(job_lease::Column::Holder.eq(lease.holder))
        .exec(db)
        .await?;
    Ok(())
}
