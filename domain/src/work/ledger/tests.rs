//! The ledger's transitions: each moves a record only from the states it starts from, and says
//! when it did not. On SQLite and (when enabled) PostgreSQL.

use chrono::{Duration, Utc};
use entity::states::{
    CheckOutcome, CheckTrigger, DeliveryOutcome, DeliveryStatus, ItemStatus, RequestStatus,
    SweepTrigger,
};
use entity::{job_request, sweep_item, user, webhook_event};
use sea_orm::{ActiveValue::Set, ConnectionTrait, DatabaseConnection, EntityTrait};
use test_support::{Backend, TestDb};

use super::deliveries::{self, NewDelivery, Settlement};
use super::requests::{self, Requested};
use super::{Transition, items};
use crate::{JobRequestId, PatreonUserId, SweepId, UserId};

async fn database(backend: Backend) -> (DatabaseConnection, TestDb) {
    let test_db = TestDb::create(backend).await;
    let db = crate::infra::db::connect(&test_db.url, 5).await.unwrap();
    crate::infra::db::migrate(&db).await.unwrap();
    (db, test_db)
}

async fn member(db: &DatabaseConnection, patreon_id: &str) -> UserId {
    let now = Utc::now();
    let row = user::ActiveModel {
        patreon_id: Set(patreon_id.into()),
        entitled_amount_cents: Set(0),
        membership_active: Set(false),
        token_version: Set(0),
        needs_relogin: Set(false),
        is_admin: Set(false),
        imported_team: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    user::Entity::insert(row)
        .exec_with_returning(db)
        .await
        .unwrap()
        .id
}

async fn new_request(db: &DatabaseConnection, user_id: UserId) -> job_request::Model {
    let requested = requests::request(
        db,
        user_id,
        None,
        CheckTrigger::Admin,
        Duration::zero(),
        Utc::now(),
    );
    match requested.await.unwrap() {
        Requested::New(r) => r,
        other => panic!("expected a new request, got {other:?}"),
    }
}

async fn status(db: &DatabaseConnection, id: &JobRequestId) -> RequestStatus {
    requests::find(db, id).await.unwrap().unwrap().status
}

async fn a_request_moves_only_along_its_transitions(db: DatabaseConnection) {
    let u = member(&db, "1").await;
    let r = new_request(&db, u).await;
    assert_eq!(r.status, RequestStatus::Queued);
    // Nothing is running yet: neither a retry nor a deferral applies.
    assert_eq!(
        requests::retry_later(&db, &r.id, "unavailable")
            .await
            .unwrap(),
        Transition::Unmoved
    );
    assert_eq!(
        requests::defer(&db, &r.id, "rate_limited").await.unwrap(),
        Transition::Unmoved
    );
    assert_eq!(
        requests::retry(&db, &r.id).await.unwrap(),
        Transition::Unmoved,
        "not dead"
    );

    assert_eq!(requests::start(&db, &r.id).await.unwrap(), Some(1));
    assert_eq!(status(&db, &r.id).await, RequestStatus::Running);
    assert_eq!(
        requests::defer(&db, &r.id, "rate_limited").await.unwrap(),
        Transition::Moved
    );
    assert_eq!(
        requests::find(&db, &r.id).await.unwrap().unwrap().attempts,
        0,
        "attempt given back"
    );
    assert_eq!(requests::start(&db, &r.id).await.unwrap(), Some(1));
    assert_eq!(
        requests::retry_later(&db, &r.id, "unavailable")
            .await
            .unwrap(),
        Transition::Moved
    );
    assert_eq!(status(&db, &r.id).await, RequestStatus::Queued);
    assert_eq!(requests::start(&db, &r.id).await.unwrap(), Some(2));
    assert_eq!(
        requests::give_up(&db, &r.id, "unavailable").await.unwrap(),
        Transition::Moved
    );
    assert_eq!(status(&db, &r.id).await, RequestStatus::Failed);

    // Finished: a duplicate delivery neither starts nor finishes it again.
    assert_eq!(requests::start(&db, &r.id).await.unwrap(), None);
    assert_eq!(
        requests::succeed(&db, &r.id, "paying_member")
            .await
            .unwrap(),
        Transition::Unmoved
    );
    assert_eq!(status(&db, &r.id).await, RequestStatus::Failed);

    // An admin's retry reopens it with a fresh count, once.
    assert_eq!(
        requests::retry(&db, &r.id).await.unwrap(),
        Transition::Moved
    );
    let again = requests::find(&db, &r.id).await.unwrap().unwrap();
    assert_eq!(
        (again.status, again.attempts, again.error),
        (RequestStatus::Queued, 0, None)
    );
    assert_eq!(
        requests::retry(&db, &r.id).await.unwrap(),
        Transition::Unmoved
    );
    assert_eq!(requests::start(&db, &r.id).await.unwrap(), Some(1));
    assert_eq!(
        requests::succeed(&db, &r.id, "paying_member")
            .await
            .unwrap(),
        Transition::Moved
    );
    assert_eq!(status(&db, &r.id).await, RequestStatus::Succeeded);
}

async fn a_dead_request_is_not_reopened_beside_an_open_one(db: DatabaseConnection) {
    let u = member(&db, "2").await;
    let dead = new_request(&db, u).await;
    let _ = requests::give_up(&db, &dead.id, "unavailable")
        .await
        .unwrap();
    let open = new_request(&db, u).await;
    assert_eq!(
        requests::retry(&db, &dead.id).await.unwrap(),
        Transition::Unmoved
    );
    assert_eq!(status(&db, &dead.id).await, RequestStatus::Failed);
    assert_eq!(status(&db, &open.id).await, RequestStatus::Queued);
}

async fn item(db: &DatabaseConnection, sweep_id: SweepId, user_id: UserId) -> sweep_item::Model {
    sweep_item::Entity::find_by_id((sweep_id, user_id))
        .one(db)
        .await
        .unwrap()
        .unwrap()
}

async fn a_sweep_item_moves_only_along_its_transitions(db: DatabaseConnection) {
    let u = member(&db, "3").await;
    let sweep = crate::work::sweeps::start(&db, "t-1", SweepTrigger::Manual, Utc::now())
        .await
        .unwrap();
    assert_eq!(item(&db, sweep.id, u).await.status, ItemStatus::Pending);
    assert_eq!(
        items::reclaim(&db, sweep.id, u).await.unwrap(),
        Transition::Unmoved,
        "not queued"
    );

    assert_eq!(items::claim_pending(&db, sweep.id, 10).await.unwrap(), [u]);
    assert!(
        items::claim_pending(&db, sweep.id, 10)
            .await
            .unwrap()
            .is_empty(),
        "claimed once"
    );
    assert_eq!(
        items::unclaim(&db, sweep.id, vec![u]).await.unwrap(),
        Transition::Moved
    );
    assert_eq!(items::claim_pending(&db, sweep.id, 10).await.unwrap(), [u]);

    assert_eq!(items::start(&db, sweep.id, u).await.unwrap(), Some(1));
    assert_eq!(
        items::defer(&db, sweep.id, u, "rate_limited")
            .await
            .unwrap(),
        Transition::Moved
    );
    assert_eq!(item(&db, sweep.id, u).await.attempts, 0);
    assert_eq!(
        items::retry(&db, sweep.id, u).await.unwrap(),
        Transition::Unmoved,
        "not dead"
    );

    let failed = items::finish(&db, sweep.id, u, CheckOutcome::Failed, Some("crashed"));
    assert_eq!(failed.await.unwrap(), Transition::Moved);
    let done = item(&db, sweep.id, u).await;
    assert_eq!(
        (done.status, done.outcome),
        (ItemStatus::Done, Some(CheckOutcome::Failed))
    );
    assert!(
        crate::work::sweeps::find(&db, sweep.id)
            .await
            .unwrap()
            .unwrap()
            .finished_at
            .is_some()
    );
    // Done: a duplicate neither starts nor finishes it, nor defers it.
    assert_eq!(items::start(&db, sweep.id, u).await.unwrap(), None);
    let verified = items::finish(&db, sweep.id, u, CheckOutcome::Verified, None);
    assert_eq!(verified.await.unwrap(), Transition::Unmoved);
    assert_eq!(
        items::defer(&db, sweep.id, u, "rate_limited")
            .await
            .unwrap(),
        Transition::Unmoved
    );

    // An admin's retry reopens the item and its sweep, once.
    assert_eq!(
        items::retry(&db, sweep.id, u).await.unwrap(),
        Transition::Moved
    );
    assert_eq!(item(&db, sweep.id, u).await.status, ItemStatus::Pending);
    assert!(
        crate::work::sweeps::find(&db, sweep.id)
            .await
            .unwrap()
            .unwrap()
            .finished_at
            .is_none()
    );
    assert_eq!(
        items::retry(&db, sweep.id, u).await.unwrap(),
        Transition::Unmoved
    );
}

async fn a_delivery_is_settled_once_and_released_only_from_waiting(db: DatabaseConnection) {
    let now = Utc::now();
    let delivery = |digest: &str, ours| NewDelivery {
        body_sha256: digest.into(),
        trigger: "members:update".into(),
        member_id: None,
        patreon_user_id: Some(PatreonUserId::from("77")),
        campaign_id: None,
        body: "{}".into(),
        ours,
        received_at: now,
    };
    let ignored = deliveries::record(&db, delivery("a", false))
        .await
        .unwrap()
        .unwrap();
    let id = deliveries::record(&db, delivery("b", true))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        deliveries::record(&db, delivery("b", true)).await.unwrap(),
        None,
        "recorded once"
    );
    let settle = |id, how| deliveries::settle(&db, id, how, now);
    let applied = Settlement::Applied { changed: true };
    assert_eq!(
        settle(ignored, applied).await.unwrap(),
        Transition::Unmoved,
        "never applied"
    );

    assert_eq!(
        settle(id, Settlement::Waiting).await.unwrap(),
        Transition::Moved
    );
    assert_eq!(
        settle(id, applied).await.unwrap(),
        Transition::Unmoved,
        "waiting is not pending"
    );
    assert_eq!(
        deliveries::release_waiting(&db, &PatreonUserId::from("77"))
            .await
            .unwrap(),
        [id]
    );
    assert_eq!(settle(id, applied).await.unwrap(), Transition::Moved);
    assert_eq!(
        settle(id, Settlement::Stale).await.unwrap(),
        Transition::Unmoved,
        "settled once"
    );
    let row = webhook_event::Entity::find_by_id(id)
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.status, row.outcome),
        (DeliveryStatus::Applied, Some(DeliveryOutcome::Changed))
    );
    assert!(
        deliveries::release_waiting(&db, &PatreonUserId::from("77"))
            .await
            .unwrap()
            .is_empty()
    );
}

