//! Verifying members against the Patreon mock, on SQLite and (when enabled) PostgreSQL.

use chrono::Utc;
use entity::{membership_check, user};
use patreon_mock::{EndpointFault, Faults, MockConfig, MockMembership, MockPatreon, MockUser};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use secrecy::SecretString;
use test_support::{Backend, TestDb};
use url::Url;

use super::*;
use crate::infra::config::PatreonSettings;
use crate::infra::crypto::KeyId;
use crate::patreon::PatreonClient;

const CAMPAIGN: &str = "1234560";

struct World {
    mock: MockPatreon,
    db: DatabaseConnection,
    patreon: PatreonClient,
    /// The same client with the creator token configured.
    creator: PatreonClient,
    cipher: TokenCipher,
    policy: MembershipPolicy,
    _test_db: TestDb,
}

impl World {
    async fn new(backend: Backend) -> World {
        let mock = MockPatreon::start(MockConfig {
            campaign_id: CAMPAIGN.into(),
            ..MockConfig::default()
        })
        .await
        .unwrap();
        let test_db = TestDb::create(backend).await;
        let db = crate::infra::db::connect(&test_db.url, 5).await.unwrap();
        crate::infra::db::migrate(&db).await.unwrap();
        let settings = PatreonSettings {
            client_id: "mock-client-id".into(),
            client_secret: SecretString::from("mock-client-secret"),
            redirect_uri: Url::parse("https://gate.example.com/callback").unwrap(),
            campaign_id: CAMPAIGN.into(),
            base_url: Url::parse(&mock.base_url()).unwrap(),
            authorize_url: None,
            scopes: "identity identity[email]".into(),
            timeout: std::time::Duration::from_secs(1),
            creator_access_token: None,
            webhook_secret: None,
            requests_per_2s: 1000,
            requests_per_token_per_min: 1000,
        };
        let patreon = PatreonClient::new(settings.clone()).unwrap();
        let creator = PatreonClient::new(PatreonSettings {
            creator_access_token: Some(SecretString::from("mock-creator-token")),
            ..settings
        })
        .unwrap();
        let key = SecretString::from("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=");
        let cipher = TokenCipher::new(KeyId::parse("k1").unwrap(), &key, Vec::new()).unwrap();
        World {
            mock,
            db,
            patreon,
            creator,
            cipher,
            policy: MembershipPolicy::default(),
            _test_db: test_db,
        }
    }

    fn verifier(&self) -> Verifier<'_> {
        Verifier {
            patreon: &self.patreon,
            cipher: &self.cipher,
            policy: &self.policy,
            refresh_within: Duration::days(1),
        }
    }

    fn creator_verifier(&self) -> Verifier<'_> {
        Verifier {
            patreon: &self.creator,
            ..self.verifier()
        }
    }

    /// Signs `mock_user` in through the real client, as the api's callback does.
    async fn signed_in(&self, mock_user: MockUser) -> user::Model {
        let id = mock_user.id.clone();
        self.mock.upsert_user(mock_user);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let response = http
            .get(format!("{}&as={id}", self.patreon.authorize_url("s")))
            .send()
            .await
            .unwrap();
        let location = Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
        let code = location
            .query_pairs()
            .find(|(k, _)| k == "code")
            .unwrap()
            .1
            .into_owned();
        let grant = self.patreon.exchange_code(&code).await.unwrap();
        let identity = self.patreon.identity(&grant.access_token).await.unwrap();
        users::record_sign_in(
            &self.db,
            &self.cipher,
            &self.policy,
            &identity,
            &grant,
            Utc::now(),
        )
        .await
        .unwrap()
    }

    async fn user(&self, id: UserId) -> user::Model {
        user::Entity::find_by_id(id)
            .one(&self.db)
            .await
            .unwrap()
            .unwrap()
    }

    async fn checks(&self, id: UserId) -> Vec<membership_check::Model> {
        membership_check::Entity::find()
            .filter(membership_check::Column::UserId.eq(id))
            .order_by_asc(membership_check::Column::Id)
            .all(&self.db)
            .await
            .unwrap()
    }
}

