//! How long finished work is kept: long enough for admins and audits, short enough that the
//! tables (and the personal data in webhook bodies) do not grow without bound. The audit trail
//! of membership checks is kept; it goes with the member when they are erased.

use chrono::{DateTime, Duration, Utc};
use entity::states::DeliveryStatus;
use entity::{job_lease, job_request, sweep, sweep_item, webhook_event};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, sea_query::Expr,
};

use crate::Result;
use crate::SweepId;

/// Finished rechecks, including those that gave up (the dead letters), are kept this long.
pub const JOB_REQUESTS: Duration = Duration::days(90);
/// Finished sweeps and their per-member items.
pub const SWEEPS: Duration = Duration::days(180);
/// Processed webhook deliveries (their bodies hold names and emails). After this a delivery
/// that was applied or found stale keeps only its digest and ids, so that the same signed body
/// replayed later is still recognised and never applied; it goes when its member is erased.
pub const WEBHOOK_EVENTS: Duration = Duration::days(30);
/// Deliveries still waiting for a member who never signed in.
pub const WAITING_WEBHOOK_EVENTS: Duration = Duration::days(90);

/// What a purge removed, by kind.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub job_requests: u64,
    pub sweeps: u64,
    /// Deliveries removed, or reduced to their digest.
    pub webhook_events: u64,
    pub leases: u64,
}