/// A state the build does not know (a newer version's, or a typo in SQL) is an error when the
/// row is read, never taken for another state.
async fn a_row_with_an_unknown_state_fails_to_load(db: DatabaseConnection) {
    let u = member(&db, "4").await;
    let r = new_request(&db, u).await;
    let sql = format!(
        "UPDATE job_requests SET trigger = 'robot' WHERE id = '{}'",
        r.id
    );
    db.execute_unprepared(&sql).await.unwrap();
    assert!(requests::find(&db, &r.id).await.is_err());
}

/// A queue that refuses every push: its jobs table is gone.
async fn refusing_queue() -> (crate::work::jobs::JobQueue, TestDb) {
    let file = TestDb::create(Backend::Sqlite).await;
    let queue = crate::work::jobs::JobQueue::sqlite(&file.url, "refusing")
        .await
        .unwrap();
    let raw = crate::infra::db::connect(&file.url, 1).await.unwrap();
    raw.execute_unprepared("DROP TABLE Jobs").await.unwrap();
    (queue, file)
}

/// The one entry point records the recheck and pushes it; when the queue refuses, the new
/// request is given up (nobody waits on a request nobody runs) and the error says why.
async fn a_refused_push_gives_the_new_request_up(db: DatabaseConnection) {
    let u = member(&db, "5").await;
    let (queue, _file) = refusing_queue().await;
    let cooldown = Duration::zero();
    let refused = super::request_recheck(&db, &queue, u, CheckTrigger::Admin, None, cooldown);
    assert!(matches!(refused.await, Err(crate::Error::Queue(_))));
    let open = requests::request(&db, u, None, CheckTrigger::Admin, cooldown, Utc::now());
    let Requested::New(next) = open.await.unwrap() else {
        panic!("the refused request must not stay open")
    };
    let open_now = requests::stale(&db, Duration::zero()).await.unwrap();
    assert_eq!(
        open_now.iter().map(|r| &r.id).collect::<Vec<_>>(),
        [&next.id],
        "only the new one is open"
    );
}