test_support::on_both_backends! {
    setup = World::new;

    async fn a_cancelled_pledge_ends_paid_access_and_is_audited(w) {
        let u = w.signed_in(MockUser::active_patron("11", CAMPAIGN)).await;
        assert!(u.membership_active);
        let unchanged = w.verifier().verify(&w.db, u.id, CheckTrigger::Sweep).await.unwrap();
        assert!(matches!(unchanged, Verification::Verified { changed: false, granted: true, .. }), "{unchanged:?}");

        w.mock.set_membership("11", CAMPAIGN, Some(MockMembership::former("11", CAMPAIGN)));
        let result = w.verifier().verify(&w.db, u.id, CheckTrigger::Admin).await.unwrap();
        assert_eq!(result, Verification::Verified { changed: true, granted: false, reason: AccessReason::Former });
        let after = w.user(u.id).await;
        assert!(!after.membership_active);
        assert_eq!(after.patron_status.as_deref(), Some("former_patron"));
        assert!(after.last_checked > u.last_checked);

        let checks = w.checks(u.id).await;
        let kinds: Vec<(&str, &str)> = checks.iter().map(|c| (c.trigger.as_str(), c.outcome.as_str())).collect();
        assert_eq!(kinds, [("sign_in", "changed"), ("sweep", "verified"), ("admin", "changed")]);
        let last = checks.last().unwrap();
        assert_eq!((last.old_active, last.new_active), (Some(true), Some(false)));
        assert_eq!(last.new_patron_status.as_deref(), Some("former_patron"));
        assert_eq!(last.access_reason.as_deref(), Some("former"));
    }

    async fn a_transient_patreon_failure_changes_nothing_and_is_returned_for_a_retry(w) {
        let u = w.signed_in(MockUser::active_patron("12", CAMPAIGN)).await;
        for status in [429, 503] {
            let fault = EndpointFault { fail_next: 1, status, retry_after_secs: Some(3), ..EndpointFault::default() };
            w.mock.set_faults(Faults { identity: fault, ..Faults::default() });
            let err = w.verifier().verify(&w.db, u.id, CheckTrigger::Sweep).await.unwrap_err();
            assert!(matches!(&err, Error::Patreon(e) if e.is_transient()), "{err:?}");
        }
        let after = w.user(u.id).await;
        assert!(after.membership_active);
        assert_eq!(after.last_checked, u.last_checked);
        let errors: Vec<Option<String>> = w.checks(u.id).await.into_iter().skip(1).map(|c| c.error).collect();
        assert_eq!(errors, [Some("rate_limited".to_owned()), Some("unavailable".to_owned())]);
    }

    async fn a_refused_token_is_refreshed_once_and_the_check_goes_on(w) {
        let u = w.signed_in(MockUser::active_patron("13", CAMPAIGN)).await;
        w.mock.expire_access_tokens("13");
        let result = w.verifier().verify(&w.db, u.id, CheckTrigger::Sweep).await.unwrap();
        assert!(matches!(result, Verification::Verified { granted: true, .. }));
        assert_eq!(w.mock.stats().token_refresh_grants, 1);
        assert_eq!(w.user(u.id).await.token_version, u.token_version + 1);
    }

    async fn a_dead_link_keeps_the_last_status_and_asks_for_a_new_sign_in(w) {
        let u = w.signed_in(MockUser::active_patron("14", CAMPAIGN)).await;
        w.mock.revoke_app("14");
        let result = w.verifier().verify(&w.db, u.id, CheckTrigger::Sweep).await.unwrap();
        assert_eq!(result, Verification::NeedsRelogin);
        let after = w.user(u.id).await;
        assert!(after.needs_relogin && after.access_token.is_none() && after.refresh_token.is_none());
        assert!(after.membership_active, "a dead token alone never takes access away");
        assert_eq!(w.mock.stats().token_refresh_grants, 1, "one refresh, no loop");

        // Later checks skip Patreon until the member signs in again.
        let calls = w.mock.stats().identity_calls;
        assert_eq!(w.verifier().verify(&w.db, u.id, CheckTrigger::Sweep).await.unwrap(), Verification::NeedsRelogin);
        assert_eq!(w.mock.stats().identity_calls, calls);
        let outcomes: Vec<&str> = w.checks(u.id).await.into_iter().map(|c| c.outcome.as_str()).collect();
        assert_eq!(outcomes, ["changed", "failed", "skipped"]);
    }

    async fn a_dead_link_is_checked_through_the_creator_token_when_there_is_one(w) {
        let u = w.signed_in(MockUser::active_patron("16", CAMPAIGN)).await;
        w.mock.revoke_app("16");
        w.mock.set_membership("16", CAMPAIGN, Some(MockMembership::former("16", CAMPAIGN)));
        let result = w.creator_verifier().verify(&w.db, u.id, CheckTrigger::Sweep).await.unwrap();
        assert_eq!(result, Verification::Verified { changed: true, granted: false, reason: AccessReason::Former });
        let after = w.user(u.id).await;
        assert!(after.needs_relogin, "their own link stays dead until they sign in");
        assert!(!after.membership_active);
        assert_eq!(after.full_name, u.full_name, "the profile stays as stored");
        assert_eq!(w.mock.stats().member_calls, 1);

        // Still checked on later runs, without touching the dead link again.
        w.mock.set_membership("16", CAMPAIGN, Some(MockMembership::active("16", CAMPAIGN, patreon_mock::MockTier::supporter())));
        let refreshes = w.mock.stats().token_refresh_grants;
        let again = w.creator_verifier().verify(&w.db, u.id, CheckTrigger::Sweep).await.unwrap();
        assert!(matches!(again, Verification::Verified { changed: true, granted: true, .. }), "{again:?}");
        assert_eq!(w.mock.stats().token_refresh_grants, refreshes);
        assert!(w.user(u.id).await.membership_active);
    }

    async fn a_member_patreon_no_longer_has_loses_access_through_the_creator_token(w) {
        let u = w.signed_in(MockUser::active_patron("17", CAMPAIGN)).await;
        w.mock.revoke_app("17");
        w.mock.set_membership("17", CAMPAIGN, None);
        let result = w.creator_verifier().verify(&w.db, u.id, CheckTrigger::Sweep).await.unwrap();
        assert!(matches!(result, Verification::Verified { changed: true, granted: false, .. }), "{result:?}");
        assert!(!w.user(u.id).await.membership_active);
    }

    async fn fraud_ends_access_and_every_session(w) {
        let u = w.signed_in(MockUser::active_patron("15", CAMPAIGN)).await;
        let session = crate::auth::sessions::create(&w.db, u.id, Duration::hours(1), Utc::now()).await.unwrap();
        let mut fraud = MockMembership::active("15", CAMPAIGN, patreon_mock::MockTier::supporter());
        fraud.last_charge_status = Some("Fraud".into());
        w.mock.set_membership("15", CAMPAIGN, Some(fraud));
        let result = w.verifier().verify(&w.db, u.id, CheckTrigger::Webhook).await.unwrap();
        assert_eq!(result, Verification::Verified { changed: true, granted: false, reason: AccessReason::Fraud });
        let live = crate::auth::sessions::find_live(&w.db, &session.session.id, "15", Utc::now()).await.unwrap();
        assert!(live.is_none(), "the fraudulent member's session still works");
    }
}

#[tokio::test]
async fn an_unknown_user_is_an_error_not_a_panic() {
    let w = World::new(Backend::Sqlite).await;
    assert!(matches!(
        w.verifier()
            .verify(&w.db, UserId(999), CheckTrigger::Admin)
            .await,
        Err(Error::UnknownUser)
    ));
}
