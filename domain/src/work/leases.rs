//! Short leases on named work, held in the database so every process sees them: the guard that
//! keeps one member's check from running twice at once when the queue delivers a job twice (a
//! worker killed mid-job, a slow SIGTERM drain, a reconciler re-push;
//! docs/job-queue.md §3.4, §3.5).

use chrono::{Duration, Utc};
use entity::job_lease;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    sea_query::{Expr, OnConflict},
};

use crate::UserId;
use crate::{Result, infra::secrets};

/// The lease every change to one member's membership runs under (checks, webhook deliveries,
/// erasure).
pub fn member_key(user_id: UserId) -> String {
    format!("verify:{user_id}")
}

/// A lease this process holds. Let go with [`release`]; if the process dies it simply expires.
#[derive(Debug)]
pub struct Lease {
    key: String,
    holder: String,
}

impl Lease {
    /// A claim on `key` under a holder id of its own.
    fn new(key: &str) -> Lease {
        Lease {
            key: key.to_owned(),
            holder: secrets::random_id(),
        }
    }
}

/// Takes the lease on `key` for `ttl` unless someone else holds an unexpired one.
pub async fn try_acquire(
    db: &DatabaseConnection,
    key: &str,
    ttl: Duration,
) -> Result<Option<Lease>> {
    let lease = Lease::new(key);
    match claim(db, &lease, ttl).await {
        Ok(true) => Ok(Some(lease)),
        Ok(false) => Ok(None),
        Err(e) => {
            // The claim may have been written and only its answer lost (the database went away
            // mid-statement): let go of what may be ours, or it holds every run back until it
            // expires.
            tokio::spawn(release_eventually(db.clone(), lease, ttl));
            Err(e)
        }
    }
}

/// [`try_acquire`] inside a transaction: if the claim's answer is lost, the transaction is
/// rolled back with it, so there is nothing to let go of afterwards.
pub async fn try_acquire_in(
    txn: &impl ConnectionTrait,
    key: &str,
    ttl: Duration,
) -> Result<Option<Lease>> {
    let lease = Lease::new(key);
    Ok(claim(txn, &lease, ttl).await?.then_some(lease))
}

async fn claim(db: &impl ConnectionTrait, lease: &Lease, ttl: Duration) -> Result<bool> {
    let now = Utc::now();
    let row = job_lease::ActiveModel {
        key: Set(lease.key.clone()),
        holder: Set(lease.holder.clone()),
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
    if inserted == 1 {
        return Ok(true);
    }
    // Someone had it: take it over only if their lease ran out.
    let taken = job_lease::Entity::update_many()
        .col_expr(job_lease::Column::Holder, Expr::value(lease.holder.clone()))
        .col_expr(job_lease::Column::ExpiresAt, Expr::value(now + ttl))
        .filter(job_lease::Column::Key.eq(&lease.key))
        .filter(job_lease::Column::ExpiresAt.lt(now))
        .exec(db)
        .await?;
    Ok(taken.rows_affected == 1)
}

/// Runs `work` while holding `lease`, renewing it every third of `ttl`, then lets go. If letting
/// go fails (the database is away), or `work` is cancelled (its worker stopped mid-job), it is
/// retried in the background: a lease left behind would hold the next run back until it
/// expires. If the process dies, it expires within `ttl`.
pub async fn while_held<T>(
    db: &DatabaseConnection,
    lease: Lease,
    ttl: Duration,
    work: impl Future<Output = T>,
) -> T {
    let guard = ReleaseOnDrop {
        db: db.clone(),
        lease: Some(lease),
        ttl,
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
    guard.release().await;
    out
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
    ttl: Duration,
}

impl ReleaseOnDrop {
    async fn release(mut self) {
        if let Some(lease) = self.lease.take()
            && delete(&self.db, &lease).await.is_err()
        {
            tokio::spawn(release_eventually(self.db.clone(), lease, self.ttl));
        }
    }
}

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(release_eventually(self.db.clone(), lease, self.ttl));
        }
    }
}

/// Lets go of `lease`, retrying with backoff while the database is unreachable, until the lease
/// would have expired anyway.
async fn release_eventually(db: DatabaseConnection, lease: Lease, ttl: Duration) {
    let released = crate::infra::db_retry::until(Utc::now() + ttl, || delete(&db, &lease)).await;
    if let Err(e) = released {
        tracing::warn!(key = %lease.key, error = %e, "cannot let go of a lease; it will expire");
    }
}

/// Lets go of `lease`, unless it expired and someone else took it meanwhile.
pub async fn release(db: &impl ConnectionTrait, lease: Lease) -> Result<()> {
    delete(db, &lease).await
}

async fn delete(db: &impl ConnectionTrait, lease: &Lease) -> Result<()> {
    job_lease::Entity::delete_many()
        .filter(job_lease::Column::Key.eq(&lease.key))
        .filter(job_lease::Column::Holder.eq(&lease.holder))
        .exec(db)
        .await?;
    Ok(())
}