#[test]
fn no_cooldown_never_waits_even_for_a_check_that_finished_after_our_clock_was_read() {
    use super::requests::cooldown_left;
    let now = Utc::now();
    let later = now + Duration::milliseconds(5);
    assert_eq!(cooldown_left(Duration::zero(), later, now), None);
    let twenty_ago = now - Duration::seconds(20);
    assert_eq!(
        cooldown_left(Duration::minutes(1), twenty_ago, now),
        Some(Duration::seconds(40))
    );
    assert_eq!(
        cooldown_left(Duration::minutes(1), now - Duration::minutes(2), now),
        None
    );
}

// Each scenario above runs as `<name>::sqlite` and `<name>::postgres`, on a database of its own.
test_support::on_both_backends! {
    setup = database;

    async fn a_request_moves_only_along_its_transitions((db, _test_db)) {
        super::a_request_moves_only_along_its_transitions(db).await
    }

    async fn a_dead_request_is_not_reopened_beside_an_open_one((db, _test_db)) {
        super::a_dead_request_is_not_reopened_beside_an_open_one(db).await
    }

    async fn a_sweep_item_moves_only_along_its_transitions((db, _test_db)) {
        super::a_sweep_item_moves_only_along_its_transitions(db).await
    }

    async fn a_delivery_is_settled_once_and_released_only_from_waiting((db, _test_db)) {
        super::a_delivery_is_settled_once_and_released_only_from_waiting(db).await
    }

    async fn a_row_with_an_unknown_state_fails_to_load((db, _test_db)) {
        super::a_row_with_an_unknown_state_fails_to_load(db).await
    }

    async fn a_refused_push_gives_the_new_request_up((db, _test_db)) {
        super::a_refused_push_gives_the_new_request_up(db).await
    }
}