pub async fn purge(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<Purged> {
    let job_requests = job_request::Entity::delete_many()
        .filter(job_request::Column::FinishedAt.lt(now - JOB_REQUESTS))
        .exec(db)
        .await?
        .rows_affected;
    let old_sweeps: Vec<SweepId> = sweep::Entity::find()
        .select_only()
        .column(sweep::Column::Id)
        .filter(sweep::Column::FinishedAt.lt(now - SWEEPS))
        .into_tuple()
        .all(db)
        .await?;
    if !old_sweeps.is_empty() {
        // Items first: SQLite enforces the cascade only when foreign keys are switched on.
        sweep_item::Entity::delete_many()
            .filter(sweep_item::Column::SweepId.is_in(old_sweeps.clone()))
            .exec(db)
            .await?;
        sweep::Entity::delete_many()
            .filter(sweep::Column::Id.is_in(old_sweeps.clone()))
            .exec(db)
            .await?;
    }
    let processed = webhook_event::Entity::delete_many()
        .filter(webhook_event::Column::ProcessedAt.lt(now - WEBHOOK_EVENTS))
        .filter(
            webhook_event::Column::Status.is_in([DeliveryStatus::Ignored, DeliveryStatus::Failed]),
        )
        .exec(db)
        .await?
        .rows_affected;
    let digests_kept = webhook_event::Entity::update_many()
        .col_expr(webhook_event::Column::Body, Expr::value(""))
        .filter(webhook_event::Column::ProcessedAt.lt(now - WEBHOOK_EVENTS))
        .filter(
            webhook_event::Column::Status.is_in([DeliveryStatus::Applied, DeliveryStatus::Stale]),
        )
        .filter(webhook_event::Column::Body.ne(""))
        .exec(db)
        .await?
        .rows_affected;
    let abandoned = webhook_event::Entity::delete_many()
        .filter(webhook_event::Column::Status.eq(DeliveryStatus::Waiting))
        .filter(webhook_event::Column::ReceivedAt.lt(now - WAITING_WEBHOOK_EVENTS))
        .exec(db)
        .await?
        .rows_affected;
    let leases = job_lease::Entity::delete_many()
        .filter(job_lease::Column::ExpiresAt.lt(now - Duration::days(1)))
        .exec(db)
        .await?
        .rows_affected;
    Ok(Purged {
        job_requests,
        sweeps: old_sweeps.len() as u64,
        webhook_events: processed + digests_kept + abandoned,
        leases,
    })
}

#[cfg(test)]
mod tests {
    use entity::states::{
        CheckOutcome, CheckTrigger, ItemStatus, RequestKind, RequestStatus, SweepTrigger,
    };
    use entity::{job_request, sweep, sweep_item, user, webhook_event};
    use sea_orm::{ActiveValue::Set, EntityTrait, PaginatorTrait, QueryOrder};
    use test_support::{Backend, TestDb, postgres_enabled};

    use super::*;

    async fn purges_only_what_is_past_its_retention(backend: Backend) {
        let test_db = TestDb::create(backend).await;
        let db = crate::infra::db::connect(&test_db.url, 2).await.unwrap();
        crate::infra::db::migrate(&db).await.unwrap();
        let now = Utc::now();
        let member = user::ActiveModel {
            patreon_id: Set("5150".into()),
            entitled_amount_cents: Set(0),
            membership_active: Set(false),
            token_version: Set(0),
            needs_relogin: Set(false),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        let member = user::Entity::insert(member)
            .exec_with_returning(&db)
            .await
            .unwrap();
        for (id, finished_days_ago) in [("old", 100), ("recent", 10)] {
            let row = job_request::ActiveModel {
                id: Set(id.into()),
                kind: Set(RequestKind::VerifyMembership),
                user_id: Set(member.id),
                requested_by: Set(None),
                trigger: Set(CheckTrigger::Member),
                status: Set(RequestStatus::Failed),
                result: Set(None),
                error: Set(Some("unavailable".into())),
                attempts: Set(5),
                created_at: Set(now - Duration::days(finished_days_ago)),
                started_at: Set(None),
                finished_at: Set(Some(now - Duration::days(finished_days_ago))),
            };
            job_request::Entity::insert(row)
                .exec_without_returning(&db)
                .await
                .unwrap();
        }
        for (tick, finished_days_ago) in [("t-old", 200), ("t-recent", 20)] {
            let s = sweep::ActiveModel {
                tick: Set(tick.into()),
                trigger: Set(SweepTrigger::Schedule),
                started_at: Set(now - Duration::days(finished_days_ago)),
                finished_at: Set(Some(now - Duration::days(finished_days_ago))),
                total: Set(1),
                ..Default::default()
            };
            let s = sweep::Entity::insert(s)
                .exec_with_returning(&db)
                .await
                .unwrap();
            let item = sweep_item::ActiveModel {
                sweep_id: Set(s.id),
                user_id: Set(member.id),
                status: Set(ItemStatus::Done),
                outcome: Set(Some(CheckOutcome::Verified)),
                error: Set(None),
                attempts: Set(1),
                pushed_at: Set(None),
                finished_at: Set(None),
            };
            sweep_item::Entity::insert(item)
                .exec_without_returning(&db)
                .await
                .unwrap();
        }
        for (n, status, days_ago) in [
            (1, DeliveryStatus::Applied, 40),
            (2, DeliveryStatus::Applied, 5),
            (3, DeliveryStatus::Waiting, 100),
            (4, DeliveryStatus::Waiting, 10),
            (5, DeliveryStatus::Ignored, 40),
            (6, DeliveryStatus::Stale, 40),
        ] {
            let event = webhook_event::ActiveModel {
                body_sha256: Set(format!("digest-{n}")),
                trigger: Set("members:update".into()),
                body: Set("{}".into()),
                status: Set(status),
                received_at: Set(now - Duration::days(days_ago)),
                processed_at: Set(
                    (status != DeliveryStatus::Waiting).then_some(now - Duration::days(days_ago))
                ),
                ..Default::default()
            };
            webhook_event::Entity::insert(event)
                .exec_without_returning(&db)
                .await
                .unwrap();
        }

        let purged = purge(&db, now).await.unwrap();
        assert_eq!(
            purged,
            Purged {
                job_requests: 1,
                sweeps: 1,
                webhook_events: 4,
                leases: 0
            }
        );
        let kept: Vec<(String, String)> = webhook_event::Entity::find()
            .order_by_asc(webhook_event::Column::BodySha256)
            .all(&db)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.body_sha256, e.body))
            .collect();
        let digest = |n: u32, body: &str| (format!("digest-{n}"), body.to_owned());
        assert_eq!(
            kept,
            [
                digest(1, ""),
                digest(2, "{}"),
                digest(4, "{}"),
                digest(6, "")
            ],
            "old applied or stale deliveries keep their digest, not their body"
        );
        assert_eq!(job_request::Entity::find().count(&db).await.unwrap(), 1);
        assert_eq!(sweep::Entity::find().count(&db).await.unwrap(), 1);
        assert_eq!(sweep_item::Entity::find().count(&db).await.unwrap(), 1);
        assert_eq!(
            purge(&db, now).await.unwrap(),
            Purged::default(),
            "a second run removes nothing"
        );
    }

    #[tokio::test]
    async fn purges_only_what_is_past_its_retention_on_sqlite() {
        purges_only_what_is_past_its_retention(Backend::Sqlite).await;
    }

    #[cfg_attr(not(postgres_tests), ignore = "needs TEST_POSTGRES_URL")]
    #[tokio::test]
    async fn purges_only_what_is_past_its_retention_on_postgres() {
        if postgres_enabled() {
            purges_only_what_is_past_its_retention(Backend::Postgres).await;
        }
    }
}
